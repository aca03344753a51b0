"""One set of DashboardStore checks, over the in-memory fake and the Firestore store (emulator).

Profiles and run summaries are arranged with raw writes (Firestore) or the fake's dicts; the
checks then read through the store only, so the dashboard's unit tests rely on behaviour the
real store has too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest
from google.cloud import firestore

from loyalty_worker.adapters.dashboard_store import FirestoreDashboardStore
from loyalty_worker.adapters.firestore import PROFILES, RUN_SUMMARIES, FirestoreProfileStore
from loyalty_worker.domain.profile import ProfileDocument, ProfileUpdate
from loyalty_worker.domain.review import (
    AuditEntry,
    Outcome,
    Review,
    ReviewChange,
    ReviewState,
    entry_id,
)
from loyalty_worker.ports.dashboard import DashboardStore
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
    assert store.count_profiles(ORG, {"tier": "gold"}) == 2
    assert store.count_profiles(ORG, {"tier": "platinum"}) == 0
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


def test_a_field_edited_into_another_type_reads_as_missing(harness: Harness) -> None:
    harness.put_profile(1, profile(1, points="lots", tier="gold", loyaltyDiscrepancy=None))
    harness.put_run("r-odd", {"orgId": ORG, "startedAt": 10.0, "listed": "many", "alert": True})
    assert harness.store.get_profile(ORG, 1) == {
        "orgId": ORG,
        "alleavesCustomerId": 1,
        "tier": "gold",
    }
    assert harness.store.list_org_runs(ORG, limit=5) == [
        {"orgId": ORG, "startedAt": 10.0, "runId": "r-odd"}
    ]


def test_runs_newest_first(harness: Harness) -> None:
    harness.put_run("r-old", {"orgId": ORG, "startedAt": 10.0, "status": "completed"})
    harness.put_run("r-new", {"orgId": ORG, "startedAt": 30.0, "status": "running"})
    harness.put_run("r-mid", {"orgId": ORG, "startedAt": 20.0, "status": "failed"})
    harness.put_run("r-else", {"orgId": "other", "startedAt": 40.0})
    runs = harness.store.list_org_runs(ORG, limit=2)
    assert [r["runId"] for r in runs] == ["r-new", "r-mid"]


def test_runs_since_a_start_newest_first_within_the_limit(harness: Harness) -> None:
    for run_id, started in (("r-10", 10.0), ("r-20", 20.0), ("r-30", 30.0), ("r-40", 40.0)):
        harness.put_run(run_id, {"orgId": ORG, "startedAt": started, "status": "completed"})
    harness.put_run("r-else", {"orgId": "other", "startedAt": 35.0})
    store = harness.store
    assert [r["runId"] for r in store.list_org_runs_since(ORG, 20.0, limit=10)] == [
        "r-40",
        "r-30",
        "r-20",
    ]
    assert [r["runId"] for r in store.list_org_runs_since(ORG, 15.0, limit=2)] == ["r-40", "r-30"]
    assert store.list_org_runs_since(ORG, 41.0, limit=10) == []
    harness.put_run("r-50", {"orgId": ORG, "startedAt": 50.0, "status": "completed", "x": 1})
    (read,) = store.list_org_runs_since(ORG, 45.0, limit=10, fields=["status"])
    assert read == {"runId": "r-50", "startedAt": 50.0, "status": "completed"}


def change(
    state: ReviewState, *, loyalty_status: str, tier: str | None = None, discrepancy: int = 40
) -> ReviewChange:
    """A review moved to ``state`` at a discrepancy, and its audit entry."""
    stored = Review(state, discrepancy=discrepancy, loyalty_status=loyalty_status, tier=tier)
    audit = AuditEntry(
        at="2027-01-01T00:00:00+00:00", by="Ana", from_state="open", to_state=state, id="000001"
    )
    return ReviewChange(stored, audit)


def test_reviews_and_their_audit(harness: Harness) -> None:
    store = harness.store
    acknowledged = change(ReviewState.ACKNOWLEDGED, loyalty_status="alpine_higher")
    store.write_review(ORG, 5, acknowledged)
    resolved = Review(
        ReviewState.RESOLVED,
        outcome=Outcome.FIXED,
        comment="ok",
        discrepancy=40,
        loyalty_status="alpine_higher",
        tier="gold",
        opened_at="2027-01-01T00:00:00+00:00",
        updated_at="2027-01-02T00:00:00+00:00",
        updated_by="Ana",
    )
    audit = AuditEntry(
        "2027-01-02T00:00:00+00:00", "Ana", "acknowledged", "resolved", "fixed", "ok", "000002"
    )
    store.write_review(ORG, 5, ReviewChange(resolved, audit))
    assert store.get_reviews(ORG) == {5: resolved}
    assert store.get_review(ORG, 5) == resolved
    assert [(a.from_state, a.to_state) for a in store.list_audit(ORG, 5, limit=10)] == [
        ("acknowledged", "resolved"),
        ("open", "acknowledged"),
    ]
    assert store.list_audit(ORG, 5, limit=1) == [audit]
    assert store.get_audit(ORG, 5, "000002") == audit
    assert store.get_audit(ORG, 5, "000009") is None
    assert store.get_audit(ORG, 6, "000001") is None
    assert store.get_reviews("other") == {}
    assert store.get_review(ORG, 6) is None
    assert store.get_review("other", 5) is None


def test_reviews_by_state_and_by_customer_and_their_counts(harness: Harness) -> None:
    store = harness.store
    for cid in range(1, 36):
        state = ReviewState.ACKNOWLEDGED if cid % 2 else ReviewState.RESOLVED
        status = "alpine_higher" if cid % 3 else "calculated_higher"
        tier = "gold" if cid % 5 else "silver"
        store.write_review(ORG, cid, change(state, loyalty_status=status, tier=tier))
    store.write_review("other", 1, change(ReviewState.ACKNOWLEDGED, loyalty_status="alpine_higher"))
    assert sorted(store.get_reviews(ORG, state=ReviewState.RESOLVED)) == list(range(2, 36, 2))
    wanted = [1, 2, 33, 34, 35, 99]  # more than one "in" query's worth when chunked by 30
    assert sorted(store.get_reviews(ORG, customer_ids=wanted + list(range(40, 70)))) == [
        1, 2, 33, 34, 35,
    ]  # fmt: skip
    assert store.get_reviews(ORG, customer_ids=[]) == {}
    acked = ReviewState.ACKNOWLEDGED
    assert store.count_reviews(ORG, state=acked, loyalty_status="alpine_higher") == sum(
        1 for cid in range(1, 36) if cid % 2 and cid % 3
    )
    assert store.count_reviews(
        ORG, state=acked, loyalty_status="calculated_higher", tier="silver"
    ) == sum(1 for cid in range(1, 36) if cid % 2 and not cid % 3 and not cid % 5)


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


def test_pages_of_an_ordered_query_from_a_keyset_cursor(harness: Harness) -> None:
    gaps = {1: 50, 2: 300, 3: 50, 4: 120, 5: 7}
    for cid, gap in gaps.items():
        harness.put_profile(
            cid, profile(cid, loyaltyStatus="alpine_higher", loyaltyDiscrepancy=gap, tier="gold")
        )
    harness.put_profile(6, profile(6, loyaltyStatus="alpine_higher"))  # no discrepancy field
    harness.put_profile(7, profile(7, loyaltyStatus="matched", loyaltyDiscrepancy=999))
    harness.put_profile(
        8, {"orgId": "other", "alleavesCustomerId": 8, "loyaltyStatus": "alpine_higher"}
    )
    store = harness.store
    equals = {"loyaltyStatus": "alpine_higher"}
    order = (("loyaltyDiscrepancy", True), ("alleavesCustomerId", False))

    def ids(found: list[ProfileDocument]) -> list[int]:
        return [p.get("alleavesCustomerId", 0) for p in found]

    first = store.page_profiles(ORG, equals, order, limit=2)
    assert ids(first) == [2, 4]
    last = first[-1]
    rest = store.page_profiles(ORG, equals, order, after=(last["loyaltyDiscrepancy"], 4), limit=10)
    assert ids(rest) == [1, 3, 5]  # ties by customer id; profile 6 lacks the order field
    assert ids(store.page_profiles(ORG, equals, order, after=(50, 1), limit=10)) == [3, 5]
    ascending = (("alleavesCustomerId", False),)
    assert ids(store.page_profiles(ORG, equals, ascending, after=(3,), limit=2)) == [4, 5]
    both = {"loyaltyStatus": "alpine_higher", "tier": "gold"}
    assert ids(store.page_profiles(ORG, both, ascending, limit=10)) == [1, 2, 3, 4, 5]
    projected = store.page_profiles(
        ORG, equals, order, limit=1, fields=("alleavesCustomerId", "tier")
    )
    assert projected[0]["alleavesCustomerId"] == 2 and projected[0]["tier"] == "gold"
    assert "orgId" not in projected[0] and "loyaltyStatus" not in projected[0]
    assert store.count_profiles(ORG, equals) == 6
    assert store.count_profiles(ORG, both) == 5
    assert store.count_profiles(ORG, {"loyaltyStatus": "matched", "tier": "gold"}) == 0


def test_pages_by_timestamp_and_reads_profiles_by_id(harness: Harness) -> None:
    day = datetime(2027, 1, 1, tzinfo=UTC)
    for cid, hours in ((1, 5), (2, 1), (3, 5), (4, 3)):
        harness.put_profile(
            cid, profile(cid, loyaltyStatus="x", pointsLastCalculated=day.replace(hour=hours))
        )
    order = (("pointsLastCalculated", False), ("alleavesCustomerId", False))
    store = harness.store
    found = store.page_profiles(ORG, {"loyaltyStatus": "x"}, order, limit=10)
    assert [p["alleavesCustomerId"] for p in found] == [2, 4, 1, 3]
    after = store.page_profiles(
        ORG, {"loyaltyStatus": "x"}, order, after=(day.replace(hour=5), 1), limit=10
    )
    assert [p["alleavesCustomerId"] for p in after] == [3]
    read = store.read_profiles(ORG, [1, 3, 9], ("alleavesCustomerId",))
    assert sorted(read) == [1, 3] and read[3]["alleavesCustomerId"] == 3
    assert store.read_profiles("other", [1]) == {}


def entry(number: int, at: str, *, by: str = "Ana") -> ReviewChange:
    """A review's ``number``-th change, made at ``at``."""
    stored = Review(ReviewState.ACKNOWLEDGED, changes=number)
    audit = AuditEntry(at, by, "open", "acknowledged", id=entry_id(number))
    return ReviewChange(stored, audit)


