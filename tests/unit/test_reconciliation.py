"""Reconciliation and displayed points: LOYALTY_RULES.md "Reconciliation", "Displayed points"."""

from decimal import Decimal

import pytest

from loyalty_worker.domain.models import (
    Action,
    AlpineProfile,
    LoyaltyRules,
    PointsCalculation,
    ReconciliationStatus,
    SourceOfTruth,
    Tier,
    TierSource,
)
from loyalty_worker.domain.reconciliation import decide, displayed_loyalty, reconcile, relative_gap

RULES = LoyaltyRules()
S = ReconciliationStatus


def alpine(points: int, tier: str | None = None) -> AlpineProfile:
    return AlpineProfile(points=points, tier=tier)


def test_no_account_means_no_discrepancy_and_no_reconciled_flag() -> None:
    rec = reconcile(120, None, RULES)
    assert (rec.status, rec.discrepancy, rec.reconciled, rec.action) == (
        S.NO_ALPINE_ACCOUNT,
        None,
        None,
        Action.NONE,
    )


@pytest.mark.parametrize(
    ("calculated", "alpine_points", "status", "discrepancy", "reconciled"),
    [
        (0, 0, S.MATCHED, 0, True),  # both zero: r = 0
        (450, 450, S.MATCHED, 0, True),
        (450, 475, S.WITHIN_TOLERANCE, 25, True),  # r = 25/475 = 0.0526
        (1000, 900, S.WITHIN_TOLERANCE, -100, True),  # r = 100/1000 = 0.10 exactly: within
        (900, 1000, S.WITHIN_TOLERANCE, 100, True),  # r = 100/1000 = 0.10 exactly
        (899, 1000, S.ALPINE_HIGHER, 101, False),  # r = 0.101
        (1000, 899, S.CALCULATED_HIGHER, -101, False),
        (0, 40, S.ALPINE_HIGHER, 40, False),  # r = 1
        (40, 0, S.CALCULATED_HIGHER, -40, False),
    ],
)
def test_status_by_relative_gap(
    calculated: int, alpine_points: int, status: S, discrepancy: int, reconciled: bool
) -> None:
    rec = reconcile(calculated, alpine(alpine_points), RULES)
    assert (rec.status, rec.discrepancy, rec.reconciled) == (status, discrepancy, reconciled)


def test_relative_gap_uses_the_larger_side() -> None:
    assert relative_gap(475, 450) == Decimal(25) / Decimal(475)
    assert relative_gap(0, 0) == 0


def test_custom_threshold() -> None:
    rules = LoyaltyRules(discrepancy_threshold=Decimal("0.30"))
    assert reconcile(100, alpine(70), rules).status is S.WITHIN_TOLERANCE
    assert reconcile(100, alpine(69), rules).status is S.CALCULATED_HIGHER


def test_action_alert_admin_by_default_and_auto_adjust_when_enabled() -> None:
    assert reconcile(100, alpine(200), RULES).action is Action.ALERT_ADMIN
    auto = LoyaltyRules(auto_adjust=True)
    assert reconcile(100, alpine(200), auto).action is Action.AUTO_ADJUST
    assert reconcile(100, alpine(105), auto).action is Action.NONE
    assert reconcile(100, None, auto).action is Action.NONE


def test_alpine_is_displayed_when_it_is_the_source_of_truth() -> None:
    shown = displayed_loyalty(100, alpine(1200, "GOLD"), RULES)
    assert (shown.points, shown.tier, shown.tier_source) == (1200, "gold", TierSource.ALPINE_IQ)


def test_alpine_tier_not_in_the_orgs_list_falls_back_to_thresholds_of_alpine_points() -> None:
    shown = displayed_loyalty(100, alpine(600, "vip"), RULES)
    assert (shown.points, shown.tier, shown.tier_source) == (600, "silver", TierSource.ALPINE_IQ)
    no_tier = displayed_loyalty(100, alpine(2600, None), RULES)
    assert no_tier.tier == "platinum"


def test_calculated_is_displayed_without_an_account() -> None:
    shown = displayed_loyalty(700, None, RULES)
    assert (shown.points, shown.tier, shown.tier_source) == (700, "silver", TierSource.CALCULATED)


def test_calculated_is_displayed_when_orders_are_the_source_of_truth() -> None:
    rules = LoyaltyRules(
        source_of_truth=SourceOfTruth.ORDERS,
        tiers=(Tier("member", Decimal(100)), Tier("vip", Decimal(50_000))),
    )
    shown = displayed_loyalty(99, alpine(60_000, "vip"), rules)
    assert (shown.points, shown.tier, shown.tier_source) == (99, None, TierSource.CALCULATED)


def calc(points: int) -> PointsCalculation:
    return PointsCalculation(points, 0, points, 1, Decimal(points))


def test_auto_adjust_records_the_adjustment_from_the_other_source() -> None:
    auto = LoyaltyRules(auto_adjust=True)
    outcome = decide(calc(100), alpine(300), auto)
    assert outcome.adjustment is not None
    assert (outcome.adjustment.source, outcome.adjustment.from_points) == ("orders", 100)
    assert outcome.adjustment.to_points == 300
    by_orders = LoyaltyRules(auto_adjust=True, source_of_truth=SourceOfTruth.ORDERS)
    outcome = decide(calc(100), alpine(300), by_orders)
    assert outcome.adjustment is not None
    assert (outcome.adjustment.source, outcome.adjustment.from_points) == ("alpine_iq", 300)
    assert outcome.adjustment.to_points == 100


def test_no_adjustment_without_auto_adjust_or_without_a_discrepancy() -> None:
    assert decide(calc(100), alpine(300), RULES).adjustment is None
    assert decide(calc(100), alpine(100), LoyaltyRules(auto_adjust=True)).adjustment is None
