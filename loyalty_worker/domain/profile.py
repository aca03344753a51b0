"""The loyalty fields of a Markitbot customer profile (LOYALTY_RULES.md, "The profile").

The worker owns exactly these fields; every other field of ``customers/{orgId}_{id}`` belongs to
Markitbot and is never written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TypedDict

from loyalty_worker.domain.contact import ContactDocument, synced_contact
from loyalty_worker.domain.models import Adjustment, Customer, LoyaltyOutcome
from loyalty_worker.domain.phone import PhoneHash
from loyalty_worker.domain.points import LEDGER_DATE_MARK, ledger_text

LOYALTY_FIELDS = (
    "points",
    "pointsFromOrders",
    "pointsFromAlpine",
    "pointsLastCalculated",
    "tier",
    "tierSource",
    "loyaltyReconciled",
    "loyaltyDiscrepancy",
    "loyaltyStatus",
    "alpineUserId",
    "phoneHash",
    "phoneHashKeyId",
    "ordersProcessed",
    "totalSpent",
    "loyaltyOrders",
    "lastLoyaltySyncRunId",
    "orgId",
    "alleavesCustomerId",
)
# Fields that change on every write without the loyalty content changing.
STAMP_FIELDS = frozenset({"pointsLastCalculated", "lastLoyaltySyncRunId"})


class ProfileDocument(TypedDict, total=False):
    """``customers/{orgId}_{id}`` as stored: the loyalty fields (written as typed here) and the
    Markitbot fields the worker reads. A field may be missing, and one edited by hand may hold
    anything: readers that must survive that convert defensively, as they always have."""

    orgId: str
    alleavesCustomerId: int
    points: int
    pointsFromOrders: int
    pointsFromAlpine: int
    pointsLastCalculated: datetime | str  # a Firestore timestamp; text in a task's message
    tier: str | None
    tierSource: str
    loyaltyReconciled: bool | None
    loyaltyDiscrepancy: int
    loyaltyStatus: str
    alpineUserId: str
    phoneHash: str
    phoneHashKeyId: str | None
    ordersProcessed: int
    totalSpent: float
    loyaltyOrders: dict[str, str]  # order id -> eligible spend[@created stamp], as text
    lastLoyaltySyncRunId: str | None
    # Markitbot's own fields, read never written.
    equityStatus: bool
    firstName: str
    lastName: str
    email: str
    phone: str


class HistorySnapshot(TypedDict, total=False):
    """What a history entry keeps of the profile before or after a sync (None: not set).
    Entries written before ``pointsFromOrders`` and ``pointsFromAlpine`` were kept lack them."""

    points: int | None
    pointsFromOrders: int | None
    pointsFromAlpine: int | None
    tier: str | None
    loyaltyStatus: str | None
    loyaltyDiscrepancy: int | None


# The snapshot's fields, in the order a history entry lists what changed.
SNAPSHOT_FIELDS = (
    "points",
    "pointsFromOrders",
    "pointsFromAlpine",
    "tier",
    "loyaltyStatus",
    "loyaltyDiscrepancy",
)

AdjustmentEntry = TypedDict("AdjustmentEntry", {"source": str, "from": int, "to": int})


class LedgerOrder(TypedDict):
    """An order a sync added to the ledger of counted orders, or dropped from it."""

    id: str
    at: str | None  # when Alleaves created it (UTC); None: not kept
    spend: str  # its eligible spend


class HistoryEntry(TypedDict, total=False):
    """``customers/{orgId}_{id}/loyalty_history/{entry}``: one sync that changed the profile:
    the snapshots before and after, and why: the counted orders it added and dropped."""

    at: datetime
    runId: str | None
    before: HistorySnapshot
    after: HistorySnapshot
    ordersAdded: list[LedgerOrder]
    ordersDropped: list[LedgerOrder]
    adjustment: AdjustmentEntry


def profile_id(org_id: str, customer_id: int) -> str:
    """The Firestore document id of a customer's profile."""
    return f"{org_id}_{customer_id}"


@dataclass(frozen=True, slots=True)
class ProfileUpdate:
    """A merge-write: ``fields`` to set, ``deletes`` to remove, nothing else touched.

    ``history``, when set, is written beside it as one entry of the customer's loyalty history
    (``with_history``): only a write that changes the profile carries one. ``contact``, when
    set, is merged into the customer's contact (``domain.contact``) in the same batch.
    """

    org_id: str
    customer_id: int
    fields: ProfileDocument
    deletes: tuple[str, ...]
    history: HistoryEntry | None = None
    contact: ContactDocument | None = None

    @property
    def document_id(self) -> str:
        return profile_id(self.org_id, self.customer_id)

    def changes(self, existing: ProfileDocument | None) -> bool:
        """Whether writing this would change any loyalty field other than the stamps."""
        if existing is None:
            return True
        for name, value in self.fields.items():
            if name not in STAMP_FIELDS and existing.get(name, _MISSING) != value:
                return True
        return any(name in existing for name in self.deletes)

    def with_history(
        self,
        existing: ProfileDocument | None,
        *,
        run_id: str | None,
        at: datetime,
        adjustment: Adjustment | None = None,
    ) -> ProfileUpdate:
        """This update plus its history entry: when, which run, the fields before and after,
        and the adjustment ``autoAdjust`` recorded (never applied to Alpine IQ), if any."""
        added, dropped = ledger_diff(
            (existing or {}).get("loyaltyOrders"), self.fields.get("loyaltyOrders")
        )
        entry: HistoryEntry = {
            "at": at,
            "runId": run_id,
            "before": _snapshot(existing or {}),
            "after": _snapshot(self.fields),
            "ordersAdded": added,
            "ordersDropped": dropped,
        }
        if adjustment is not None:
            entry["adjustment"] = {
                "source": adjustment.source,
                "from": adjustment.from_points,
                "to": adjustment.to_points,
            }
        return replace(self, history=entry)


