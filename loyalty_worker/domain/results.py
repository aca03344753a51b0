"""The typed result of one customer's sync (the seed's ``LoyaltySyncResult``).

Services pass ``SyncResult`` values to one another (the ledger, the memo, the summary); only the
edges turn them into the camelCase JSON that Markitbot, Redis and Celery's task results hold
(``to_dict``) and back (``from_dict``). The round trip is lossless: a stored result reads back
equal to the one written.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Required, TypedDict

from loyalty_worker.domain.models import (
    Action,
    Adjustment,
    AlpineProfile,
    DisplayedLoyalty,
    LoyaltyOutcome,
    PointsCalculation,
    Reconciliation,
    ReconciliationStatus,
    TierSource,
)
from loyalty_worker.domain.phone import mask_phone
from loyalty_worker.domain.profile import AdjustmentEntry


class CalculatedEntry(TypedDict):
    points: int
    basePoints: int
    equityBonus: int
    ordersProcessed: int
    totalSpent: str  # exact, as text


class AlpineEntry(TypedDict, total=False):
    points: Required[int]
    tier: Required[str | None]
    lastVisit: Required[str | None]
    contactId: str


class ReconciliationEntry(TypedDict):
    status: str
    reconciled: bool | None
    discrepancy: int | None
    action: str


class DisplayedEntry(TypedDict):
    points: int
    tier: str | None
    tierSource: str


TierChangeEntry = TypedDict("TierChangeEntry", {"from": str | None, "to": str | None})


class SyncResultDocument(TypedDict, total=False):
    """A result as JSON (``SyncResult.to_dict``): what Markitbot, Redis and Celery's task
    results hold. The outcome's parts are there for a success, ``reason`` for a failure."""

    success: bool
    status: str
    orgId: str
    customerId: int | str
    updatedAt: str
    dryRun: bool
    reason: str
    detail: str | None
    phone: str
    inputs: str
    previousTier: str
    previousPoints: int
    carried: bool
    calculated: CalculatedEntry
    alpine: AlpineEntry | None
    reconciliation: ReconciliationEntry
    displayed: DisplayedEntry
    adjustment: AdjustmentEntry
    tierChange: TierChangeEntry


class SyncStatus(enum.StrEnum):
    SYNCED = "synced"  # the profile was written
    UNCHANGED = "unchanged"  # nothing but the stamps would change: no write
    FAILED = "failed"  # see ``reason``


def utc_stamp(moment: datetime | None = None) -> str:
    """The one timestamp format of results: ISO 8601 in UTC."""
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class SyncResult:
    """One customer's sync. ``phone`` is kept masked (only its last four digits), and the
    outcome without its per-order ledger: the profile holds that, a result need not carry it."""

    org_id: str
    customer_id: int | str  # a str: a customer record too malformed to have an id
    status: SyncStatus
    updated_at: str  # ``utc_stamp``
    outcome: LoyaltyOutcome | None = None
    reason: str | None = None
    detail: str | None = None
    phone: str | None = None
    previous_tier: str | None = None
    dry_run: bool = False
    # ``services.sync.inputs.inputs_digest`` of what this outcome was computed from.
    inputs: str | None = None
    # Left as the last sync left it by an incremental run (``services.run.memo``).
    carried: bool = False
    # The profile's points from orders before this sync (None: no profile, or none stored); a
    # dry run's preview shows it beside the points it would write.
    previous_points: int | None = None

    def __post_init__(self) -> None:
        if self.phone is not None:
            object.__setattr__(self, "phone", mask_phone(self.phone))
        if self.outcome is not None and self.outcome.calculation.counted:
            calculation = replace(self.outcome.calculation, counted=(), counted_at=())
            object.__setattr__(self, "outcome", replace(self.outcome, calculation=calculation))

    @property
    def success(self) -> bool:
        return self.status is not SyncStatus.FAILED

    @property
    def tier_change(self) -> tuple[str | None, str | None] | None:
        """(from, to) when this sync moved the customer to another tier."""
        if self.outcome is None or self.previous_tier is None:
            return None
        new_tier = self.outcome.displayed.tier
        return None if new_tier == self.previous_tier else (self.previous_tier, new_tier)

    def to_dict(self) -> SyncResultDocument:
        """JSON-serialisable, camelCase as Markitbot reads it."""
        data: SyncResultDocument = {
            "success": self.success,
            "status": self.status.value,
            "orgId": self.org_id,
            "customerId": self.customer_id,
            "updatedAt": self.updated_at,
            "dryRun": self.dry_run,
        }
        if self.reason is not None:
            data["reason"] = self.reason
            data["detail"] = self.detail
        if self.phone is not None:
            data["phone"] = self.phone
        if self.inputs is not None:
            data["inputs"] = self.inputs
        if self.previous_tier is not None:
            data["previousTier"] = self.previous_tier
        if self.previous_points is not None:
            data["previousPoints"] = self.previous_points
        if self.carried:
            data["carried"] = True
        if self.outcome is None:
            return data
        data.update(_outcome_to_dict(self.outcome))
        change = self.tier_change
        if change is not None:
            data["tierChange"] = {"from": change[0], "to": change[1]}
        return data

    @classmethod
    def from_dict(cls, data: SyncResultDocument) -> SyncResult:
        """The result ``to_dict`` gave; KeyError, TypeError or ValueError when ``data`` is not
        one. ``tierChange`` and ``success`` are derived, so they are not read back."""
        previous_tier = data.get("previousTier")
        if previous_tier is None and isinstance(data.get("tierChange"), Mapping):
            previous_tier = data["tierChange"].get("from")  # written before ``previousTier``
        return cls(
            org_id=str(data["orgId"]),
            customer_id=_customer_id(data["customerId"]),
            status=SyncStatus(data["status"]),
            updated_at=_stamp(data["updatedAt"]),
            outcome=_outcome_from_dict(data) if "calculated" in data else None,
            reason=data.get("reason"),
            detail=data.get("detail"),
            phone=data.get("phone"),
            previous_tier=previous_tier,
            dry_run=bool(data.get("dryRun", False)),
            inputs=data.get("inputs"),
            carried=bool(data.get("carried", False)),
            previous_points=_points(data.get("previousPoints")),
        )


