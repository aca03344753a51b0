"""Points from orders: LOYALTY_RULES.md "Points from orders", each branch hand-computed."""

from decimal import Decimal

import pytest

from loyalty_worker.domain.models import LoyaltyRules, Order
from loyalty_worker.domain.points import calculate_points, eligible_spend, is_counted, order_points

RULES = LoyaltyRules()


def order(subtotal: str, status: str = "completed", **kw: str) -> Order:
    amounts = {k: Decimal(v) for k, v in kw.items()}
    return Order(
        order_id=1,
        customer_id=7,
        status=status,
        subtotal=Decimal(subtotal),
        discount=amounts.get("discount", Decimal(0)),
        refunded_amount=amounts.get("refunded_amount", Decimal(0)),
    )


@pytest.mark.parametrize("status", ["completed", "COMPLETED", "Delivered", " delivered "])
def test_completed_and_delivered_count_in_any_case(status: str) -> None:
    assert is_counted(order("10", status))


@pytest.mark.parametrize(
    "status",
    [
        "pending",
        "submitted",
        "confirmed",
        "preparing",
        "processing",
        "ready",
        "cancelled",
        "voided",
        "refunded",
        "VOIDED",
        "on_hold",
        "",
    ],
)
def test_every_other_status_counts_nothing(status: str) -> None:
    result = calculate_points([order("100", status)], RULES, equity=False)
    assert (result.points_from_orders, result.orders_processed) == (0, 0)
    assert result.total_spent == Decimal("0.00")


def test_eligible_spend_subtracts_discount_and_refund() -> None:
    # 50.00 - 5.50 - 10.00 = 34.50
    assert eligible_spend(order("50.00", discount="5.50", refunded_amount="10.00")) == Decimal(
        "34.50"
    )


def test_eligible_spend_is_floored_at_zero() -> None:
    assert eligible_spend(order("20", discount="15", refunded_amount="10")) == Decimal(0)


def test_order_points_floor_per_order_not_on_the_total() -> None:
    # 10.99 + 10.99 = 21.98 would floor to 21 as a total; per order it is 10 + 10 = 20.
    result = calculate_points([order("10.99"), order("10.99")], RULES, equity=False)
    assert result.base_points == 20
    assert result.total_spent == Decimal("21.98")


def test_points_per_dollar_applies_before_the_floor() -> None:
    rules = LoyaltyRules(points_per_dollar=Decimal("1.5"))
    # 33.33 * 1.5 = 49.995 -> 49
    assert order_points(order("33.33"), rules) == 49


def test_decimal_arithmetic_has_no_float_error() -> None:
    # 0.1 * 3 in float is 0.30000000000000004; 19.99 * 100 is 1998.9999999999998 in float.
    rules = LoyaltyRules(points_per_dollar=Decimal(100))
    assert order_points(order("19.99"), rules) == 1999


def test_equity_bonus_floors_the_extra_on_the_base() -> None:
    rules = LoyaltyRules(equity_multiplier=Decimal("1.5"))
    result = calculate_points([order("101"), order("100")], rules, equity=True)
    # base 201; bonus floor(201 * 0.5) = 100
    assert (result.base_points, result.equity_bonus, result.points_from_orders) == (201, 100, 301)


def test_no_bonus_for_a_customer_without_equity_status() -> None:
    rules = LoyaltyRules(equity_multiplier=Decimal(2))
    result = calculate_points([order("100")], rules, equity=False)
    assert (result.equity_bonus, result.points_from_orders) == (0, 100)


def test_multiplier_one_gives_no_bonus_even_for_equity() -> None:
    result = calculate_points([order("100")], RULES, equity=True)
    assert result.equity_bonus == 0


def test_no_orders_is_zero_points_and_still_a_result() -> None:
    result = calculate_points([], RULES, equity=True)
    assert (result.points_from_orders, result.orders_processed) == (0, 0)
    assert result.total_spent == Decimal("0.00")


def test_zero_spend_order_counts_as_processed_with_zero_points() -> None:
    result = calculate_points([order("0")], RULES, equity=False)
    assert (result.points_from_orders, result.orders_processed) == (0, 1)


def test_total_spent_is_rounded_to_cents() -> None:
    result = calculate_points([order("10.005"), order("0.001")], RULES, equity=False)
    # 10.006 -> 10.01 (half up)
    assert result.total_spent == Decimal("10.01")


def test_mixed_history() -> None:
    orders = [
        order("120.40", "completed", discount="20.40"),  # 100 -> 100
        order("55.55", "Delivered"),  # 55
        order("500", "voided"),  # nothing
        order("80", "completed", refunded_amount="80"),  # 0, still processed
        order("30", "pending"),  # nothing
    ]
    rules = LoyaltyRules(equity_multiplier=Decimal("1.25"))
    result = calculate_points(orders, rules, equity=True)
    # base 155, bonus floor(155 * 0.25) = floor(38.75) = 38
    assert result.base_points == 155
    assert result.equity_bonus == 38
    assert result.points_from_orders == 193
    assert result.orders_processed == 3
    assert result.total_spent == Decimal("155.55")


def test_equity_bonus_is_floored_once_on_the_summed_base_not_per_order() -> None:
    rules = LoyaltyRules(equity_multiplier=Decimal("1.5"))
    result = calculate_points([order("101"), order("101")], rules, equity=True)
    # base 101 + 101 = 202; bonus floor(202 * 0.5) = 101.
    # A per-order bonus would give floor(50.5) + floor(50.5) = 100 instead.
    assert (result.base_points, result.equity_bonus, result.points_from_orders) == (202, 101, 303)


def test_equity_multiplier_is_applied_in_decimal_not_float() -> None:
    rules = LoyaltyRules(equity_multiplier=Decimal("1.15"))
    result = calculate_points([order("100")], rules, equity=True)
    # bonus floor(100 * (1.15 - 1)) = floor(100 * 0.15) = 15;
    # in float, 100 * (1.15 - 1) = 14.999999999999991 would floor to 14.
    assert (result.base_points, result.equity_bonus, result.points_from_orders) == (100, 15, 115)


def test_partial_refund_and_discount_lower_points_and_total_spent() -> None:
    result = calculate_points(
        [order("100.00", discount="10.00", refunded_amount="30.50")], RULES, equity=False
    )
    # 100.00 - 10.00 - 30.50 = 59.50 -> floor(59.50 * 1) = 59 points; the order still counts.
    assert (result.points_from_orders, result.orders_processed) == (59, 1)
    assert result.total_spent == Decimal("59.50")


def test_points_per_dollar_below_one_still_floors_per_order() -> None:
    rules = LoyaltyRules(points_per_dollar=Decimal("0.5"))
    result = calculate_points([order("99.99"), order("3")], rules, equity=False)
    # floor(99.99 * 0.5) = floor(49.995) = 49; floor(3 * 0.5) = floor(1.5) = 1; 49 + 1 = 50
    assert result.base_points == 50
    assert result.total_spent == Decimal("102.99")


def test_uncounted_orders_add_nothing_to_total_spent_or_points() -> None:
    orders = [
        order("40", "completed"),
        order("1000", "Cancelled"),
        order("250", "REFUNDED", refunded_amount="250"),
        order("75", "ready"),
    ]
    result = calculate_points(orders, RULES, equity=False)
    # only the completed 40.00 counts: 40 points, 1 order, 40.00 spent
    assert (result.points_from_orders, result.orders_processed) == (40, 1)
    assert result.total_spent == Decimal("40.00")
