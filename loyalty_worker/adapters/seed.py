"""Load a demo or test dataset into Firestore: each org's settings and Markitbot's profiles.

The dataset is the one the sandbox serves (``{"orgs": [...]}``); its ``customers``, ``orders`` and
``alpineContacts`` belong to the imitated Alleaves and Alpine IQ and are not written here. Every
document is written whole (no merge), so seeding again resets the data to the dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.document import DocumentReference

from loyalty_worker.adapters.firestore import MAX_BATCH_WRITES, PROFILES, SETTINGS
from loyalty_worker.domain.profile import profile_id

_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class SeedCounts:
    """How many documents a seed wrote, by kind."""

    orgs: int
    profiles: int


def seed_firestore(client: firestore.Client, dataset: Mapping[str, Any]) -> SeedCounts:
    """Write the dataset's settings documents and profiles, in batches of at most 500."""
    settings = client.collection(SETTINGS)
    profiles = client.collection(PROFILES)
    writes: list[tuple[DocumentReference, dict[str, Any]]] = []
    orgs = list(dataset["orgs"])
    for org in orgs:
        org_id = org["orgId"]
        writes.append((settings.document(org_id), settings_document(org)))
        writes.extend(
            (
                profiles.document(profile_id(org_id, profile["customerId"])),
                profile_document(org_id, profile),
            )
            for profile in org.get("profiles", [])
        )
    for start in range(0, len(writes), MAX_BATCH_WRITES):
        batch = client.batch()
        for reference, document in writes[start : start + MAX_BATCH_WRITES]:
            batch.set(reference, document)
        batch.commit(timeout=_TIMEOUT_S)
    return SeedCounts(orgs=len(orgs), profiles=len(writes) - len(orgs))


def settings_document(org: Mapping[str, Any]) -> dict[str, Any]:
    """``loyalty_settings/{orgId}``: the org's rules with its credentials, enabled."""
    return {
        **org["settings"],
        "alleaves": dict(org["alleaves"]),
        "alpine": dict(org["alpine"]),
        "disabled": False,
    }


def profile_document(org_id: str, profile: Mapping[str, Any]) -> dict[str, Any]:
    """``customers/{orgId}_{customerId}``: the entry's fields plus the keys the worker sets."""
    fields = {name: value for name, value in profile.items() if name != "customerId"}
    return {**fields, "orgId": org_id, "alleavesCustomerId": profile["customerId"]}