def _points(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"previousPoints: {value!r}")
    return value


def _customer_id(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"customerId: {value!r}")
    return value


def _stamp(value: Any) -> str:
    """An ISO string as is; epoch seconds (results written before one format) converted."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return utc_stamp(datetime.fromtimestamp(value, UTC))
    if not isinstance(value, str):
        raise TypeError(f"updatedAt: {value!r}")
    return value


def _outcome_to_dict(outcome: LoyaltyOutcome) -> SyncResultDocument:
    calc = outcome.calculation
    rec = outcome.reconciliation
    shown = outcome.displayed
    alpine = outcome.alpine
    data: SyncResultDocument = {
        "calculated": {
            "points": calc.points_from_orders,
            "basePoints": calc.base_points,
            "equityBonus": calc.equity_bonus,
            "ordersProcessed": calc.orders_processed,
            "totalSpent": str(calc.total_spent),
        },
        "alpine": None,
        "reconciliation": {
            "status": rec.status.value,
            "reconciled": rec.reconciled,
            "discrepancy": rec.discrepancy,
            "action": rec.action.value,
        },
        "displayed": {
            "points": shown.points,
            "tier": shown.tier,
            "tierSource": shown.tier_source.value,
        },
    }
    if alpine is not None:
        answer: AlpineEntry = {
            "points": alpine.points,
            "tier": alpine.tier,
            "lastVisit": alpine.last_visit,
        }
        if alpine.contact_id is not None:
            answer["contactId"] = alpine.contact_id
        data["alpine"] = answer
    adjustment = outcome.adjustment
    if adjustment is not None:
        data["adjustment"] = {
            "source": adjustment.source,
            "from": adjustment.from_points,
            "to": adjustment.to_points,
        }
    return data


def _outcome_from_dict(data: SyncResultDocument) -> LoyaltyOutcome:
    calc = data["calculated"]
    rec = data["reconciliation"]
    shown = data["displayed"]
    alpine = data.get("alpine")
    adjustment = data.get("adjustment")
    return LoyaltyOutcome(
        calculation=PointsCalculation(
            base_points=int(calc["basePoints"]),
            equity_bonus=int(calc["equityBonus"]),
            points_from_orders=int(calc["points"]),
            orders_processed=int(calc["ordersProcessed"]),
            total_spent=Decimal(str(calc["totalSpent"])),
        ),
        alpine=None
        if alpine is None
        else AlpineProfile(
            points=int(alpine["points"]),
            tier=alpine.get("tier"),
            last_visit=alpine.get("lastVisit"),
            contact_id=alpine.get("contactId"),
        ),
        reconciliation=Reconciliation(
            status=ReconciliationStatus(rec["status"]),
            discrepancy=None if rec["discrepancy"] is None else int(rec["discrepancy"]),
            reconciled=rec["reconciled"],
            action=Action(rec["action"]),
        ),
        displayed=DisplayedLoyalty(
            points=int(shown["points"]),
            tier=shown["tier"],
            tier_source=TierSource(shown["tierSource"]),
        ),
        adjustment=None
        if adjustment is None
        else Adjustment(
            source=str(adjustment["source"]),
            from_points=int(adjustment["from"]),
            to_points=int(adjustment["to"]),
        ),
    )
