"""One set of ProfileStore checks, run over the in-memory fake and the Firestore store.

The checks arrange documents through a small harness per implementation (raw client calls for
Firestore, the fake's dicts), then go through the store's own methods only, so a unit test that
relies on the fake relies on behaviour the real store has too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol, cast

import pytest
from google.cloud import firestore

from loyalty_worker.adapters.firestore import PROFILES, SETTINGS, FirestoreProfileStore
from loyalty_worker.domain.profile import ProfileDocument, ProfileUpdate
from loyalty_worker.domain.run import RunSummaryDocument
from loyalty_worker.errors import SettingsInvalid, UnknownOrg
from loyalty_worker.ports.profiles import ProfileFinder, ProfileSource, ProfileStore
from tests.fakes import InMemoryProfileStore, QueryableProfileStore

ORG = "org-contract"


class Harness(Protocol):
    store: ProfileStore

    def put_settings(self, org_id: str, document: dict[str, Any]) -> None: ...

    def put_profile(self, document_id: str, document: dict[str, Any]) -> None: ...

    def read_profile(self, document_id: str) -> dict[str, Any] | None: ...


class FakeHarness:
    def __init__(self, fake: InMemoryProfileStore | None = None) -> None:
        self.fake = fake or InMemoryProfileStore()
        self.store: ProfileStore = self.fake

    def put_settings(self, org_id: str, document: dict[str, Any]) -> None:
        self.fake.settings[org_id] = document

    def put_profile(self, document_id: str, document: dict[str, Any]) -> None:
        self.fake.profiles[document_id] = document

    def read_profile(self, document_id: str) -> dict[str, Any] | None:
        return self.fake.profiles.get(document_id)


class FirestoreHarness:
    def __init__(self, client: firestore.Client) -> None:
        self.client = client
        self.store: ProfileStore = FirestoreProfileStore(client)

    def put_settings(self, org_id: str, document: dict[str, Any]) -> None:
        self.client.collection(SETTINGS).document(org_id).set(document)

    def put_profile(self, document_id: str, document: dict[str, Any]) -> None:
        self.client.collection(PROFILES).document(document_id).set(document)

    def read_profile(self, document_id: str) -> dict[str, Any] | None:
        return self.client.collection(PROFILES).document(document_id).get().to_dict()


@pytest.fixture(params=["fake", pytest.param("firestore", marks=pytest.mark.integration)])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "fake":
        return FakeHarness()
    return FirestoreHarness(request.getfixturevalue("firestore_client"))


def update(customer_id: int, deletes: tuple[str, ...] = (), **fields: Any) -> ProfileUpdate:
    return ProfileUpdate(ORG, customer_id, cast(ProfileDocument, fields), deletes)


def test_merge_write_keeps_fields_it_does_not_name(harness: Harness) -> None:
    harness.put_profile(f"{ORG}_7", {"firstName": "Ann", "equityStatus": True, "points": 1})

    harness.store.write_profiles([update(7, points=250, tier="silver")])

    assert harness.read_profile(f"{ORG}_7") == {
        "firstName": "Ann",
        "equityStatus": True,
        "points": 250,
        "tier": "silver",
    }


def test_deletes_remove_fields_an_earlier_write_set(harness: Harness) -> None:
    harness.put_profile(f"{ORG}_7", {"firstName": "Ann"})
    harness.store.write_profiles(
        [update(7, points=300, pointsFromAlpine=310, loyaltyDiscrepancy=0.03)]
    )

    harness.store.write_profiles(
        [update(7, ("pointsFromAlpine", "loyaltyDiscrepancy", "neverWritten"), points=280)]
    )

    assert harness.read_profile(f"{ORG}_7") == {"firstName": "Ann", "points": 280}


def test_write_creates_a_missing_profile(harness: Harness) -> None:
    harness.store.write_profiles([update(8, ("pointsFromAlpine",), points=5, orgId=ORG)])

    assert harness.read_profile(f"{ORG}_8") == {"points": 5, "orgId": ORG}


def test_an_update_with_nothing_to_write_creates_nothing(harness: Harness) -> None:
    harness.store.write_profiles([update(9)])

    assert harness.read_profile(f"{ORG}_9") is None


def test_settings_floats_parse_into_rules(harness: Harness) -> None:
    harness.put_settings(
        ORG,
        {
            "pointsPerDollar": 1.5,
            "equityMultiplier": 1.25,
            "tiers": [{"id": "bronze", "threshold": 0.0}, {"id": "gold", "threshold": 1000.0}],
            "alpine": {"uid": "u-1", "apiKey": "k-1"},
        },
    )

    settings = harness.store.get_org_settings(ORG)

    assert settings.org_id == ORG
    assert settings.points_per_dollar == Decimal("1.5")
    assert settings.equity_multiplier == Decimal("1.25")
    assert [tier.threshold for tier in settings.tiers] == [Decimal(0), Decimal(1000)]
    assert settings.alpine is not None
    assert settings.alpine.api_key.get_secret_value() == "k-1"


def test_invalid_settings_name_the_org_and_the_field(harness: Harness) -> None:
    harness.put_settings("org-bad", {"pointsPerDollar": -1.0})

    with pytest.raises(SettingsInvalid) as caught:
        harness.store.get_org_settings("org-bad")

    assert caught.value.org_id == "org-bad"
    assert caught.value.field == "pointsPerDollar"


def test_missing_settings_are_an_unknown_org(harness: Harness) -> None:
    with pytest.raises(UnknownOrg) as caught:
        harness.store.get_org_settings("org-nobody")

    assert caught.value.org_id == "org-nobody"


def test_disabled_orgs_are_not_listed(harness: Harness) -> None:
    harness.put_settings("org-b", {"disabled": False})
    harness.put_settings("org-a", {})
    harness.put_settings("org-off", {"disabled": True})

    assert harness.store.list_org_ids() == ["org-a", "org-b"]


def test_get_profiles_leaves_out_missing_ones_across_chunks(harness: Harness) -> None:
    harness.store.write_profiles([update(i, points=i) for i in range(1, 351)])
    harness.put_profile("org-other_400", {"points": 1})

    found = harness.store.get_profiles(ORG, list(range(1, 401)))

    assert sorted(found) == list(range(1, 351))
    assert found[350] == {"points": 350}


def test_get_profiles_of_no_ids_is_empty(harness: Harness) -> None:
    assert harness.store.get_profiles(ORG, []) == {}


def test_more_than_500_updates_are_written_in_one_call(harness: Harness) -> None:
    harness.store.write_profiles([update(i, points=i * 2) for i in range(1, 1202)])

    found = harness.store.get_profiles(ORG, list(range(1, 1202)))

    assert len(found) == 1201
    assert found[1201] == {"points": 2402}


def test_run_summaries_round_trip_merging_top_level_fields(harness: Harness) -> None:
    started = 1_790_000_000.25
    assert harness.store.get_run_summary("run-1") is None

    harness.store.write_run_summary(
        "run-1",
        {"status": "running", "startedAt": started, "tiers": {"gold": 1, "silver": 2}},
    )
    harness.store.write_run_summary("run-1", {"status": "completed", "tiers": {"gold": 3}})

    assert harness.store.get_run_summary("run-1") == {
        "status": "completed",
        "startedAt": started,
        "tiers": {"gold": 3},
    }


def test_running_runs_are_listed_with_their_run_id(harness: Harness) -> None:
    assert harness.store.list_running_runs() == []
    harness.store.write_run_summary("run-a", {"status": "running", "orgId": "org-1"})
    harness.store.write_run_summary("run-b", {"status": "running", "orgId": "org-2"})
    harness.store.write_run_summary("run-c", {"status": "completed", "orgId": "org-1"})
    harness.store.write_run_summary("run-b", {"status": "incomplete"})

    assert harness.store.list_running_runs() == [
        {"status": "running", "orgId": "org-1", "runId": "run-a"}
    ]


def test_stored_documents_do_not_alias_the_callers(harness: Harness) -> None:
    summary: RunSummaryDocument = {"status": "completed", "tiers": {"gold": 1}}
    harness.store.write_run_summary("run-1", summary)
    summary["tiers"]["gold"] = 99
    read = harness.store.get_run_summary("run-1")
    assert read == {"status": "completed", "tiers": {"gold": 1}}
    assert read is not None
    read["tiers"]["gold"] = 7
    assert harness.store.get_run_summary("run-1") == {"status": "completed", "tiers": {"gold": 1}}


class Queries(ProfileFinder, ProfileSource, Protocol):
    """The look-up's and the export's reads."""


@pytest.fixture(params=["fake", pytest.param("firestore", marks=pytest.mark.integration)])
def queries(request: pytest.FixtureRequest) -> tuple[Queries, Harness]:
    """The look-up's and the export's queries, over profiles the harness arranges."""
    if request.param == "fake":
        fake = QueryableProfileStore()
        return fake, FakeHarness(fake)
    client = request.getfixturevalue("firestore_client")
    return FirestoreProfileStore(client), FirestoreHarness(client)


def test_profiles_are_found_by_an_equal_field_within_their_org(
    queries: tuple[Queries, Harness],
) -> None:
    store, harness = queries
    for n in range(4):
        harness.put_profile(f"{ORG}_{n}", {"orgId": ORG, "phoneHash": "h1" if n < 3 else "h2"})
    harness.put_profile("other_1", {"orgId": "other", "phoneHash": "h1"})

    found = store.find_profiles(ORG, "phoneHash", "h1", limit=2)
    assert len(found) == 2 and all(p["orgId"] == ORG for p in found)
    assert store.find_profiles(ORG, "phoneHash", "h2", limit=5) == [
        {"orgId": ORG, "phoneHash": "h2"}
    ]
    assert store.find_profiles(ORG, "phoneHash", "nope", limit=5) == []


def test_an_orgs_profiles_stream_without_another_orgs(queries: tuple[Queries, Harness]) -> None:
    store, harness = queries
    for n in range(7):
        harness.put_profile(f"{ORG}_{n}", {"orgId": ORG, "points": n})
    harness.put_profile("other_1", {"orgId": "other", "points": 99})

    streamed = list(store.iter_org_profiles(ORG))
    assert sorted(p["points"] for p in streamed) == list(range(7))


def test_get_profiles_reads_only_the_fields_asked_for(harness: Harness) -> None:
    harness.put_profile(f"{ORG}_1", {"equityStatus": True, "points": 5, "firstName": "Ana"})
    harness.put_profile(f"{ORG}_2", {"firstName": "Bo"})

    found = harness.store.get_profiles(ORG, [1, 2, 3], ["equityStatus", "points"])
    # a profile without any of the fields still exists; a missing one is left out
    assert found == {1: {"equityStatus": True, "points": 5}, 2: {}}
