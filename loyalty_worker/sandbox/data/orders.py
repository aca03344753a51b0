"""Alleaves orders, flat and newest first as /order answers them, and what the rules need of them.

Statuses in any case (some of them unknown to Alleaves' list), amounts as numbers or strings, null
or missing discounts, refunds and anonymous orders are dealt from the deck.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from loyalty_worker.domain.models import Order
from loyalty_worker.sandbox.data.deck import Draws, deal, timestamp
from loyalty_worker.sandbox.data.records import CustomerRecord, OrderItem, OrderRecord

IN_STORE_EMAIL = "no-email@alleaves.local"

_CENT = Decimal("0.01")

ORDER_STATUSES: Mapping[str, float] = {
    "completed": 0.62,
    "delivered": 0.12,
    "pending": 0.02,
    "submitted": 0.02,
    "confirmed": 0.02,
    "preparing": 0.015,
    "processing": 0.015,
    "ready": 0.015,
    "cancelled": 0.05,
    "voided": 0.04,
    # Not in the Alleaves list: a deployment may still send them, and they count nothing.
    "refunded": 0.01,
    "on_hold": 0.01,
    "returned": 0.005,
}
DISCOUNT_KINDS: Mapping[str, float] = {"zero": 0.55, "amount": 0.25, "null": 0.12, "missing": 0.08}
AMOUNT_STYLES: Mapping[str, float] = {"number": 0.85, "string": 0.15}
CHANNELS: Mapping[str, float] = {"in_store": 0.5, "online": 0.5}
REFUNDS: Mapping[bool, float] = {False: 0.98, True: 0.02}
ANONYMOUS_KINDS: Mapping[str, float] = {"zero_id": 0.5, "missing_id": 0.5}

NO_ORDERS_SHARE = 0.07
ANONYMOUS_ORDER_SHARE = 0.04
MEAN_ORDERS = 5.9  # per customer with orders: about 5 per customer overall

PAYMENT_METHODS = {"in_store": ("cash", "debit", "Cash"), "online": ("aeropay", "CanPay", "card")}
# (id_item, name, category, lowest price, highest price) in dollars.
CATALOGUE = (
    (1101, "Blue Dream 3.5g", "Flower", 32, 55),
    (1102, "Gelato 3.5g", "Flower", 35, 60),
    (1103, "OG Kush 7g", "Flower", 55, 95),
    (1201, "Sour Diesel Pre-Roll 1g", "Pre-Rolls", 8, 15),
    (1202, "Hybrid Pre-Roll 5-pack", "Pre-Rolls", 25, 40),
    (1301, "Watermelon Gummies 100mg", "Edibles", 16, 26),
    (1302, "Dark Chocolate Bar 100mg", "Edibles", 18, 28),
    (1401, "Live Resin Cart 1g", "Vapes", 35, 55),
    (1402, "Disposable Vape 0.5g", "Vapes", 25, 38),
    (1501, "Live Rosin 1g", "Concentrates", 45, 75),
    (1601, "CBD Relief Balm", "Topicals", 20, 40),
    (1701, "Grinder", "Accessories", 10, 25),
)


@dataclass(frozen=True, slots=True)
class OrderHistory:
    """An org's orders as Alleaves serves them, and as the rules and Alpine IQ balances see them."""

    orders: list[OrderRecord]  # flat, newest first
    by_customer: dict[int, list[Order]]  # each customer's orders, for the rules
    last_visits: dict[int, str]  # each customer's latest date_created


@dataclass(frozen=True, slots=True)
class _Cases:
    """What the deck dealt one order."""

    status: str  # already in the case it is served in
    channel: str
    discount: str
    as_string: bool  # amounts as strings rather than numbers
    refund: bool