_MISSING = object()


def _snapshot(profile: ProfileDocument) -> HistorySnapshot:
    """The fields a history entry keeps of ``profile`` (``HistorySnapshot``)."""
    return {
        "points": profile.get("points"),
        "pointsFromOrders": profile.get("pointsFromOrders"),
        "pointsFromAlpine": profile.get("pointsFromAlpine"),
        "tier": profile.get("tier"),
        "loyaltyStatus": profile.get("loyaltyStatus"),
        "loyaltyDiscrepancy": profile.get("loyaltyDiscrepancy"),
    }


def snapshot_changes(
    before: HistorySnapshot, after: HistorySnapshot
) -> list[tuple[str, object, object]]:
    """(field, before, after) of each snapshot field that differs, in ``SNAPSHOT_FIELDS``
    order; a field an older entry did not keep (on either side) is left out."""
    return [
        (name, before.get(name), after.get(name))
        for name in SNAPSHOT_FIELDS
        if name in before and name in after and before.get(name) != after.get(name)
    ]


def _ledger(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _ledger_order(order_id: str, text: str) -> LedgerOrder:
    spend, _, created_at = text.partition(LEDGER_DATE_MARK)
    return {"id": order_id, "at": created_at or None, "spend": spend}


def ledger_diff(before: object, after: object) -> tuple[list[LedgerOrder], list[LedgerOrder]]:
    """The counted orders ``after``'s ledger has and ``before``'s lacks (added), and those it
    lost (dropped: voided or refunded since), by order id; a ledger that is no map is empty."""
    old, new = _ledger(before), _ledger(after)
    added = [_ledger_order(k, new[k]) for k in sorted(new.keys() - old.keys(), key=_id_order)]
    dropped = [_ledger_order(k, old[k]) for k in sorted(old.keys() - new.keys(), key=_id_order)]
    return added, dropped


def _id_order(order_id: str) -> tuple[int, str]:
    return (int(order_id), "") if order_id.isdigit() else (0, order_id)


def history_says_something(entry: HistoryEntry) -> bool:
    """Whether an entry shows a change: a field, an order added or dropped, an adjustment
    (a write that only adds the orders' dates to an older ledger shows none)."""
    before, after = entry.get("before", {}), entry.get("after", {})
    return bool(
        snapshot_changes(before, after)
        or entry.get("ordersAdded")
        or entry.get("ordersDropped")
        or "adjustment" in entry
    )


def build_profile_update(
    org_id: str,
    customer: Customer,
    outcome: LoyaltyOutcome,
    *,
    run_id: str | None,
    now: datetime,
    phone_hash: PhoneHash | None = None,
    last_order: tuple[date | None, bool] | None = None,
) -> ProfileUpdate:
    """The loyalty fields the rules give for one customer; absent ones are deleted.

    ``phone_hash`` (``domain.phone.phone_hash`` of the customer's phone) lets an agent find the
    profile by phone without Markitbot storing the number; ``phoneHashKeyId`` beside it names
    the key. A customer without a phone has both deleted. None (no key configured) leaves both
    as they are: a worker started without the key must not wipe the hashes another one wrote.

    ``last_order`` (``domain.contact.last_counted_order``), when given, adds the contact part:
    the fields the enrollment list sorts and filters on.
    """
    calc = outcome.calculation
    dates = dict(calc.counted_at)
    rec = outcome.reconciliation
    shown = outcome.displayed
    fields: ProfileDocument = {
        "orgId": org_id,
        "alleavesCustomerId": customer.customer_id,
        "points": shown.points,
        "pointsFromOrders": calc.points_from_orders,
        "pointsLastCalculated": now,
        "tier": shown.tier,
        "tierSource": shown.tier_source.value,
        "loyaltyReconciled": rec.reconciled,
        "loyaltyStatus": rec.status.value,
        "ordersProcessed": calc.orders_processed,
        # Firestore has no decimal type; the amount is already rounded to cents.
        "totalSpent": float(calc.total_spent),
        # The counted orders' eligible spend, so a later sync needs only the recent orders.
        # Each entry keeps the order's date too (``points.ledger_text``), for the dashboard.
        "loyaltyOrders": {
            str(order_id): ledger_text(spend, dates.get(order_id))
            for order_id, spend in calc.counted
        },
        "lastLoyaltySyncRunId": run_id,
    }
    # The optional fields, set when known and deleted otherwise (in this order).
    deletes: list[str] = []
    if outcome.alpine is not None:
        fields["pointsFromAlpine"] = outcome.alpine.points
    else:
        deletes.append("pointsFromAlpine")
    if rec.discrepancy is not None:
        fields["loyaltyDiscrepancy"] = rec.discrepancy
    else:
        deletes.append("loyaltyDiscrepancy")
    if customer.alpine_user_code:
        fields["alpineUserId"] = customer.alpine_user_code
    else:
        deletes.append("alpineUserId")
    if phone_hash is not None and phone_hash.value:
        fields["phoneHash"] = phone_hash.value
        fields["phoneHashKeyId"] = phone_hash.key_id
    elif phone_hash is not None:
        deletes += ["phoneHash", "phoneHashKeyId"]
    contact = None
    if last_order is not None:
        contact = synced_contact(
            org_id,
            customer.customer_id,
            points_from_orders=calc.points_from_orders,
            loyalty_status=rec.status.value,
            tier=shown.tier,
            last_order=last_order[0],
            orders_known=last_order[1],
        )
    return ProfileUpdate(org_id, customer.customer_id, fields, tuple(deletes), contact=contact)
