"""The review state machine (``domain.review``), transition by transition: every move from every
state, allowed or refused with its message; how a stored review reads after a sync; and the
change and audit entry a move stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loyalty_worker.domain.review import (
    CHOSEN_OUTCOMES,
    TRANSITIONS,
    AuditEntry,
    Discrepancy,
    Move,
    Outcome,
    Reading,
    Review,
    ReviewRefused,
    ReviewState,
    decide,
    reading,
    settle,
)

AT = datetime(2027, 3, 14, 12, 0, tzinfo=UTC)
EARLIER = "2027-03-01T09:00:00+00:00"
GAP = Discrepancy(status="alpine_higher", amount=150, tier="gold")
AGREED = Discrepancy(status="matched", amount=0, tier="gold")

OPEN, ACKNOWLEDGED, RESOLVED, NONE = (
    ReviewState.OPEN,
    ReviewState.ACKNOWLEDGED,
    ReviewState.RESOLVED,
    ReviewState.NONE,
)


def stored(state: ReviewState, outcome: Outcome | None = None) -> Review | None:
    """A review stored at ``GAP`` that reads ``state`` (None: open without a review yet)."""
    if state is OPEN:
        return None
    comment = "checked" if state is RESOLVED else None
    return Review(
        state,
        outcome=outcome or (Outcome.FIXED if state is RESOLVED else None),
        comment=comment,
        discrepancy=GAP.amount,
        loyalty_status=GAP.status,
        tier=GAP.tier,
        opened_at=EARLIER,
    )


RESOLVE = Move("resolved", "expected", "accrual lag")
MOVES = {"open": Move("open"), "acknowledged": Move("acknowledged"), "resolved": RESOLVE}
# Every (from, to): the table, written out once more here, as a person would read it.
EXPECTED = {
    (OPEN, "open"): "a review open cannot become open",
    (OPEN, "acknowledged"): None,
    (OPEN, "resolved"): None,
    (ACKNOWLEDGED, "open"): None,
    (ACKNOWLEDGED, "acknowledged"): "a review acknowledged cannot become acknowledged",
    (ACKNOWLEDGED, "resolved"): None,
    (RESOLVED, "open"): None,
    (RESOLVED, "acknowledged"): "a review resolved cannot become acknowledged",
    (RESOLVED, "resolved"): "a review resolved cannot become resolved",
    (NONE, "open"): "a review none cannot become open",
    (NONE, "acknowledged"): "a review none cannot become acknowledged",
    (NONE, "resolved"): "a review none cannot become resolved",
}


def test_the_table_is_the_one_the_tests_read() -> None:
    allowed = {(state, to.value) for state, targets in TRANSITIONS.items() for to in targets}
    assert allowed == {move for move, refused in EXPECTED.items() if refused is None}


@pytest.mark.parametrize(("was", "to"), sorted(EXPECTED, key=str))
def test_every_move_from_every_state(was: ReviewState, to: str) -> None:
    review, seen = (None, AGREED) if was is NONE else (stored(was), GAP)
    refused = EXPECTED[(was, to)]
    if refused is not None:
        with pytest.raises(ReviewRefused) as caught:
            decide(review, seen, MOVES[to], by="Ana", at=AT)
        assert str(caught.value) == refused
        return
    change = decide(review, seen, MOVES[to], by="Ana", at=AT)
    assert change.review.state == to
    assert change.audit == AuditEntry(
        at=AT.isoformat(),
        by="Ana",
        from_state=was.value,
        to_state=to,
        outcome="expected" if to == "resolved" else None,
        comment="accrual lag" if to == "resolved" else None,
        id="000001",  # the review's first change
    )
    assert change.review.changes == 1
    # The review is made at the discrepancy seen now, by whom and when; it keeps its opening.
    assert (change.review.discrepancy, change.review.loyalty_status, change.review.tier) == (
        150,
        "alpine_higher",
        "gold",
    )
    assert (change.review.updated_by, change.review.updated_at) == ("Ana", AT.isoformat())
    assert change.review.opened_at == (AT.isoformat() if review is None else EARLIER)


def test_an_unknown_target_is_refused_before_the_table() -> None:
    for to in ("none", "closed", ""):
        with pytest.raises(ReviewRefused) as caught:
            decide(None, GAP, Move(to), by="Ana", at=AT)
        assert str(caught.value) == f"unknown review state {to!r}"


@pytest.mark.parametrize("outcome", [None, "", "matched", "solved"])
def test_resolving_needs_an_outcome_a_person_may_choose(outcome: str | None) -> None:
    with pytest.raises(ReviewRefused) as caught:
        decide(None, GAP, Move("resolved", outcome, "why"), by="Ana", at=AT)
    assert str(caught.value) == (
        "resolving needs an outcome: one of fixed, expected, no_action, false_positive"
    )


@pytest.mark.parametrize("comment", [None, "", "   "])
def test_resolving_needs_a_comment(comment: str | None) -> None:
    with pytest.raises(ReviewRefused) as caught:
        decide(None, GAP, Move("resolved", "fixed", comment), by="Ana", at=AT)
    assert str(caught.value) == "resolving needs a comment"


@pytest.mark.parametrize("outcome", CHOSEN_OUTCOMES)
def test_each_chosen_outcome_resolves_with_its_comment_trimmed(outcome: Outcome) -> None:
    change = decide(None, GAP, Move("resolved", outcome.value, "  ok  "), by="Ana", at=AT)
    assert (change.review.outcome, change.review.comment) == (outcome, "ok")


def test_only_a_resolution_keeps_an_outcome_and_a_comment() -> None:
    change = decide(None, GAP, Move("acknowledged", "fixed", "noted"), by="Ana", at=AT)
    assert (change.review.outcome, change.review.comment) == (None, None)
    assert (change.audit.outcome, change.audit.comment) == (None, None)


def test_how_a_stored_review_reads_now() -> None:
    acked = stored(ACKNOWLEDGED)
    resolved = stored(RESOLVED)
    moved = Discrepancy(status="alpine_higher", amount=180, tier="gold")
    flipped = Discrepancy(status="calculated_higher", amount=150, tier="gold")
    assert reading(None, GAP) == Reading(OPEN)
    assert reading(None, AGREED) == Reading(NONE)
    assert reading(acked, GAP) == Reading(ACKNOWLEDGED)
    assert reading(resolved, GAP) == Reading(RESOLVED, Outcome.FIXED, "checked")
    # The discrepancy changed since: open again.
    assert reading(acked, moved) == Reading(OPEN)
    assert reading(resolved, flipped) == Reading(OPEN)
    # The sources agree again: resolved as matched (a resolution a person made stays).
    assert reading(acked, AGREED) == Reading(RESOLVED, Outcome.MATCHED)
    assert reading(resolved, AGREED) == Reading(RESOLVED, Outcome.FIXED, "checked")
    # Matched, then the sources differ again at the same gap: open again.
    assert reading(stored(RESOLVED, Outcome.MATCHED), GAP) == Reading(OPEN)


def test_a_sync_settles_a_review_that_reads_otherwise() -> None:
    acked = stored(ACKNOWLEDGED)
    assert acked is not None
    assert settle(acked, GAP, at=AT) is None  # reads as stored: nothing to write
    reopened = settle(acked, Discrepancy("alpine_higher", 180, "gold"), at=AT)
    assert reopened is not None
    assert (reopened.review.state, reopened.review.discrepancy) == (OPEN, 180)
    assert reopened.review.opened_at == AT.isoformat()  # a new discrepancy opens now
    assert reopened.audit == AuditEntry(AT.isoformat(), "sync", "acknowledged", "open", id="000001")
    matched = settle(acked, AGREED, at=AT)
    assert matched is not None
    assert (matched.review.state, matched.review.outcome) == (RESOLVED, Outcome.MATCHED)
    assert matched.review.opened_at == EARLIER
    assert matched.audit == AuditEntry(
        AT.isoformat(), "sync", "acknowledged", "resolved", "matched", id="000001"
    )
