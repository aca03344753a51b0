"""Points from an Alleaves order history (LOYALTY_RULES.md, "Points from orders")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from loyalty_worker.domain.bounds import check_points
from loyalty_worker.domain.models import LoyaltyRules, Order, PointsCalculation

COUNTED_STATUSES = frozenset({"completed", "delivered"})
_ZERO = Decimal(0)
_CENT = Decimal("0.01")


def is_counted(order: Order) -> bool:
    """An order earns points only once it is completed or delivered (any case)."""
    return order.status.strip().lower() in COUNTED_STATUSES


def eligible_spend(order: Order) -> Decimal:
    """Pre-tax spend after discounts and refunds, never below zero."""
    return max(order.subtotal - order.discount - order.refunded_amount, _ZERO)


def floor_points(value: Decimal) -> int:
    """Points are whole: always rounded down, at this one place."""
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def order_points(order: Order, rules: LoyaltyRules) -> int:
    """Base points one counted order earns at checkout."""
    return floor_points(eligible_spend(order) * rules.points_per_dollar)


def calculate_points(
    orders: Iterable[Order], rules: LoyaltyRules, *, equity: bool
) -> PointsCalculation:
    """Sum base points over counted orders, then add the equity bonus.

    Points beyond ``bounds.MAX_POINTS`` raise ``OutOfBounds`` (the orders cannot be real).
    """
    base = 0
    counted: list[tuple[int, Decimal]] = []
    for order in orders:
        if not is_counted(order):
            continue
        counted.append((order.order_id, eligible_spend(order)))
        base += order_points(order, rules)
    spent = sum((spend for _, spend in counted), _ZERO)
    bonus = floor_points(Decimal(base) * (rules.equity_multiplier - 1)) if equity else 0
    return PointsCalculation(
        base_points=base,
        equity_bonus=bonus,
        points_from_orders=check_points(base + bonus, "points from orders"),
        orders_processed=len(counted),
        total_spent=spent.quantize(_CENT, rounding=ROUND_HALF_UP),
        counted=tuple(counted),
    )


def ledger_orders(customer_id: int, ledger: Mapping[str, str]) -> list[Order]:
    """The counted orders a profile's ledger remembers, as orders that give the same points.

    The ledger keeps each counted order's eligible spend: a completed order of that subtotal
    earns exactly the points the original did, under any later points-per-dollar rate.
    """
    return [
        Order(
            order_id=int(order_id),
            customer_id=customer_id,
            status="completed",
            subtotal=Decimal(spend),
        )
        for order_id, spend in ledger.items()
    ]


def merge_orders(known: Iterable[Order], recent: Iterable[Order]) -> list[Order]:
    """Orders by id; a recent copy replaces a remembered one (completed or voided since)."""
    merged = {order.order_id: order for order in known}
    merged.update((order.order_id, order) for order in recent)
    return list(merged.values())
