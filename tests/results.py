"""Small ``SyncResult`` values for tests of what consumes results (ledger, memo, summary)."""

from __future__ import annotations

from decimal import Decimal

from loyalty_worker.domain.models import (
    Action,
    AlpineProfile,
    DisplayedLoyalty,
    LoyaltyOutcome,
    PointsCalculation,
    Reconciliation,
    ReconciliationStatus,
    TierSource,
)
from loyalty_worker.domain.results import SyncResult, SyncStatus

STAMP = "2026-03-01T12:00:00+00:00"


def outcome(points: int = 1, tier: str = "bronze", alpine: int | None = None) -> LoyaltyOutcome:
    """A customer with ``points`` from one order; ``alpine``: their Alpine IQ balance."""
    if alpine is None:
        rec = Reconciliation(ReconciliationStatus.NO_ALPINE_ACCOUNT, None, None, Action.NONE)
    else:
        rec = Reconciliation(ReconciliationStatus.MATCHED, alpine - points, True, Action.NONE)
    return LoyaltyOutcome(
        calculation=PointsCalculation(points, 0, points, 1, Decimal(points)),
        alpine=None if alpine is None else AlpineProfile(alpine),
        reconciliation=rec,
        displayed=DisplayedLoyalty(points, tier, TierSource.CALCULATED),
    )


def synced(
    customer_id: int,
    *,
    org_id: str = "org-1",
    status: SyncStatus = SyncStatus.SYNCED,
    inputs: str | None = None,
    dry_run: bool = False,
    carried: bool = False,
) -> SyncResult:
    return SyncResult(
        org_id,
        customer_id,
        status,
        STAMP,
        outcome=outcome(),
        inputs=inputs,
        dry_run=dry_run,
        carried=carried,
    )


def failed(
    customer_id: int | str, *, org_id: str = "org-1", reason: str = "malformed"
) -> SyncResult:
    return SyncResult(
        org_id, customer_id, SyncStatus.FAILED, STAMP, reason=reason, detail=f"{reason}: test"
    )
