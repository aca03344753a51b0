"""Reviews changed many at once, and undone: bulk acknowledge or resolve (``change_reviews``),
undo (``undo_reviews``), and the banner a page shows after either (``banner``).

Each customer's change is its own audit entry, as one change at a time would write it. A bulk
change or undo is checked whole before anything is written: one customer it cannot change
refuses them all, naming it. An undo goes by ``domain.review.undo``: a person's latest change of
a review, for ``UNDO_WINDOW`` after it was made. Neither reads a review's whole audit: only its
newest entries (``_latest``), and the entry named when it is not among them.

A change is named to the banner (and to the undo form) as ``{customerId}.{entryId}``; the banner
reads each named entry back, so that what it says is what was stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import Field

from loyalty_worker.domain.review import (
    UNDO_WINDOW,
    AuditEntry,
    Move,
    Outcome,
    ReviewChange,
    ReviewRefused,
    decide,
    undo,
    undoable,
)
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.services.dashboard.page import NotFound, PageModel
from loyalty_worker.services.dashboard.reviews import ReviewChanged, seen, shown

# The most customers one bulk change (or undo) takes: the largest page.
BULK_LIMIT = 500
# How people read an outcome.
OUTCOME_WORDS = {
    Outcome.FIXED: "fixed",
    Outcome.EXPECTED: "expected",
    Outcome.NO_ACTION: "no action needed",
    Outcome.FALSE_POSITIVE: "false positive",
    Outcome.MATCHED: "sources agree again",
}
# What a bulk change may do.
BULK_MOVES = ("acknowledged", "resolved")
CHANGE = re.compile(r"^([0-9]{1,16})\.([A-Za-z0-9]{1,40})$")


class ReviewsChanged(PageModel):
    """The reviews a bulk change or an undo changed, one audit entry each."""

    org_id: str
    items: list[ReviewChanged]


class Banner(PageModel):
    """What a page says after a review change: what changed, and whether it can be undone."""

    message: str
    changes: list[str] = Field(description="The changes, as `{customerId}.{entryId}`.")
    undoable: bool
    until: str | None = Field(description="Until when Undo works (ISO 8601).")
    refused: str | None = Field(description="Why Undo is not offered (null: it is).")


def outcome_words(outcome: str | None) -> str:
    """An outcome as people read it ("" for none)."""
    known = Outcome.of(outcome)
    return "" if known is None else OUTCOME_WORDS[known]


def change_token(customer_id: int, entry_id: str) -> str:
    return f"{customer_id}.{entry_id}"


def parse_changes(tokens: Sequence[str]) -> list[tuple[int, str]]:
    """``{customerId}.{entryId}`` tokens (several may share one text, comma-separated) as
    pairs; ReviewRefused for one that is not such a token, or for too many."""
    pairs = []
    for token in (t for text in tokens for t in text.split(",") if t):
        found = CHANGE.match(token)
        if found is None:
            raise ReviewRefused(f"not a review change: {token[:60]!r}")
        pairs.append((int(found.group(1)), found.group(2)))
    if len(pairs) > BULK_LIMIT:
        raise ReviewRefused(f"at most {BULK_LIMIT} changes at once")
    return pairs


def _bulk_ids(customer_ids: Sequence[int]) -> list[int]:
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        raise ReviewRefused("select at least one customer")
    if len(ids) > BULK_LIMIT:
        raise ReviewRefused(f"at most {BULK_LIMIT} customers at once")
    return ids


def _latest(
    store: DashboardStore, org_id: str, customer_id: int, named: str, *, newest: int
) -> tuple[AuditEntry | None, list[AuditEntry]]:
    """The review's audit entry ``named`` (None: it has none such) and its ``newest`` latest
    entries, with the named one among them: what ``undoable`` and ``undo`` decide from."""
    latest = store.list_audit(org_id, customer_id, limit=newest)
    entry = next((e for e in latest if e.id == named), None)
    if entry is None:
        entry = store.get_audit(org_id, customer_id, named)
        if entry is not None:
            latest.append(entry)
    return entry, latest


def _write_all(
    org_id: str, planned: list[tuple[int, ReviewChange]], refused: list[str], store: DashboardStore
) -> ReviewsChanged:
    """Write every planned change, or none when any was refused (each reason named)."""
    if refused:
        raise ReviewRefused("nothing changed: " + "; ".join(refused))
    for customer_id, change in planned:
        store.write_review(org_id, customer_id, change)
    return ReviewsChanged(org_id=org_id, items=[shown(cid, change) for cid, change in planned])


def change_reviews(
    org_id: str,
    customer_ids: Sequence[int],
    move: Move,
    *,
    by: str,
    store: DashboardStore,
    now: datetime,
) -> ReviewsChanged:
    """Acknowledge or resolve (with one outcome and comment) many reviews: one audit entry
    each, all or none. NotFound for a customer without a profile."""
    if move.to not in BULK_MOVES:
        raise ReviewRefused("a bulk change acknowledges or resolves")
    ids = _bulk_ids(customer_ids)
    profiles = store.read_profiles(org_id, ids, ("loyaltyStatus", "loyaltyDiscrepancy", "tier"))
    reviews = store.get_reviews(org_id, customer_ids=ids)
    planned, refused = [], []
    for customer_id in ids:
        if customer_id not in profiles:
            raise NotFound("customer", customer_id)
        try:
            found = seen(profiles[customer_id])
            change = decide(reviews.get(customer_id), found, move, by=by, at=now)
        except ReviewRefused as exc:
            refused.append(f"customer {customer_id}: {exc}")
            continue
        planned.append((customer_id, change))
    return _write_all(org_id, planned, refused, store)


def undo_reviews(
    org_id: str,
    changes: Sequence[tuple[int, str]],
    *,
    by: str,
    store: DashboardStore,
    now: datetime,
) -> ReviewsChanged:
    """Undo each named change (customer, audit entry): all or none; ReviewRefused naming the
    customers whose change cannot be undone now, NotFound for a customer without a profile."""
    if not changes:
        raise ReviewRefused("no change to undo")
    planned, refused = [], []
    for customer_id, entry in dict(changes).items():
        profile = store.get_profile(org_id, customer_id)
        if profile is None:
            raise NotFound("customer", customer_id)
        review = store.get_review(org_id, customer_id)
        # the newest two: the one undone (it must be the newest) and the one it goes back to
        _, audit = _latest(store, org_id, customer_id, entry, newest=2)
        try:
            change = undo(review, audit, seen(profile), entry, by=by, at=now)
        except ReviewRefused as exc:
            refused.append(f"customer {customer_id}: {exc}")
            continue
        planned.append((customer_id, change))
    return _write_all(org_id, planned, refused, store)


def _said(customer: str, entry: AuditEntry) -> str:
    """What a change did, in words ("Resolved 1005316 as expected")."""
    if entry.undoes is not None:
        return f"Undid the change of {customer}: {entry.to_state} again"
    if entry.to_state == "resolved":
        return f"Resolved {customer} as {outcome_words(entry.outcome) or 'resolved'}"
    if entry.to_state == "acknowledged":
        return f"Acknowledged {customer}"
    return f"Re-opened {customer}"


def banner(
    org_id: str, changes: Sequence[tuple[int, str]], store: DashboardStore, *, now: datetime
) -> Banner | None:
    """The banner after the named changes, read back from their audit (None when none of them
    is stored): what they did, and Undo while every one of them can still be undone."""
    found: list[tuple[int, AuditEntry, list[AuditEntry]]] = []
    for customer_id, entry_id in dict(changes).items():
        entry, audit = _latest(store, org_id, customer_id, entry_id, newest=1)
        if entry is not None:
            found.append((customer_id, entry, audit))
    if not found:
        return None
    first = found[0][1]
    who = str(found[0][0]) if len(found) == 1 else f"{len(found)} reviews"
    reasons = [why for _, e, audit in found if (why := undoable(e, audit, now)) is not None]
    made = min(e.at for _, e, _ in found)
    was_undo = first.undoes is not None  # nothing to offer, nothing to explain
    return Banner(
        message=_said(who, first),
        changes=[change_token(cid, e.id) for cid, e, _ in found],
        undoable=not reasons,
        until=None if was_undo else _plus(made, UNDO_WINDOW),
        refused=reasons[0] if reasons and not was_undo else None,
    )


def _plus(at: str, span: timedelta) -> str | None:
    try:
        return (datetime.fromisoformat(at) + span).isoformat()
    except ValueError:
        return None
