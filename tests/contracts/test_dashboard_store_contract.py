"""One set of DashboardStore checks, over the in-memory fake and the Firestore store (emulator).

Profiles and run summaries are arranged with raw writes (Firestore) or the fake's dicts; the
checks then read through the store only, so the dashboard's unit tests rely on behaviour the
real store has too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

import pytest
from google.cloud import firestore

from loyalty_worker.adapters.dashboard_store import FirestoreDashboardStore
from loyalty_worker.adapters.firestore import PROFILES, RUN_SUMMARIES, FirestoreProfileStore
from loyalty_worker.domain.profile import ProfileUpdate
from loyalty_worker.ports import DashboardStore
from tests.fakes import InMemoryDashboardStore, QueryableProfileStore

ORG = "org-dash"


class Harness(Protocol):
    store: DashboardStore

    def put_profile(self, customer_id: int, document: dict[str, Any]) -> None: ...

    def put_run(self, run_id: str, document: dict[str, Any]) -> None: ...

    def write_with_history(self, update: ProfileUpdate) -> None: ...


class FakeHarness:
    def __init__(self) -> None:
        self.base = QueryableProfileStore()
        self.fake = InMemoryDashboardStore(self.base)
        self.store: DashboardStore = self.fake

    def put_profile(self, customer_id: int, document: dict[str, Any]) -> None:
        self.base.profiles[f"{ORG}_{customer_id}"] = document

    def put_run(self, run_id: str, document: dict[str, Any]) -> None:
        self.base.run_summaries[run_id] = document

    def write_with_history(self, update: ProfileUpdate) -> None:
        self.base.write_profiles([update])
        if update.history is not None:
            self.fake.history.setdefault(update.document_id, []).append(dict(update.history))


class FirestoreHarness:
    def __init__(self, client: firestore.Client) -> None:
        self.client = client
        self.store: DashboardStore = FirestoreDashboardStore(client)

    def put_profile(self, customer_id: int, document: dict[str, Any]) -> None:
        self.client.collection(PROFILES).document(f"{ORG}_{customer_id}").set(document)

    def put_run(self, run_id: str, document: dict[str, Any]) -> None:
        self.client.collection(RUN_SUMMARIES).document(run_id).set(document)

    def write_with_history(self, update: ProfileUpdate) -> None:
        FirestoreProfileStore(self.client).write_profiles([update])


@pytest.fixture(params=["fake", pytest.param("firestore", marks=pytest.mark.integration)])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "fake":
        return FakeHarness()
    return FirestoreHarness(request.getfixturevalue("firestore_client"))


def profile(customer_id: int, **fields: Any) -> dict[str, Any]:
    return {"orgId": ORG, "alleavesCustomerId": customer_id, **fields}


def test_counts_and_sums_by_org_and_field(harness: Harness) -> None:
    harness.put_profile(1, profile(1, tier="gold", pointsFromOrders=100, pointsFromAlpine=90))
    harness.put_profile(2, profile(2, tier="gold", pointsFromOrders=50))
    harness.put_profile(3, profile(3, tier="bronze", pointsFromOrders=7, pointsFromAlpine=10))
    harness.put_profile(4, {"orgId": "other", "alleavesCustomerId": 4, "tier": "gold"})
    store = harness.store
    assert store.count_profiles(ORG) == 3
    assert store.count_profiles(ORG, "tier", "gold") == 2
    assert store.count_profiles(ORG, "tier", "platinum") == 0
    assert store.sum_profiles(ORG, "pointsFromOrders") == 157
    assert store.sum_profiles(ORG, "pointsFromAlpine") == 100


def test_lists_and_gets_profiles_of_the_org_only(harness: Harness) -> None:
    harness.put_profile(1, profile(1, loyaltyStatus="alpine_higher"))
    harness.put_profile(2, profile(2, loyaltyStatus="calculated_higher"))
    harness.put_profile(3, profile(3, loyaltyStatus="matched"))
    store = harness.store
    found = store.list_profiles(
        ORG, "loyaltyStatus", ["alpine_higher", "calculated_higher"], limit=10
    )
    assert sorted(p["alleavesCustomerId"] for p in found) == [1, 2]
    assert (
        len(store.list_profiles(ORG, "loyaltyStatus", ["alpine_higher", "matched"], limit=1)) == 1
    )
    assert store.get_profile(ORG, 3) == profile(3, loyaltyStatus="matched")
    assert store.get_profile(ORG, 9) is None
    assert store.get_profile("other", 3) is None


def test_runs_newest_first(harness: Harness) -> None:
    harness.put_run("r-old", {"orgId": ORG, "startedAt": 10.0, "status": "completed"})
    harness.put_run("r-new", {"orgId": ORG, "startedAt": 30.0, "status": "running"})
    harness.put_run("r-mid", {"orgId": ORG, "startedAt": 20.0, "status": "failed"})
    harness.put_run("r-else", {"orgId": "other", "startedAt": 40.0})
    runs = harness.store.list_org_runs(ORG, limit=2)
    assert [r["runId"] for r in runs] == ["r-new", "r-mid"]


def test_reviews_and_their_audit(harness: Harness) -> None:
    store = harness.store
    store.write_review(ORG, 5, {"state": "acknowledged"}, {"at": "2027-01-01T00:00:00", "to": "a"})
    store.write_review(ORG, 5, {"state": "resolved"}, {"at": "2027-01-02T00:00:00", "to": "r"})
    reviews = store.get_reviews(ORG)
    assert reviews[5]["state"] == "resolved"
    assert reviews[5]["customerId"] == 5
    assert [a["to"] for a in store.list_audit(ORG, 5)] == ["a", "r"]
    assert store.get_reviews("other") == {}
    assert (store.get_review(ORG, 5) or {}).get("state") == "resolved"
    assert store.get_review(ORG, 6) is None
    assert store.get_review("other", 5) is None


def test_history_newest_first(harness: Harness) -> None:
    for day, points in ((1, 10), (2, 20)):
        at = datetime(2027, 1, day, tzinfo=UTC)
        update = ProfileUpdate(ORG, 6, {"orgId": ORG, "points": points}, ()).with_history(
            {"points": points - 10}, run_id=f"run-{day}", at=at
        )
        harness.write_with_history(update)
    entries = harness.store.list_history(ORG, 6, limit=5)
    assert [e["runId"] for e in entries] == ["run-2", "run-1"]
    assert entries[0]["before"]["points"] == 10 and entries[0]["after"]["points"] == 20
    assert harness.store.list_history(ORG, 7, limit=5) == []
