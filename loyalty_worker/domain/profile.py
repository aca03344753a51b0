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
    loyaltyOrders: dict[str, str]  # order id -> eligible spend, as text
    lastLoyaltySyncRunId: str | None
    # Markitbot's own fields, read never written.
    equityStatus: bool
    firstName: str
    lastName: str
    email: str
    phone: str


class HistorySnapshot(TypedDict):
    """What a history entry keeps of the profile before or after a sync (None: not set)."""

    points: int | None
    tier: str | None
    loyaltyStatus: str | None
    loyaltyDiscrepancy: int | None


AdjustmentEntry = TypedDict("AdjustmentEntry", {"source": str, "from": int, "to": int})


class HistoryEntry(TypedDict, total=False):
    """``customers/{orgId}_{id}/loyalty_history/{entry}``: one sync that changed the profile."""

    at: datetime
    runId: str | None
    before: HistorySnapshot
    after: HistorySnapshot
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
        entry: HistoryEntry = {
            "at": at,
            "runId": run_id,
            "before": _snapshot(existing or {}),
            "after": _snapshot(self.fields),
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
        "tier": profile.get("tier"),
        "loyaltyStatus": profile.get("loyaltyStatus"),
        "loyaltyDiscrepancy": profile.get("loyaltyDiscrepancy"),
    }


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
        "loyaltyOrders": {str(order_id): str(spend) for order_id, spend in calc.counted},
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
