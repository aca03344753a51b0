"""Points from an Alleaves order history (LOYALTY_RULES.md, "Points from orders")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
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
    counted_at: list[tuple[int, str]] = []
    for order in orders:
        if not is_counted(order):
            continue
        counted.append((order.order_id, eligible_spend(order)))
        if order.created_at:
            counted_at.append((order.order_id, order.created_at))
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
        counted_at=tuple(counted_at),
    )


# A ledger entry: the eligible spend, then ``@`` and the order's creation stamp when known
# (``"120.50@2026-12-01T18:22:05Z"``); entries written before the stamp was kept are the
# spend alone (``"120.50"``).
LEDGER_DATE_MARK = "@"


def ledger_text(spend: Decimal, created_at: str | None) -> str:
    """One entry of a profile's order ledger (``loyaltyOrders``)."""
    return f"{spend}{LEDGER_DATE_MARK}{created_at}" if created_at else str(spend)


def ledger_entry(text: str) -> tuple[Decimal, str | None]:
    """The eligible spend and creation stamp (None: not kept) of one ledger entry; ValueError
    or ArithmeticError for an entry edited into something else."""
    spend, _, created_at = str(text).partition(LEDGER_DATE_MARK)
    if created_at:
        datetime.fromisoformat(created_at)  # ValueError: no stamp
    return Decimal(spend), created_at or None


def ledger_orders(customer_id: int, ledger: Mapping[str, str]) -> list[Order]:
    """The counted orders a profile's ledger remembers, as orders that give the same points.

    The ledger keeps each counted order's eligible spend (and its date): a completed order of
    that subtotal earns exactly the points the original did, under any later points-per-dollar
    rate, and keeps its date for the next ledger.
    """
    orders = []
    for order_id, text in ledger.items():
        spend, created_at = ledger_entry(text)
        orders.append(
            Order(
                order_id=int(order_id),
                customer_id=customer_id,
                status="completed",
                subtotal=spend,
                created_at=created_at,
            )
        )
    return orders


def merge_orders(known: Iterable[Order], recent: Iterable[Order]) -> list[Order]:
    """Orders by id; a recent copy replaces a remembered one (completed or voided since)."""
    merged = {order.order_id: order for order in known}
    merged.update((order.order_id, order) for order in recent)
    return list(merged.values())
