"""The small, JSON-ready result of one customer's sync (the seed's ``LoyaltySyncResult``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from loyalty_worker.domain.models import LoyaltyOutcome
from loyalty_worker.domain.phone import mask_phone


class SyncStatus(enum.StrEnum):
    SYNCED = "synced"  # the profile was written
    UNCHANGED = "unchanged"  # nothing but the stamps would change: no write
    FAILED = "failed"  # see ``reason``


@dataclass(frozen=True, slots=True)
class SyncResult:
    org_id: str
    customer_id: int | str
    status: SyncStatus
    updated_at: str
    outcome: LoyaltyOutcome | None = None
    reason: str | None = None
    detail: str | None = None
    phone: str | None = None
    previous_tier: str | None = None
    dry_run: bool = False
    # ``services.work.inputs_digest`` of what this outcome was computed from.
    inputs: str | None = None

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable, camelCase as Markitbot reads it; phones masked."""
        data: dict[str, Any] = {
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
            data["phone"] = mask_phone(self.phone)
        if self.inputs is not None:
            data["inputs"] = self.inputs
        if self.outcome is None:
            return data
        calc = self.outcome.calculation
        rec = self.outcome.reconciliation
        shown = self.outcome.displayed
        data["calculated"] = {
            "points": calc.points_from_orders,
            "basePoints": calc.base_points,
            "equityBonus": calc.equity_bonus,
            "ordersProcessed": calc.orders_processed,
            "totalSpent": str(calc.total_spent),
        }
        alpine = self.outcome.alpine
        data["alpine"] = (
            None
            if alpine is None
            else {"points": alpine.points, "tier": alpine.tier, "lastVisit": alpine.last_visit}
        )
        data["reconciliation"] = {
            "status": rec.status.value,
            "reconciled": rec.reconciled,
            "discrepancy": rec.discrepancy,
            "action": rec.action.value,
        }
        data["displayed"] = {
            "points": shown.points,
            "tier": shown.tier,
            "tierSource": shown.tier_source.value,
        }
        adjustment = self.outcome.adjustment
        if adjustment is not None:
            data["adjustment"] = {
                "source": adjustment.source,
                "from": adjustment.from_points,
                "to": adjustment.to_points,
            }
        change = self.tier_change
        if change is not None:
            data["tierChange"] = {"from": change[0], "to": change[1]}
        return data
