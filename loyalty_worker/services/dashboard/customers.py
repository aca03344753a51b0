"""A customer's page: points and the counted orders they come from, Alpine IQ's balance, tier,
discrepancy and its review; and the customer's loyalty history with the review's audit, a page
at a time (``audit``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import Field

from loyalty_worker.domain.points import floor_points, ledger_entry
from loyalty_worker.domain.profile import (
    AdjustmentEntry,
    HistoryEntry,
    HistorySnapshot,
    ProfileDocument,
    snapshot_changes,
)
from loyalty_worker.domain.retention import DEFAULT_RETENTION
from loyalty_worker.domain.review import Outcome, ReviewState, reading, undoable
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.ports.run import RememberedResults
from loyalty_worker.services.dashboard.audit import AuditRequest, audit_page
from loyalty_worker.services.dashboard.formatting import (
    local_day,
    local_time,
    relative_time,
    stamp,
)
from loyalty_worker.services.dashboard.overview import last_verified_at
from loyalty_worker.services.dashboard.page import Adjustment, NotFound, PageModel
from loyalty_worker.services.dashboard.reviews import seen

HISTORY_LIMIT = 100


class CountedOrder(PageModel):
    """An order the points come from (the profile's ledger)."""

    order_id: str
    eligible_spend: str = Field(description="The order's eligible spend, as a decimal.")
    points: int
    created_at: str | None = Field(
        default=None, description="When Alleaves created it (UTC, ISO); null: not kept."
    )
    created: str | None = Field(default=None, description="The same in the org's time zone.")


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
    last_verified: str | None = Field(
        description="When a sync last confirmed the profile: the latest of the last change, "
        "this customer's last sync (its kept result) and the last completed full run's start."
    )
    last_synced: str | None = Field(
        description="``last_verified`` relative to now, as people say it (2 hours ago)."
    )
    last_synced_at: str | None = Field(description="``last_verified`` as an ISO UTC stamp.")
    review: ReviewShown
    auto_adjust: bool
    adjustment: Adjustment | None = Field(
        description="What autoAdjust recorded at the last change, if anything."
    )


class Snapshot(PageModel):
    """The profile's fields a history entry keeps, before or after a sync."""

    points: int | None = None
    points_from_orders: int | None = None
    points_from_alpine: int | None = None
    tier: str | None = None
    loyalty_status: str | None = None
    loyalty_discrepancy: int | None = None


class FieldChange(PageModel):
    """One field a sync changed (``field``: the profile's name of it)."""

    field: str
    label: str
    from_: int | str | None = Field(alias="from")
    to: int | str | None


class OrderChange(PageModel):
    """An order a sync added to the counted orders, or dropped from them."""

    order_id: str
    created_at: str | None = Field(description="When Alleaves created it (UTC); null: unknown.")
    created: str | None = Field(description="The same in the org's time zone.")
    eligible_spend: str


class HistoryRow(PageModel):
    """One sync that changed the profile: what changed (only the fields that did) and why
    (the counted orders added and dropped since the previous ledger)."""

    at: str | None = Field(description="When, in the org's time zone.")
    run_id: str | None = Field(description="The run; null: a single customer's sync.")
    before: Snapshot
    after: Snapshot
    changes: list[FieldChange]
    orders_added: list[OrderChange]
    orders_dropped: list[OrderChange]
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
    """A customer's loyalty history, newest first, and one page of the review's audit, newest
    first (``next`` and ``prev`` are the cursors of its older and newer pages)."""

    org_id: str
    customer_id: int
    entries: list[HistoryRow]
    audit: list[AuditRow] = Field(
        description="A page of the review's audit, newest first; entries older than the "
        "audit's retention are never shown."
    )
    next: str | None = Field(
        description="The cursor (`?cursor=`) of the audit's older entries; null: none older."
    )
    prev: str | None = Field(
        description="The cursor of the audit's newer entries; null: this page holds the newest."
    )
    page_size: int = Field(description="Audit entries a page (`?pageSize=`, at most 100).")


def _adjustment(entry: AdjustmentEntry | None) -> Adjustment | None:
    return None if entry is None else Adjustment.model_validate(entry)


def _orders(org: OrgSettings, profile: ProfileDocument) -> list[CountedOrder]:
    """The profile's ledger of counted orders, newest first (those without a date last)."""
    ledger = profile.get("loyaltyOrders")
    tz = ZoneInfo(org.timezone)
    orders = []
    for order_id, text in ledger.items() if isinstance(ledger, dict) else ():
        try:
            spend, created_at = ledger_entry(str(text))
        except (ArithmeticError, ValueError):
            continue  # an entry edited by hand: the sync names it, the page leaves it out
        orders.append(
            CountedOrder(
                order_id=str(order_id),
                eligible_spend=str(spend),
                points=floor_points(spend * org.points_per_dollar),
                created_at=created_at,
                created=local_day(created_at, tz),
            )
        )
    orders.sort(key=lambda o: (o.created_at or "", _numeric(o.order_id)), reverse=True)
    return orders


def _numeric(order_id: str) -> int:
    return int(order_id) if order_id.isdigit() else -1


def _verified(
    org: OrgSettings,
    customer_id: int,
    profile: ProfileDocument,
    store: DashboardStore,
    remembered: RememberedResults | None,
) -> datetime | None:
    """When a sync last confirmed the profile: its last change, this customer's last kept
    result (a Sync Now that found nothing to change), or the last completed full run."""
    moments = [stamp(profile.get("pointsLastCalculated")), last_verified_at(org, store)]
    if remembered is not None:
        kept = remembered.recall(org.org_id, [customer_id]).get(customer_id)
        if kept is not None and kept.success and not kept.dry_run:
            moments.append(stamp(kept.updated_at))
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


def customer_page(
    org: OrgSettings,
    customer_id: int,
    store: DashboardStore,
    *,
    now: datetime,
    remembered: RememberedResults | None = None,
) -> CustomerPage:
    """The customer's panel: points and where they come from, Alpine IQ, discrepancy, tier,
    when last changed and verified (and how long ago), and the review. NotFound without a
    profile."""
    profile = store.get_profile(org.org_id, customer_id)
    if profile is None:
        raise NotFound("customer", customer_id)
    tz = ZoneInfo(org.timezone)
    review = reading(store.get_review(org.org_id, customer_id), seen(profile))
    latest = store.list_history(org.org_id, customer_id, limit=1)
    verified = _verified(org, customer_id, profile, store, remembered)
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
        orders=_orders(org, profile),
        last_changed=local_time(profile.get("pointsLastCalculated"), tz),
        last_run_id=profile.get("lastLoyaltySyncRunId"),
        last_verified=local_time(verified, tz),
        last_synced=relative_time(verified, now) if verified else None,
        last_synced_at=verified.astimezone(UTC).isoformat() if verified else None,
        review=ReviewShown(state=review.state, outcome=review.outcome, comment=review.comment),
        auto_adjust=org.auto_adjust,
        adjustment=_adjustment(latest[0].get("adjustment")) if latest else None,
    )


