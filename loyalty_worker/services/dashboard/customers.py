"""A customer's page: points and the counted orders they come from, Alpine IQ's balance, tier,
discrepancy and its review; and the customer's loyalty history with the review's audit."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import Field

from loyalty_worker.domain.points import floor_points
from loyalty_worker.domain.profile import AdjustmentEntry, HistorySnapshot
from loyalty_worker.domain.review import Outcome, ReviewState, reading, undoable
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.services.dashboard.formatting import local_time
from loyalty_worker.services.dashboard.overview import last_verified
from loyalty_worker.services.dashboard.page import Adjustment, NotFound, PageModel
from loyalty_worker.services.dashboard.reviews import seen

HISTORY_LIMIT = 100


class CountedOrder(PageModel):
    """An order the points come from (the profile's ledger)."""

    order_id: str
    eligible_spend: str = Field(description="The order's eligible spend, as a decimal.")
    points: int


class ReviewShown(PageModel):
    """The customer's review as it reads now (``none``: no discrepancy to review)."""

    state: ReviewState
    outcome: Outcome | None
    comment: str | None


class CustomerPage(PageModel):
    """A customer's loyalty panel."""

    org_id: str
    customer_id: int
    points: int | None = Field(description="Points shown, by the org's source of truth.")
    points_from_orders: int | None
    points_from_alpine: int | None
    alpine_user_id: str | None
    tier: str | None
    tier_source: str | None
    loyalty_status: str | None
    discrepancy: int | None
    orders_processed: int | None
    total_spent: float | None
    equity: bool
    orders: list[CountedOrder]
    last_changed: str | None = Field(description="When the points were last calculated.")
    last_run_id: str | None
    last_verified: str | None = Field(description="When the last completed run started.")
    review: ReviewShown
    auto_adjust: bool
    adjustment: Adjustment | None = Field(
        description="What autoAdjust recorded at the last change, if anything."
    )


class Snapshot(PageModel):
    """The profile's fields a history entry keeps, before or after a sync."""

    points: int | None = None
    tier: str | None = None
    loyalty_status: str | None = None
    loyalty_discrepancy: int | None = None


class HistoryRow(PageModel):
    """One sync that changed the profile."""

    at: str | None = Field(description="When, in the org's time zone.")
    run_id: str | None = Field(description="The run; null: a single customer's sync.")
    before: Snapshot
    after: Snapshot
    adjustment: Adjustment | None


class AuditRow(PageModel):
    """One change of the customer's review."""

    id: str = Field(description="The entry's id (what an undo names).")
    at: str = Field(description="When (ISO 8601).")
    by: str = Field(description="The sign-in name, the token's fingerprint, or sync.")
    from_: str | None = Field(alias="from")
    to: str
    outcome: str | None
    comment: str | None
    undoes: str | None = Field(description="The entry this one undid (an undo's).")
    undoable: bool = Field(description="Whether Undo works on it now (the latest, for 10 min).")


class History(PageModel):
    """A customer's loyalty history, newest first, and the review's audit, oldest first."""

    org_id: str
    customer_id: int
    entries: list[HistoryRow]
    audit: list[AuditRow]


def _adjustment(entry: AdjustmentEntry | None) -> Adjustment | None:
    return None if entry is None else Adjustment.model_validate(entry)


def customer_page(org: OrgSettings, customer_id: int, store: DashboardStore) -> CustomerPage:
    """The customer's panel: points and where they come from, Alpine IQ, discrepancy, tier,
    when last changed and verified, and the review. NotFound without a profile."""
    profile = store.get_profile(org.org_id, customer_id)
    if profile is None:
        raise NotFound("customer", customer_id)
    ledger = profile.get("loyaltyOrders") or {}
    orders = [
        CountedOrder(
            order_id=str(order_id),
            eligible_spend=str(Decimal(str(spend))),
            points=floor_points(Decimal(str(spend)) * org.points_per_dollar),
        )
        for order_id, spend in sorted(ledger.items(), key=lambda item: str(item[0]))
    ]
    review = reading(store.get_review(org.org_id, customer_id), seen(profile))
    latest = store.list_history(org.org_id, customer_id, limit=1)
    return CustomerPage(
        org_id=org.org_id,
        customer_id=customer_id,
        points=profile.get("points"),
        points_from_orders=profile.get("pointsFromOrders"),
        points_from_alpine=profile.get("pointsFromAlpine"),
        alpine_user_id=profile.get("alpineUserId"),
        tier=profile.get("tier"),
        tier_source=profile.get("tierSource"),
        loyalty_status=profile.get("loyaltyStatus"),
        discrepancy=profile.get("loyaltyDiscrepancy"),
        orders_processed=profile.get("ordersProcessed"),
        total_spent=profile.get("totalSpent"),
        equity=profile.get("equityStatus") is True,
        orders=orders,
        last_changed=local_time(profile.get("pointsLastCalculated"), ZoneInfo(org.timezone)),
        last_run_id=profile.get("lastLoyaltySyncRunId"),
        last_verified=last_verified(org, store),
        review=ReviewShown(state=review.state, outcome=review.outcome, comment=review.comment),
        auto_adjust=org.auto_adjust,
        adjustment=_adjustment(latest[0].get("adjustment")) if latest else None,
    )


def _snapshot(fields: HistorySnapshot | None) -> Snapshot:
    return Snapshot.model_validate(fields or {})


def history(org: OrgSettings, customer_id: int, store: DashboardStore, *, now: datetime) -> History:
    """The customer's loyalty history: one entry per sync that changed the profile; and the
    review's audit, its latest entry undoable while ``undoable`` allows."""
    if store.get_profile(org.org_id, customer_id) is None:
        raise NotFound("customer", customer_id)
    tz = ZoneInfo(org.timezone)
    entries = [
        HistoryRow(
            at=local_time(entry.get("at"), tz),
            run_id=entry.get("runId"),
            before=_snapshot(entry.get("before")),
            after=_snapshot(entry.get("after")),
            adjustment=_adjustment(entry.get("adjustment")),
        )
        for entry in store.list_history(org.org_id, customer_id, limit=HISTORY_LIMIT)
    ]
    entries_of_review = store.list_audit(org.org_id, customer_id)
    audit = [
        AuditRow(
            id=entry.id,
            at=entry.at,
            by=entry.by,
            from_=entry.from_state,
            to=entry.to_state,
            outcome=entry.outcome,
            comment=entry.comment,
            undoes=entry.undoes,
            undoable=undoable(entry, entries_of_review, now) is None,
        )
        for entry in entries_of_review
    ]
    return History(org_id=org.org_id, customer_id=customer_id, entries=entries, audit=audit)
