"""Undo and bulk review changes: the undo window (10 minutes, on an injected clock), only the
latest change, what an undo restores, one audit entry per customer in a bulk change (all or
none), and the banner a page shows after them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loyalty_worker.domain.review import (
    SYNC,
    UNDO_WINDOW,
    AuditEntry,
    Discrepancy,
    Move,
    Outcome,
    Review,
    ReviewRefused,
    ReviewState,
    decide,
    settle,
    undo,
)
from loyalty_worker.services.dashboard.page import NotFound
from loyalty_worker.services.dashboard.review_changes import (
    banner,
    change_reviews,
    outcome_words,
    parse_changes,
    undo_reviews,
)
from tests.fakes import InMemoryDashboardStore, QueryableProfileStore

AT = datetime(2027, 3, 14, 12, 0, tzinfo=UTC)
GAP = Discrepancy(status="alpine_higher", amount=150, tier="gold")
RESOLVE = Move("resolved", "expected", "accrual lag")


class Clock:
    """A clock the test moves: the seam the dashboard's services take as ``now``."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, span: timedelta) -> None:
        self.at += span


class Reviews:
    """One review changed move by move in memory, its audit kept as the store keeps it."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.review: Review | None = None
        self.audit: list[AuditEntry] = []

    def move(self, move: Move, by: str = "Ana") -> str:
        change = decide(self.review, GAP, move, by=by, at=self.clock())
        return self._keep(change.review, change.audit)

    def undo(self, entry: str, by: str = "Ana") -> str:
        change = undo(self.review, self.audit, GAP, entry, by=by, at=self.clock())
        return self._keep(change.review, change.audit)

    def _keep(self, review: Review, entry: AuditEntry) -> str:
        self.review = review
        self.audit.append(entry)
        return entry.id


def test_undo_restores_the_state_before_the_change_as_its_own_entry() -> None:
    clock = Clock(AT)
    reviews = Reviews(clock)
    first = reviews.move(RESOLVE)
    clock.advance(timedelta(minutes=3))
    undone = reviews.undo(first, by="Bo")
    review = reviews.review
    assert review is not None
    assert (review.state, review.outcome, review.comment) == (ReviewState.OPEN, None, None)
    entry = reviews.audit[-1]
    assert (entry.id, entry.undoes, entry.by) == (undone, first, "Bo")
    assert (entry.from_state, entry.to_state) == ("resolved", "open")
    assert [e.id for e in reviews.audit] == ["000001", "000002"]
    assert review.changes == 2


def test_undo_brings_back_the_previous_outcome_and_comment() -> None:
    clock = Clock(AT)
    reviews = Reviews(clock)
    reviews.move(RESOLVE)
    clock.advance(timedelta(minutes=1))
    reopened = reviews.move(Move("open"))
    reviews.undo(reopened)
    review = reviews.review
    assert review is not None
    assert (review.state, review.outcome, review.comment) == (
        ReviewState.RESOLVED,
        Outcome.EXPECTED,
        "accrual lag",
    )


@pytest.mark.parametrize(
    ("after", "allowed"),
    [
        (timedelta(minutes=9, seconds=59), True),
        (UNDO_WINDOW, True),
        (UNDO_WINDOW + timedelta(seconds=1), False),
        (timedelta(hours=2), False),
    ],
)
def test_undo_works_for_ten_minutes_after_the_change(after: timedelta, allowed: bool) -> None:
    clock = Clock(AT)
    reviews = Reviews(clock)
    first = reviews.move(Move("acknowledged"))
    clock.advance(after)
    if allowed:
        reviews.undo(first)
        assert reviews.review is not None and reviews.review.state is ReviewState.OPEN
        return
    with pytest.raises(ReviewRefused, match="can be undone for 10 minutes"):
        reviews.undo(first)
    assert reviews.review is not None and reviews.review.state is ReviewState.ACKNOWLEDGED


def test_only_the_latest_change_can_be_undone_and_an_undo_cannot() -> None:
    clock = Clock(AT)
    reviews = Reviews(clock)
    first = reviews.move(Move("acknowledged"))
    clock.advance(timedelta(seconds=30))
    second = reviews.move(RESOLVE)
    with pytest.raises(ReviewRefused, match="only the latest change"):
        reviews.undo(first)
    undone = reviews.undo(second)
    with pytest.raises(ReviewRefused, match="an undo cannot be undone"):
        reviews.undo(undone)
    with pytest.raises(ReviewRefused, match="only the latest change"):
        reviews.undo(second)  # undone already: the undo is the latest now
    with pytest.raises(ReviewRefused, match="no change 'nope'"):
        reviews.undo("nope")


def test_a_syncs_change_is_not_undone_nor_a_change_the_sync_moved_since() -> None:
    clock = Clock(AT)
    reviews = Reviews(clock)
    first = reviews.move(Move("acknowledged"))
    assert reviews.review is not None
    moved = Discrepancy(status="alpine_higher", amount=180, tier="gold")
    with pytest.raises(ReviewRefused, match="the review changed since"):
        undo(reviews.review, reviews.audit, moved, first, by="Ana", at=clock())
    change = settle(reviews.review, moved, at=clock())
    assert change is not None
    reviews._keep(change.review, change.audit)
    assert reviews.audit[-1].by == SYNC
    with pytest.raises(ReviewRefused, match="a sync made cannot be undone"):
        reviews.undo(reviews.audit[-1].id)


# --- The services: bulk, undo, banner ---------------------------------------------------------


def _org(*ids: int) -> InMemoryDashboardStore:
    base = QueryableProfileStore()
    for cid in ids:
        base.profiles[f"org-1_{cid}"] = {
            "orgId": "org-1",
            "alleavesCustomerId": cid,
            "loyaltyStatus": "alpine_higher",
            "loyaltyDiscrepancy": 100 + cid,
            "tier": "gold",
        }
    return InMemoryDashboardStore(base)


def test_a_bulk_change_is_one_audit_entry_per_customer() -> None:
    store = _org(1, 2, 3, 4)
    changed = change_reviews(
        "org-1", [1, 2, 3, 2], Move("acknowledged"), by="Ana", store=store, now=AT
    )
    assert [item.customer_id for item in changed.items] == [1, 2, 3]
    for cid in (1, 2, 3):
        audit = store.audit[("org-1", cid)]
        assert [(a.by, a.from_state, a.to_state, a.id) for a in audit] == [
            ("Ana", "open", "acknowledged", "000001")
        ]
    assert ("org-1", 4) not in store.audit
    shown = banner("org-1", [(i.customer_id, i.entry_id) for i in changed.items], store, now=AT)
    assert shown is not None
    assert shown.message == "Acknowledged 3 reviews"
    assert shown.undoable and shown.changes == ["1.000001", "2.000001", "3.000001"]


def test_a_bulk_change_is_all_or_none_and_names_who_it_does_not_fit() -> None:
    store = _org(1, 2, 3)
    change_reviews("org-1", [2], Move("acknowledged"), by="Ana", store=store, now=AT)
    with pytest.raises(ReviewRefused, match="customer 2: a review acknowledged cannot"):
        change_reviews("org-1", [1, 2, 3], Move("acknowledged"), by="Ana", store=store, now=AT)
    assert ("org-1", 1) not in store.audit and ("org-1", 3) not in store.audit
    with pytest.raises(ReviewRefused, match="needs an outcome"):
        change_reviews("org-1", [1, 3], Move("resolved"), by="Ana", store=store, now=AT)
    with pytest.raises(ReviewRefused, match="acknowledges or resolves"):
        change_reviews("org-1", [2], Move("open"), by="Ana", store=store, now=AT)
    with pytest.raises(ReviewRefused, match="select at least one"):
        change_reviews("org-1", [], Move("acknowledged"), by="Ana", store=store, now=AT)
    with pytest.raises(NotFound):
        change_reviews("org-1", [1, 9], Move("acknowledged"), by="Ana", store=store, now=AT)
    resolved = change_reviews("org-1", [1, 3], RESOLVE, by="Ana", store=store, now=AT)
    assert {(i.state, i.outcome, i.comment) for i in resolved.items} == {
        ("resolved", "expected", "accrual lag")
    }


def test_undo_of_a_bulk_change_undoes_every_customer_within_the_window() -> None:
    store = _org(1, 2, 3)
    clock = Clock(AT)
    changed = change_reviews("org-1", [1, 2, 3], RESOLVE, by="Ana", store=store, now=clock())
    pairs = [(i.customer_id, i.entry_id) for i in changed.items]
    first = banner("org-1", pairs[:1], store, now=clock())
    assert first is not None and first.message == "Resolved 1 as expected"
    clock.advance(timedelta(minutes=10))
    undone = undo_reviews("org-1", pairs, by="Bo", store=store, now=clock())
    assert [i.state for i in undone.items] == ["open"] * 3
    for cid in (1, 2, 3):
        entries = store.audit[("org-1", cid)]
        assert [(e.to_state, e.undoes) for e in entries] == [
            ("resolved", None),
            ("open", "000001"),
        ]
    after = banner("org-1", [(i.customer_id, i.entry_id) for i in undone.items], store, now=AT)
    assert after is not None
    assert after.message == "Undid the change of 3 reviews: open again"
    assert not after.undoable and after.refused is None


def test_undo_after_the_window_is_refused_whole_and_the_banner_says_why() -> None:
    store = _org(1, 2)
    clock = Clock(AT)
    early = change_reviews("org-1", [1], Move("acknowledged"), by="Ana", store=store, now=AT)
    clock.advance(timedelta(minutes=6))
    late = change_reviews("org-1", [2], Move("acknowledged"), by="Ana", store=store, now=clock())
    clock.advance(timedelta(minutes=5))  # 11 minutes after the first, 5 after the second
    pairs = [(1, early.items[0].entry_id), (2, late.items[0].entry_id)]
    with pytest.raises(ReviewRefused, match="customer 1: cannot undo: a change can be undone"):
        undo_reviews("org-1", pairs, by="Ana", store=store, now=clock())
    assert len(store.audit[("org-1", 2)]) == 1  # nothing written for customer 2 either
    shown = banner("org-1", pairs, store, now=clock())
    assert shown is not None and not shown.undoable
    assert shown.refused is not None and "10 minutes" in shown.refused
    assert undo_reviews("org-1", pairs[1:], by="Ana", store=store, now=clock()).items


def test_changes_are_named_as_customer_and_entry_and_outcomes_in_words() -> None:
    assert parse_changes(["1.000001,22.000003", "", "5.abc"]) == [
        (1, "000001"),
        (22, "000003"),
        (5, "abc"),
    ]
    for bad in ("1", "x.000001", "1.00-1", "1.000001;"):
        with pytest.raises(ReviewRefused):
            parse_changes([bad])
    assert outcome_words("no_action") == "no action needed"
    assert outcome_words("false_positive") == "false positive"
    assert outcome_words(None) == outcome_words("unknown") == ""