def _snapshot(fields: HistorySnapshot | None) -> Snapshot:
    return Snapshot.model_validate(fields or {})


# How the history names each field it shows changed.
FIELD_LABELS = {
    "points": "Points",
    "pointsFromOrders": "Points from orders",
    "pointsFromAlpine": "Alpine IQ balance",
    "tier": "Tier",
    "loyaltyStatus": "Status",
    "loyaltyDiscrepancy": "Discrepancy",
}


def changes(entry: HistoryEntry) -> list[FieldChange]:
    """The fields an entry's sync changed, before and after: only those that differ."""
    found = snapshot_changes(entry.get("before") or {}, entry.get("after") or {})
    return [
        FieldChange.model_validate(
            {"field": name, "label": FIELD_LABELS[name], "from": _shown(old), "to": _shown(new)}
        )
        for name, old, new in found
    ]


def _shown(value: object) -> int | str | None:
    return value if isinstance(value, int | str) or value is None else str(value)


def order_changes(orders: object, tz: ZoneInfo) -> list[OrderChange]:
    """An entry's orders added or dropped (``LedgerOrder`` maps), with their dates in ``tz``."""
    rows = []
    for order in orders if isinstance(orders, list) else ():
        if not isinstance(order, dict):
            continue
        at = order.get("at")
        created_at = at if isinstance(at, str) and at else None
        rows.append(
            OrderChange(
                order_id=str(order.get("id")),
                created_at=created_at,
                created=local_day(created_at, tz),
                eligible_spend=str(order.get("spend", "")),
            )
        )
    return rows


def history(
    org: OrgSettings,
    customer_id: int,
    store: DashboardStore,
    *,
    now: datetime,
    page: AuditRequest | None = None,
    retention: timedelta = DEFAULT_RETENTION,
) -> History:
    """The customer's loyalty history: one entry per sync that changed the profile (what
    changed and the orders that made it change); and a page of the review's audit (``page``;
    the newest entries when None), made within ``retention``, its latest entry undoable while
    ``undoable`` allows."""
    if store.get_profile(org.org_id, customer_id) is None:
        raise NotFound("customer", customer_id)
    tz = ZoneInfo(org.timezone)
    entries = [
        HistoryRow(
            at=local_time(entry.get("at"), tz),
            run_id=entry.get("runId"),
            before=_snapshot(entry.get("before")),
            after=_snapshot(entry.get("after")),
            changes=changes(entry),
            orders_added=order_changes(entry.get("ordersAdded"), tz),
            orders_dropped=order_changes(entry.get("ordersDropped"), tz),
            adjustment=_adjustment(entry.get("adjustment")),
        )
        for entry in store.list_history(org.org_id, customer_id, limit=HISTORY_LIMIT)
    ]
    asked = page or AuditRequest()
    shown = audit_page(store, org.org_id, customer_id, asked, now=now, retention=retention)
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
            undoable=shown.newest and undoable(entry, shown.entries, now) is None,
        )
        for entry in shown.entries
    ]
    return History(
        org_id=org.org_id,
        customer_id=customer_id,
        entries=entries,
        audit=audit,
        next=shown.next,
        prev=shown.prev,
        page_size=asked.page_size,
    )
