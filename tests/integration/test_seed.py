"""Seeding writes each org's settings and Markitbot's profiles where the worker reads them."""

from __future__ import annotations

import time
from typing import Any

import pytest
from google.cloud import firestore

from loyalty_worker.adapters.firestore import PROFILES, SETTINGS, FirestoreProfileStore
from loyalty_worker.adapters.seed import SeedCounts, seed_firestore
from loyalty_worker.cli import main
from loyalty_worker.config import get_settings
from loyalty_worker.devstack import Sandbox, free_port
from loyalty_worker.sandbox.data.records import OrgRecord, ProfileRecord

pytestmark = pytest.mark.integration


def org(org_id: str, profiles: list[ProfileRecord]) -> OrgRecord:
    return {
        "orgId": org_id,
        "settings": {"pointsPerDollar": 1.5, "equityMultiplier": 2.0, "timezone": "America/Denver"},
        "alleaves": {"username": "u", "password": "p", "pin": "1234", "locationId": 7},
        "alpine": {"uid": "uid-1", "apiKey": "key-1"},
        "customers": [{"id_customer": 1}],
        "orders": [{"id_order": 1, "date_created": "2025-06-01T10:00:00.000Z"}],
        "alpineContacts": [{"contactID": "c-1", "points": 0}],
        "profiles": profiles,
    }


def read(client: firestore.Client, collection: str, document_id: str) -> dict[str, Any] | None:
    return client.collection(collection).document(document_id).get().to_dict()


def test_seed_writes_settings_with_credentials(firestore_client: firestore.Client) -> None:
    counts = seed_firestore(firestore_client, {"orgs": [org("org-a", []), org("org-b", [])]})

    assert counts == SeedCounts(orgs=2, profiles=0)
    assert read(firestore_client, SETTINGS, "org-a") == {
        "pointsPerDollar": 1.5,
        "equityMultiplier": 2.0,
        "timezone": "America/Denver",
        "alleaves": {"username": "u", "password": "p", "pin": "1234", "locationId": 7},
        "alpine": {"uid": "uid-1", "apiKey": "key-1"},
        "disabled": False,
    }
    store = FirestoreProfileStore(firestore_client)
    assert store.list_org_ids() == ["org-a", "org-b"]
    settings = store.get_org_settings("org-b")
    assert settings.alleaves is not None
    assert settings.alleaves.pin.get_secret_value() == "1234"


def test_seed_writes_profiles_keyed_by_org_and_customer(firestore_client: firestore.Client) -> None:
    profiles: list[ProfileRecord] = [
        {"customerId": 11, "equityStatus": True, "firstName": "Ann"},
        {"customerId": 12, "equityStatus": False},
    ]

    seed_firestore(firestore_client, {"orgs": [org("org-a", profiles)]})

    assert read(firestore_client, PROFILES, "org-a_11") == {
        "equityStatus": True,
        "firstName": "Ann",
        "orgId": "org-a",
        "alleavesCustomerId": 11,
    }
    assert read(firestore_client, PROFILES, "org-a_12") == {
        "equityStatus": False,
        "orgId": "org-a",
        "alleavesCustomerId": 12,
    }


def test_seed_writes_more_than_one_batch(firestore_client: firestore.Client) -> None:
    profiles: list[ProfileRecord] = [
        {"customerId": i, "equityStatus": i % 2 == 0} for i in range(1, 1101)
    ]

    counts = seed_firestore(
        firestore_client, {"orgs": [org("org-a", profiles[:600]), org("org-b", profiles[600:])]}
    )

    assert counts == SeedCounts(orgs=2, profiles=1100)
    store = FirestoreProfileStore(firestore_client)
    assert len(store.get_profiles("org-a", range(1, 601))) == 600
    assert len(store.get_profiles("org-b", range(601, 1101))) == 500


def test_seeding_again_resets_documents_to_the_dataset(firestore_client: firestore.Client) -> None:
    seed_firestore(
        firestore_client, {"orgs": [org("org-a", [{"customerId": 1, "equityStatus": True}])]}
    )
    profile = firestore_client.collection(PROFILES).document("org-a_1")
    profile.set({"points": 900, "pointsFromAlpine": 880}, merge=True)

    seed_firestore(
        firestore_client, {"orgs": [org("org-a", [{"customerId": 1, "equityStatus": False}])]}
    )

    assert profile.get().to_dict() == {
        "equityStatus": False,
        "orgId": "org-a",
        "alleavesCustomerId": 1,
    }


def test_seed_command_reads_a_running_sandboxs_dataset(
    firestore_client: firestore.Client, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_FIRESTORE_PROJECT", firestore_client.project)
    get_settings.cache_clear()
    try:
        code = main(["seed-firestore", "--sandbox", sandbox.base_url, "--wait", "5"])
    finally:
        get_settings.cache_clear()

    assert code == 0
    dataset = sandbox.dataset()
    for seeded in dataset["orgs"]:
        assert read(firestore_client, SETTINGS, seeded["orgId"]) is not None
        for profile in seeded["profiles"][:3]:
            document = f"{seeded['orgId']}_{profile['customerId']}"
            assert read(firestore_client, PROFILES, document) is not None


def test_seed_command_gives_up_on_a_sandbox_that_never_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()

    assert main(["seed-firestore", "--sandbox", nowhere, "--wait", "1.5"]) == 1

    assert time.monotonic() - started >= 1.5  # it retried for the whole wait
    error = capsys.readouterr().err
    assert error.startswith("seed-firestore: no answer within 2 s: ")
    assert "Connect" in error  # the last attempt's reason
