"""Load a demo or test dataset into Firestore: each org's settings and Markitbot's profiles.

The dataset is the one the sandbox serves (``{"orgs": [...]}``); its ``customers``, ``orders`` and
``alpineContacts`` belong to the imitated Alleaves and Alpine IQ and are not written here. Every
document is written whole (no merge), so seeding again resets the data to the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from google.cloud import firestore
from google.cloud.firestore_v1.document import DocumentReference

from loyalty_worker.adapters.firestore import MAX_BATCH_WRITES, PROFILES, SETTINGS
from loyalty_worker.domain.profile import profile_id
from loyalty_worker.sandbox.data.records import (
    AlleavesLogin,
    AlpineAccount,
    Dataset,
    OrgFields,
    ProfileFields,
    ProfileRecord,
    SettingsRecord,
)

_TIMEOUT_S = 30.0


class SettingsDocument(SettingsRecord):
    """``loyalty_settings/{orgId}``: the org's rules, its credentials, and whether it is served."""

    alleaves: AlleavesLogin
    alpine: AlpineAccount
    disabled: bool


class ProfileDocument(ProfileFields):
    """``customers/{orgId}_{customerId}``: a profile's fields and the keys the worker sets."""

    orgId: str
    alleavesCustomerId: int


@dataclass(frozen=True, slots=True)
class SeedCounts:
    """How many documents a seed wrote, by kind."""

    orgs: int
    profiles: int


def seed_firestore(client: firestore.Client, dataset: Dataset) -> SeedCounts:
    """Write the dataset's settings documents and profiles, in batches of at most 500."""
    settings = client.collection(SETTINGS)
    profiles = client.collection(PROFILES)
    writes: list[tuple[DocumentReference, SettingsDocument | ProfileDocument]] = []
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
            batch.set(reference, dict(document))  # the client's signature asks for a plain dict
        batch.commit(timeout=_TIMEOUT_S)
    return SeedCounts(orgs=len(orgs), profiles=len(writes) - len(orgs))


def settings_document(org: OrgFields) -> SettingsDocument:
    """``loyalty_settings/{orgId}``: the org's rules with its credentials, enabled."""
    return {
        **org["settings"],
        "alleaves": org["alleaves"].copy(),
        "alpine": org["alpine"].copy(),
        "disabled": False,
    }


def profile_document(org_id: str, profile: ProfileRecord) -> ProfileDocument:
    """``customers/{orgId}_{customerId}``: the entry's fields plus the keys the worker sets."""
    # Every field the entry has, known to the format or not, but the id that names the document.
    fields = cast("ProfileFields", {k: v for k, v in profile.items() if k != "customerId"})
    return {**fields, "orgId": org_id, "alleavesCustomerId": profile["customerId"]}