def stamp(day: int, hour: int = 0) -> str:
    return datetime(2027, 1, day, hour, tzinfo=UTC).isoformat()


def ids(entries: list[AuditEntry]) -> list[str]:
    return [e.id[-2:] for e in entries]


def test_the_audit_is_read_a_page_at_a_time_newest_first(harness: Harness) -> None:
    store = harness.store
    # entries 4 and 5 share their time: the id orders them
    days = {1: 1, 2: 2, 3: 3, 4: 4, 5: 4, 6: 5, 7: 6}
    for number, day in days.items():
        store.write_review(ORG, 5, entry(number, stamp(day)))
    store.write_review(ORG, 6, entry(1, stamp(9)))
    key = {number: (stamp(day), entry_id(number)) for number, day in days.items()}

    assert ids(store.list_audit(ORG, 5, limit=3)) == ["07", "06", "05"]
    assert ids(store.list_audit(ORG, 5, limit=3, before=key[5])) == ["04", "03", "02"]
    assert ids(store.list_audit(ORG, 5, limit=3, before=key[2])) == ["01"]
    # toward newer: the ``limit`` just newer than the key, still newest first
    assert ids(store.list_audit(ORG, 5, limit=3, after=key[1])) == ["04", "03", "02"]
    assert ids(store.list_audit(ORG, 5, limit=3, after=key[4])) == ["07", "06", "05"]
    assert store.list_audit(ORG, 5, limit=3, after=key[7]) == []
    # only those made at or after ``since``
    assert ids(store.list_audit(ORG, 5, limit=9, since=stamp(4))) == ["07", "06", "05", "04"]
    assert ids(store.list_audit(ORG, 5, limit=2, before=key[6], since=stamp(4))) == ["05", "04"]
    assert ids(store.list_audit(ORG, 5, limit=9, after=key[1], since=stamp(3))) == [
        "07", "06", "05", "04", "03"
    ]  # fmt: skip
    assert ids(store.list_audit(ORG, 6, limit=9)) == ["01"]
    assert store.list_audit("other", 5, limit=9) == []


