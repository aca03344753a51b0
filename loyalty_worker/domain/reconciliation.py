"""Reconciliation with Alpine IQ and the displayed balance (LOYALTY_RULES.md).

``decide`` is the pure decision: it takes the calculation and the Alpine IQ view and says what
the profile must show and what to do; the sync service applies it.
"""

from __future__ import annotations

from decimal import Decimal

from loyalty_worker.domain.bounds import check_points
from loyalty_worker.domain.models import (
    Action,
    Adjustment,
    AlpineProfile,
    DisplayedLoyalty,
    LoyaltyOutcome,
    LoyaltyRules,
    PointsCalculation,
    Reconciliation,
    ReconciliationStatus,
    SourceOfTruth,
    TierSource,
)
from loyalty_worker.domain.tiers import assign_tier, known_tier

DISCREPANCY_STATUSES = frozenset(
    {ReconciliationStatus.ALPINE_HIGHER, ReconciliationStatus.CALCULATED_HIGHER}
)


def relative_gap(alpine: int, calculated: int) -> Decimal:
    """``|A − C| / max(A, C)``, 0 when both are 0."""
    largest = max(alpine, calculated)
    if largest <= 0:
        return Decimal(0)
    return Decimal(abs(alpine - calculated)) / Decimal(largest)


def reconcile(calculated: int, alpine: AlpineProfile | None, rules: LoyaltyRules) -> Reconciliation:
    """Compare calculated points with Alpine IQ's: status, signed discrepancy, action."""
    if alpine is None:
        return Reconciliation(ReconciliationStatus.NO_ALPINE_ACCOUNT, None, None, Action.NONE)
    discrepancy = alpine.points - calculated
    gap = relative_gap(alpine.points, calculated)
    if discrepancy == 0:
        status = ReconciliationStatus.MATCHED
    elif gap <= rules.discrepancy_threshold:
        status = ReconciliationStatus.WITHIN_TOLERANCE
    elif discrepancy > 0:
        status = ReconciliationStatus.ALPINE_HIGHER
    else:
        status = ReconciliationStatus.CALCULATED_HIGHER
    if status in DISCREPANCY_STATUSES:
        action = Action.AUTO_ADJUST if rules.auto_adjust else Action.ALERT_ADMIN
        return Reconciliation(status, discrepancy, False, action)
    return Reconciliation(status, discrepancy, True, Action.NONE)


def displayed_loyalty(
    calculated: int, alpine: AlpineProfile | None, rules: LoyaltyRules
) -> DisplayedLoyalty:
    """Points and tier the profile shows, by the org's source of truth."""
    if rules.source_of_truth is SourceOfTruth.ALPINE_IQ and alpine is not None:
        tier = known_tier(alpine.tier, rules.tiers) or assign_tier(alpine.points, rules.tiers)
        return DisplayedLoyalty(alpine.points, tier, TierSource.ALPINE_IQ)
    return DisplayedLoyalty(calculated, assign_tier(calculated, rules.tiers), TierSource.CALCULATED)


def decide(
    calculation: PointsCalculation, alpine: AlpineProfile | None, rules: LoyaltyRules
) -> LoyaltyOutcome:
    """Everything the rules say for one customer, given the calculation and Alpine IQ's view."""
    calculated = calculation.points_from_orders
    if alpine is not None:
        check_points(alpine.points, "Alpine IQ points")
    reconciliation = reconcile(calculated, alpine, rules)
    displayed = displayed_loyalty(calculated, alpine, rules)
    adjustment = None
    if reconciliation.action is Action.AUTO_ADJUST and alpine is not None:
        if displayed.tier_source is TierSource.ALPINE_IQ:
            adjustment = Adjustment("orders", calculated, displayed.points)
        else:
            adjustment = Adjustment("alpine_iq", alpine.points, displayed.points)
    return LoyaltyOutcome(calculation, alpine, reconciliation, displayed, adjustment)
