"""A discrepancy's review: a small state machine the dashboard's admins move, and that the syncs
move back when the discrepancy changes.

``open`` → ``acknowledged`` → ``resolved`` (resolving names an outcome and says why in a comment),
and back to ``open``; ``TRANSITIONS`` is the whole table. A review records the discrepancy it was
made at: when a later sync changes that customer's discrepancy it reads ``open`` again, and when
the sources agree again it reads ``resolved`` with the outcome ``matched`` (``reading``). Each
change, a person's (``decide``, ``undo``) or a sync's (``settle``), is the stored review plus one
audit entry, both built by ``_changed``; entries are numbered by the review's count of changes.

A person's latest change of a review can be undone for ``UNDO_WINDOW`` (``undo``): the review
goes back to how the entry before it left it (open when there was none), as its own audit entry
naming the entry it undoes. An undo, a sync's change, or any change but the latest is not undone.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

# What the profile's ``loyaltyStatus`` is while the sources disagree beyond the tolerance.
DISCREPANCY_STATUSES = ("alpine_higher", "calculated_higher")
# Who changes a review when a sync moved its discrepancy.
SYNC = "sync"
# How long after a person's change it may be undone.
UNDO_WINDOW = timedelta(minutes=10)


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
    # How many changes (audit entries) it has had: the next entry's number.
    changes: int = 0


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """``loyalty_reviews/{id}/audit/{entry}``: one change of a review (who, when, from, to);
    ``id`` is the entry's document id, ``undoes`` the id of the entry an undo reverts."""

    at: str
    by: str
    from_state: str | None
    to_state: str
    outcome: str | None = None
    comment: str | None = None
    id: str = ""
    undoes: str | None = None


def entry_id(number: int) -> str:
    """The id of a review's ``number``-th audit entry (sorts as the entries were made)."""
    return f"{number:06d}"


def newest(audit: Sequence[AuditEntry]) -> AuditEntry | None:
    """A review's latest change (by time, then by number), or None without any."""
    return max(audit, key=lambda entry: (entry.at, entry.id), default=None)


def undoable(entry: AuditEntry, audit: Sequence[AuditEntry], now: datetime) -> str | None:
    """Why ``entry`` cannot be undone now (None: it can): it must be a person's change, not an
    undo, the review's latest, and made at most ``UNDO_WINDOW`` ago. ``audit`` holds the
    review's newest entry (the whole audit is never needed)."""
    if entry.by == SYNC:
        return "a change a sync made cannot be undone"
    if entry.undoes is not None:
        return "an undo cannot be undone: make the change again instead"
    if newest(audit) != entry:
        return "only the latest change of a review can be undone, and this review changed since"
    made = _moment(entry.at)
    if made is None or now - made > UNDO_WINDOW:
        minutes = int(UNDO_WINDOW.total_seconds() // 60)
        return f"a change can be undone for {minutes} minutes after it is made; this one is older"
    return None


def _moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


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
    return _changed(review, seen, current, Reading(to, outcome, comment), by, stamp, opened)


def undo(
    review: Review | None,
    audit: Sequence[AuditEntry],
    seen: Discrepancy,
    undone: str,
    *,
    by: str,
    at: datetime,
) -> ReviewChange:
    """Undo the change ``undone`` (an audit entry's id): the review back to how the entry
    before it left it (open, without outcome, when it was the first), as its own entry.
    ReviewRefused when that change cannot be undone now (``undoable``), or when the review no
    longer reads as it left it (a sync moved the discrepancy since). ``audit`` holds the
    review's newest two entries and the one undone (the whole audit is never needed)."""
    entry = next((e for e in audit if e.id == undone), None)
    if entry is None or review is None:
        raise ReviewRefused(f"this review has no change {undone!r}")
    why = undoable(entry, audit, at)
    if why is not None:
        raise ReviewRefused(f"cannot undo: {why}")
    current = reading(review, seen)
    if current.state.value != entry.to_state:
        raise ReviewRefused("cannot undo: the review changed since (its discrepancy moved)")
    before = [e for e in audit if e != entry and (e.at, e.id) < (entry.at, entry.id)]
    last = newest(before)
    restored = (
        Reading(ReviewState.OPEN)
        if last is None
        else Reading(ReviewState.of(last.to_state), Outcome.of(last.outcome), last.comment)
    )
    stamp = at.isoformat()
    change = _changed(review, seen, current.state, restored, by, stamp, review.opened_at)
    return ReviewChange(change.review, replace(change.audit, undoes=entry.id))


def settle(review: Review, seen: Discrepancy, *, at: datetime) -> ReviewChange | None:
    """The change (by ``sync``) that brings a stored review to how it reads now, if it reads
    otherwise: re-opened (open since now), or resolved as ``matched``."""
    now = reading(review, seen)
    if now.state is review.state and now.outcome is review.outcome:
        return None
    stamp = at.isoformat()
    opened = stamp if now.state is ReviewState.OPEN else review.opened_at
    now = Reading(now.state, now.outcome)  # a sync writes no comment
    return _changed(review, seen, review.state, now, SYNC, stamp, opened)


def _target(to: str) -> ReviewState:
    if to not in TARGETS:
        raise ReviewRefused(f"unknown review state {to!r}")
    return ReviewState(to)


def _changed(
    review: Review | None,
    seen: Discrepancy,
    was: ReviewState,
    now: Reading,
    by: str,
    stamp: str,
    opened_at: str | None,
) -> ReviewChange:
    """The stored review after a move to ``now``, made at the discrepancy ``seen``, and its
    audit entry (numbered after the review's changes): the one place both are built."""
    number = (review.changes if review is not None else 0) + 1
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
        changes=number,
    )
    audit = AuditEntry(
        at=stamp,
        by=by,
        from_state=was.value,
        to_state=now.state.value,
        outcome=None if now.outcome is None else now.outcome.value,
        comment=now.comment,
        id=entry_id(number),
    )
    return ReviewChange(stored, audit)
