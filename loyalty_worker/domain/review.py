"""A discrepancy's review: a small state machine the dashboard's admins move, and that the syncs
move back when the discrepancy changes.

``open`` → ``acknowledged`` → ``resolved`` (resolving names an outcome and says why in a comment),
and back to ``open``; ``TRANSITIONS`` is the whole table. A review records the discrepancy it was
made at: when a later sync changes that customer's discrepancy it reads ``open`` again, and when
the sources agree again it reads ``resolved`` with the outcome ``matched`` (``reading``). Each
change, a person's (``decide``) or a sync's (``settle``), is the stored review plus one audit
entry, both built by ``_changed``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

# What the profile's ``loyaltyStatus`` is while the sources disagree beyond the tolerance.
DISCREPANCY_STATUSES = ("alpine_higher", "calculated_higher")
# Who changes a review when a sync moved its discrepancy.
SYNC = "sync"


class ReviewState(enum.StrEnum):
    """Where a review is; ``none`` is how a customer without a discrepancy (and never reviewed)
    reads: nothing to review, and nothing a person can move."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    NONE = "none"

    @classmethod
    def of(cls, value: object) -> ReviewState:
        """The state a stored value names; ``open`` for anything else (a review without one)."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.OPEN


class Outcome(enum.StrEnum):
    """Why a review was resolved: one a person chose, or ``matched`` when the sources agree."""

    FIXED = "fixed"
    EXPECTED = "expected"
    NO_ACTION = "no_action"
    FALSE_POSITIVE = "false_positive"
    MATCHED = "matched"

    @classmethod
    def of(cls, value: object) -> Outcome | None:
        """The outcome a stored value names; None for none (or one this code does not know)."""
        try:
            return cls(str(value))
        except ValueError:
            return None


# The outcomes a person may choose when resolving; ``matched`` is the syncs' alone.
CHOSEN_OUTCOMES = (Outcome.FIXED, Outcome.EXPECTED, Outcome.NO_ACTION, Outcome.FALSE_POSITIVE)
# The states a review is stored in once a person has moved it away from open.
REVIEWED_STATES = (ReviewState.ACKNOWLEDGED, ReviewState.RESOLVED)

# Every move a person may make: from each state, the states it may become.
TRANSITIONS: dict[ReviewState, frozenset[ReviewState]] = {
    ReviewState.OPEN: frozenset({ReviewState.ACKNOWLEDGED, ReviewState.RESOLVED}),
    ReviewState.ACKNOWLEDGED: frozenset({ReviewState.RESOLVED, ReviewState.OPEN}),
    ReviewState.RESOLVED: frozenset({ReviewState.OPEN}),
    ReviewState.NONE: frozenset(),
}
# The states a move may name as its target.
TARGETS = (ReviewState.OPEN, ReviewState.ACKNOWLEDGED, ReviewState.RESOLVED)


class ReviewRefused(ValueError):
    """A review change the current state does not allow (or an outcome or comment missing)."""


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """A customer's reconciliation as the profile shows it now (what a review is made at): its
    status, the gap (Alpine IQ minus calculated) and the tier."""

    status: str | None
    amount: int | None
    tier: str | None

    @property
    def disagrees(self) -> bool:
        """The sources differ beyond the tolerance: there is something to review."""
        return self.status in DISCREPANCY_STATUSES


@dataclass(frozen=True, slots=True)
class Review:
    """``loyalty_reviews/{orgId}_{customerId}``: a customer's review as stored, with the
    discrepancy it was made at, who changed it last and since when the discrepancy is open."""

    state: ReviewState
    outcome: Outcome | None = None
    comment: str | None = None
    discrepancy: int | None = None
    loyalty_status: str | None = None
    tier: str | None = None
    opened_at: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """``loyalty_reviews/{id}/audit/{entry}``: one change of a review (who, when, from, to)."""

    at: str
    by: str
    from_state: str | None
    to_state: str
    outcome: str | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """How a review reads now: its state, outcome and comment."""

    state: ReviewState
    outcome: Outcome | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewChange:
    """A review to store and the audit entry that records the move, written together."""

    review: Review
    audit: AuditEntry


@dataclass(frozen=True, slots=True)
class Move:
    """What a person asks of a review: the state to move it to and, to resolve it, an outcome
    and a comment."""

    to: str
    outcome: str | None = None
    comment: str | None = None


def reading(review: Review | None, seen: Discrepancy) -> Reading:
    """The review as it reads now: re-opened when the discrepancy changed since it was made,
    resolved as ``matched`` when the sources agree again."""
    if not seen.disagrees:
        if review is None:  # never under review: nothing to show
            return Reading(ReviewState.NONE)
        if review.state is ReviewState.RESOLVED:
            return Reading(review.state, review.outcome, review.comment)
        return Reading(ReviewState.RESOLVED, Outcome.MATCHED)
    if review is None:
        return Reading(ReviewState.OPEN)
    same = review.discrepancy == seen.amount and review.loyalty_status == seen.status
    if same and review.outcome is not Outcome.MATCHED:
        return Reading(review.state, review.outcome, review.comment)
    return Reading(ReviewState.OPEN)


def decide(
    review: Review | None,
    seen: Discrepancy,
    move: Move,
    *,
    by: str,
    at: datetime,
) -> ReviewChange:
    """A person's move of a review (acknowledge, resolve, re-open) from how it reads now;
    ReviewRefused for a move the table does not allow, or a resolution without an outcome or
    a comment. Only a resolution keeps its outcome and comment."""
    current = reading(review, seen).state
    to = _target(move.to)
    if to not in TRANSITIONS[current]:
        raise ReviewRefused(f"a review {current} cannot become {to}")
    outcome, comment = None, None
    if to is ReviewState.RESOLVED:
        outcome = Outcome.of(move.outcome)
        if outcome not in CHOSEN_OUTCOMES:
            choices = ", ".join(CHOSEN_OUTCOMES)
            raise ReviewRefused(f"resolving needs an outcome: one of {choices}")
        comment = (move.comment or "").strip() or None
        if comment is None:
            raise ReviewRefused("resolving needs a comment")
    stamp = at.isoformat()
    opened = (review.opened_at if review is not None else None) or stamp
    return _changed(seen, current, Reading(to, outcome, comment), by, stamp, opened)


def settle(review: Review, seen: Discrepancy, *, at: datetime) -> ReviewChange | None:
    """The change (by ``sync``) that brings a stored review to how it reads now, if it reads
    otherwise: re-opened (open since now), or resolved as ``matched``."""
    now = reading(review, seen)
    if now.state is review.state and now.outcome is review.outcome:
        return None
    stamp = at.isoformat()
    opened = stamp if now.state is ReviewState.OPEN else review.opened_at
    now = Reading(now.state, now.outcome)  # a sync writes no comment
    return _changed(seen, review.state, now, SYNC, stamp, opened)


def _target(to: str) -> ReviewState:
    if to not in TARGETS:
        raise ReviewRefused(f"unknown review state {to!r}")
    return ReviewState(to)


def _changed(
    seen: Discrepancy,
    was: ReviewState,
    now: Reading,
    by: str,
    stamp: str,
    opened_at: str | None,
) -> ReviewChange:
    """The stored review after a move to ``now``, made at the discrepancy ``seen``, and its
    audit entry: the one place both are built."""
    stored = Review(
        state=now.state,
        outcome=now.outcome,
        comment=now.comment,
        discrepancy=seen.amount,
        loyalty_status=seen.status,
        tier=seen.tier,
        opened_at=opened_at,
        updated_at=stamp,
        updated_by=by,
    )
    audit = AuditEntry(
        at=stamp,
        by=by,
        from_state=was.value,
        to_state=now.state.value,
        outcome=None if now.outcome is None else now.outcome.value,
        comment=now.comment,
    )
    return ReviewChange(stored, audit)