def generate_orders(
    draws: Draws, org_index: int, customers: Sequence[CustomerRecord]
) -> OrderHistory:
    """The org's orders, newest first: most customers' (some have none) and a few anonymous."""
    rng = draws.rng
    has_orders = deal(rng, len(customers), {False: NO_ORDERS_SHARE, True: 1 - NO_ORDERS_SHARE})
    owners: list[CustomerRecord | None] = []
    for customer, active in zip(customers, has_orders, strict=True):
        if active:
            owners.extend([customer] * (1 + int(rng.expovariate(1 / (MEAN_ORDERS - 1)))))
    anonymous = max(1, round(len(owners) * ANONYMOUS_ORDER_SHARE))
    owners.extend([None] * anonymous)

    total = len(owners)
    statuses = deal(rng, total, ORDER_STATUSES)
    discounts = deal(rng, total, DISCOUNT_KINDS)
    styles = deal(rng, total, AMOUNT_STYLES)
    channels = deal(rng, total, CHANNELS)
    refunds = deal(rng, total, REFUNDS)
    anonymous_kinds = iter(deal(rng, anonymous, ANONYMOUS_KINDS))
    moments = sorted(((draws.moment(), n) for n in range(total)), key=lambda m: m[0])
    tax_rate = Decimal("0.20") if org_index % 2 == 0 else Decimal("0.18")

    orders: list[OrderRecord] = []
    by_customer: dict[int, list[Order]] = {}
    last_visits: dict[int, str] = {}
    order_id = (org_index + 1) * 10_000_000 + rng.randint(10_000, 90_000)
    for number, (created, slot) in enumerate(moments):
        order_id += rng.randint(1, 4)
        owner = owners[slot]
        cases = _Cases(
            status=_status_case(rng, statuses[slot]),
            channel=channels[slot],
            discount=discounts[slot],
            as_string=styles[slot] == "string",
            refund=refunds[slot],
        )
        order, subtotal, discount, refunded = _order(
            draws,
            order_id=order_id,
            number=number,
            created=created,
            cases=cases,
            owner=owner,
            tax_rate=tax_rate,
        )
        if owner is None:
            if next(anonymous_kinds) == "zero_id":
                order["id_customer"] = 0
        else:
            customer_id = owner["id_customer"]
            order["id_customer"] = customer_id
            by_customer.setdefault(customer_id, []).append(
                Order(order_id, customer_id, cases.status, subtotal, discount, refunded)
            )
            if customer_id not in last_visits:
                # Orders come oldest first: a customer record predates its first order.
                signed_up = created - timedelta(minutes=rng.randint(1, 600))
                owner["date_created"] = min(owner["date_created"], timestamp(signed_up))
            last_visits[customer_id] = order["date_created"]
        orders.append(order)
    orders.reverse()
    return OrderHistory(orders, by_customer, last_visits)


def _status_case(rng: random.Random, status: str) -> str:
    """Alleaves statuses arrive in any case: "completed", "COMPLETED", "Delivered"."""
    roll = rng.random()
    if roll < 0.5:
        return status
    return status.upper() if roll < 0.8 else status.title()


def _money(rng: random.Random, low: float, high: float) -> Decimal:
    return Decimal(rng.randint(int(low * 100), int(high * 100))) * _CENT


def _items(rng: random.Random) -> tuple[list[OrderItem], Decimal]:
    """An order's lines from the catalogue, and their subtotal."""
    items: list[OrderItem] = []
    subtotal = Decimal(0)
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
        item_id, item, category, low, high = rng.choice(CATALOGUE)
        price = _money(rng, low, high)
        quantity = rng.choice((1, 1, 1, 2, 3))
        subtotal += price * quantity
        items.append(
            {
                "id_item": item_id,
                "item": item,
                "quantity": quantity,
                "price": float(price),
                "category": category,
            }
        )
    return items, subtotal


def _order(
    draws: Draws,
    *,
    order_id: int,
    number: int,
    created: datetime,
    cases: _Cases,
    owner: CustomerRecord | None,
    tax_rate: Decimal,
) -> tuple[OrderRecord, Decimal, Decimal, Decimal]:
    """One flat order (without ``id_customer``) and its subtotal, discount and refund."""
    rng = draws.rng
    items, subtotal = _items(rng)
    discount = Decimal(0)
    if cases.discount == "amount":
        discount = (subtotal * Decimal(rng.choice((5, 10, 15, 20))) / 100).quantize(_CENT)
    refunded = (subtotal / 2).quantize(_CENT) if cases.refund else Decimal(0)
    loyalty = rng.choice((Decimal(0),) * 8 + (Decimal(5), Decimal(10)))
    tax = ((subtotal - discount) * tax_rate).quantize(_CENT)
    total = max(subtotal - discount + tax - loyalty, Decimal(0))

    def amount(value: Decimal) -> float | str:
        return f"{value:.2f}" if cases.as_string else float(value)

    updated = created + timedelta(seconds=rng.randint(0, 7200))
    if cases.status.lower() in {"cancelled", "voided", "refunded", "returned"}:
        updated += timedelta(days=rng.randint(0, 5))
    updated = max(created, min(updated, draws.anchor - timedelta(milliseconds=1)))

    email = IN_STORE_EMAIL
    if owner is not None and cases.channel == "online" and owner["email"]:
        email = owner["email"]
    order: OrderRecord = {
        "id_order": order_id,
        "order_number": str(100_000 + number),
        "name_first": owner["name_first"] if owner else "",
        "name_last": owner["name_last"] if owner else "",
        "email": email,
        "phone": (owner["phone"] or "") if owner else "",
        "date_created": timestamp(created),
        "date_updated": timestamp(updated),
        "status": cases.status,
        "subtotal": amount(subtotal),
        "tax": amount(tax),
        "discount": amount(discount) if cases.discount in ("zero", "amount") else None,
        "total": amount(total),
        "payment_method": rng.choice(PAYMENT_METHODS[cases.channel]),
        "items": items,
        "loyalty": float(loyalty),
        "points_earned": None,
        "loyalties": [],
    }
    if cases.discount == "missing":
        del order["discount"]
    if cases.refund:
        order["refunded_amount"] = amount(refunded)
    return order, subtotal, discount, refunded
