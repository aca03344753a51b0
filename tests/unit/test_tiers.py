"""Tiers: LOYALTY_RULES.md "Tier"."""

from decimal import Decimal

import pytest

from loyalty_worker.domain.models import DEFAULT_TIERS, Tier
from loyalty_worker.domain.tiers import assign_tier, known_tier, validate_tiers


@pytest.mark.parametrize(
    ("points", "tier"),
    [
        (0, "bronze"),
        (499, "bronze"),
        (500, "silver"),
        (999, "silver"),
        (1000, "gold"),
        (2499, "gold"),
        (2500, "platinum"),
        (1_000_000, "platinum"),
    ],
)
def test_default_tier_boundaries(points: int, tier: str) -> None:
    assert assign_tier(points, DEFAULT_TIERS) == tier


def test_tiers_are_sorted_by_threshold_not_list_order_and_never_mutated() -> None:
    tiers = [Tier("top", Decimal(300)), Tier("base", Decimal(0)), Tier("mid", Decimal(100))]
    before = list(tiers)
    assert assign_tier(150, tiers) == "mid"
    assert assign_tier(300, tiers) == "top"
    assert assign_tier(99, tiers) == "base"
    assert tiers == before


def test_lowest_threshold_above_zero_gives_no_tier_below_it() -> None:
    tiers = [Tier("member", Decimal(100)), Tier("vip", Decimal(1000))]
    assert assign_tier(99, tiers) is None
    assert assign_tier(100, tiers) == "member"


def test_known_tier_is_case_insensitive_and_returns_the_orgs_id() -> None:
    assert known_tier("GOLD", DEFAULT_TIERS) == "gold"
    assert known_tier("vip", DEFAULT_TIERS) is None
    assert known_tier(None, DEFAULT_TIERS) is None


@pytest.mark.parametrize(
    "tiers",
    [
        [],
        [Tier("a", Decimal(0)), Tier("A", Decimal(5))],
        [Tier("a", Decimal(-1))],
    ],
)
def test_unusable_tier_lists_are_rejected(tiers: list[Tier]) -> None:
    with pytest.raises(ValueError, match="tier"):
        validate_tiers(tiers)


def test_a_decimal_threshold_is_reached_only_at_or_above_it() -> None:
    tiers = [Tier("plus", Decimal("499.5")), Tier("base", Decimal(0))]
    # 499 < 499.5 -> base; 500 >= 499.5 -> plus
    assert assign_tier(499, tiers) == "base"
    assert assign_tier(500, tiers) == "plus"


def test_known_tier_returns_the_orgs_own_spelling() -> None:
    tiers = (Tier("Member", Decimal(0)), Tier("VIP", Decimal(1000)))
    assert known_tier("vip", tiers) == "VIP"
    assert known_tier("MEMBER", tiers) == "Member"
    assert known_tier("gold", tiers) is None  # a default id, but not this org's