def test_the_sweep_deletes_only_audit_entries_older_than_its_cutoff(harness: Harness) -> None:
    store = harness.store
    for customer in (5, 6):
        for number, day in ((1, 1), (2, 2), (3, 3)):
            store.write_review(ORG, customer, entry(number, stamp(day)))
    store.write_review("other", 5, entry(1, stamp(1, 12)))
    store.write_review("other", 5, entry(2, stamp(4)))

    cutoff = stamp(3)
    assert store.delete_audit_before(cutoff, limit=3) == 3
    assert store.delete_audit_before(cutoff, limit=500) == 2
    assert store.delete_audit_before(cutoff, limit=500) == 0
    assert ids(store.list_audit(ORG, 5, limit=9)) == ["03"]
    assert ids(store.list_audit(ORG, 6, limit=9)) == ["03"]
    assert ids(store.list_audit("other", 5, limit=9)) == ["02"]


@pytest.mark.integration
def test_an_audit_entry_is_written_with_its_expiry(firestore_client: firestore.Client) -> None:
    store = FirestoreDashboardStore(firestore_client, retention=timedelta(days=30))
    store.write_review(ORG, 5, entry(1, stamp(1)))
    review = firestore_client.collection("loyalty_reviews").document(f"{ORG}_5")

    stored = review.collection("audit").document("000001").get().to_dict() or {}

    assert stored["expireAt"] == datetime(2027, 1, 31, tzinfo=UTC)
    assert store.get_audit(ORG, 5, "000001") == entry(1, stamp(1)).audit


@pytest.mark.integration
def test_the_sweep_leaves_audit_documents_outside_the_reviews(
    firestore_client: firestore.Client,
) -> None:
    store = FirestoreDashboardStore(firestore_client)
    elsewhere = firestore_client.collection("shops").document("s1").collection("audit")
    elsewhere.document("a").set({"at": stamp(1)})
    firestore_client.collection("audit").document("b").set({"at": stamp(1)})
    store.write_review(ORG, 5, entry(1, stamp(1)))

    assert store.delete_audit_before(stamp(2), limit=500) == 1
    assert elsewhere.document("a").get().exists
    assert firestore_client.collection("audit").document("b").get().exists
