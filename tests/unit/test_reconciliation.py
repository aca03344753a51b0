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


@pytest.mark.parametrize(
    ("calculated", "alpine_points", "auto_adjust", "status", "action"),
    [
        (100, 200, False, S.ALPINE_HIGHER, Action.ALERT_ADMIN),  # r = 100/200 = 0.5
        (100, 200, True, S.ALPINE_HIGHER, Action.AUTO_ADJUST),
        (200, 100, False, S.CALCULATED_HIGHER, Action.ALERT_ADMIN),  # r = 100/200 = 0.5
        (200, 100, True, S.CALCULATED_HIGHER, Action.AUTO_ADJUST),
        (100, 100, True, S.MATCHED, Action.NONE),  # r = 0
        (1000, 900, True, S.WITHIN_TOLERANCE, Action.NONE),  # r = 100/1000 = 0.10
        (0, 0, True, S.MATCHED, Action.NONE),  # both zero: r = 0
    ],
)
def test_action_by_status_and_auto_adjust(
    calculated: int, alpine_points: int, auto_adjust: bool, status: S, action: Action
) -> None:
    rec = reconcile(calculated, alpine(alpine_points), LoyaltyRules(auto_adjust=auto_adjust))
    assert (rec.status, rec.action) == (status, action)


def test_zero_threshold_leaves_no_tolerance() -> None:
    rules = LoyaltyRules(discrepancy_threshold=Decimal(0))
    # r = 1/101 = 0.0099 > 0 -> a discrepancy; equal points are still matched
    assert reconcile(100, alpine(101), rules).status is S.ALPINE_HIGHER
    assert reconcile(101, alpine(100), rules).status is S.CALCULATED_HIGHER
    assert reconcile(100, alpine(100), rules).status is S.MATCHED


def test_an_org_tier_named_by_alpine_wins_over_alpine_points_thresholds() -> None:
    # 3000 Alpine points reach platinum (>= 2500) by threshold, but Alpine names "Bronze",
    # one of the org's tier ids: Alpine's tier is shown.
    shown = displayed_loyalty(100, alpine(3000, "Bronze"), RULES)
    assert (shown.points, shown.tier, shown.tier_source) == (3000, "bronze", TierSource.ALPINE_IQ)


def test_alpine_tier_outside_a_custom_org_list_uses_alpine_points_thresholds() -> None:
    rules = LoyaltyRules(tiers=(Tier("vip", Decimal(1000)), Tier("member", Decimal(100))))
    # "gold" is not an id of this org: tier of A by member 100 / vip 1000
    assert displayed_loyalty(0, alpine(150, "gold"), rules).tier == "member"  # 100 <= 150 < 1000
    assert displayed_loyalty(0, alpine(1000, "gold"), rules).tier == "vip"  # 1000 <= 1000
    below = displayed_loyalty(500, alpine(50, "gold"), rules)  # 50 < 100: no tier
    assert (below.points, below.tier, below.tier_source) == (50, None, TierSource.ALPINE_IQ)


def test_calculated_tier_follows_the_custom_org_list_without_an_account() -> None:
    rules = LoyaltyRules(tiers=(Tier("vip", Decimal(1000)), Tier("member", Decimal(100))))
    assert displayed_loyalty(99, None, rules).tier is None  # 99 < 100
    assert displayed_loyalty(100, None, rules).tier == "member"


def test_auto_adjust_of_a_calculated_higher_gap_records_orders_to_alpine() -> None:
    auto = LoyaltyRules(auto_adjust=True)
    # C = 300, A = 100: r = 200/300 = 0.667 > 0.10 -> calculated_higher, auto_adjust
    outcome = decide(calc(300), alpine(100), auto)
    assert outcome.reconciliation.status is S.CALCULATED_HIGHER
    assert outcome.reconciliation.discrepancy == -200  # A - C = 100 - 300
    assert outcome.displayed.points == 100  # Alpine IQ is the source of truth
    assert outcome.adjustment is not None
    adjustment = outcome.adjustment
    assert (adjustment.source, adjustment.from_points, adjustment.to_points) == ("orders", 300, 100)


def test_no_adjustment_within_tolerance_or_without_an_account_under_auto_adjust() -> None:
    auto = LoyaltyRules(auto_adjust=True)
    # r = 5/105 = 0.048 <= 0.10: within tolerance, nothing to adjust
    assert decide(calc(100), alpine(105), auto).adjustment is None
    assert decide(calc(100), None, auto).adjustment is None
