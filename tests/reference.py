"""An independent reading of LOYALTY_RULES.md over a raw dataset, for end-to-end checks.

Deliberately imports nothing from loyalty_worker: the profiles a run writes are compared with
what this second implementation, written straight from the rules, expects.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

DEFAULT_TIERS = [
    {"id": "bronze", "threshold": 0},
    {"id": "silver", "threshold": 500},
    {"id": "gold", "threshold": 1000},
    {"id": "platinum", "threshold": 2500},
]


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def _phone(raw: Any) -> str | None:
    digits = re.sub(r"\D", "", str(raw or ""))
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    return digits if len(digits) == 10 else None


def _tier(points: int, tiers: list[dict[str, Any]]) -> str | None:
    best = None
    for tier in sorted(tiers, key=lambda t: _dec(t["threshold"])):
        if _dec(tier["threshold"]) <= points:
            best = tier["id"]
    return best


# The profile fields ``expected_profiles`` gives, in the order tests compare them.
LOYALTY_KEYS = (
    "points",
    "pointsFromOrders",
    "pointsFromAlpine",
    "tier",
    "tierSource",
    "loyaltyReconciled",
    "loyaltyDiscrepancy",
    "loyaltyStatus",
    "ordersProcessed",
    "totalSpent",
)


def expected_profiles(org: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Customer id → the loyalty fields the rules give (customers with malformed data left out)."""
    settings = org["settings"]
    ppd = _dec(settings.get("pointsPerDollar", 1))
    multiplier = _dec(settings.get("equityMultiplier", 1))
    tiers: list[dict[str, Any]] = settings.get("tiers") or DEFAULT_TIERS
    threshold = _dec(settings.get("discrepancyThreshold", "0.10"))
    by_alpine = settings.get("sourceOfTruth", "alpine_iq") == "alpine_iq"
    equity = {p["customerId"] for p in org.get("profiles", []) if p.get("equityStatus") is True}
    contacts = {_phone(c.get("phone")): c for c in org.get("alpineContacts", [])}

    orders: dict[int, list[dict[str, Any]]] = {}
    broken: set[int] = set()
    for order in org["orders"]:
        owner = int(order.get("id_customer") or 0)
        if not owner:
            continue
        try:
            _dec(order["subtotal"]) + 0
        except Exception:
            broken.add(owner)
            continue
        orders.setdefault(owner, []).append(order)

    expected = {}
    for customer in org["customers"]:
        cid = customer.get("id_customer")
        if cid is None or cid in broken:
            continue
        base = counted = 0
        spent = Decimal(0)
        for order in orders.get(cid, []):
            if str(order.get("status", "")).strip().lower() not in ("completed", "delivered"):
                continue
            spend = (
                _dec(order["subtotal"])
                - _dec(order.get("discount") or 0)
                - _dec(order.get("refunded_amount") or 0)
            )
            spend = max(spend, Decimal(0))
            counted += 1
            spent += spend
            base += math.floor(spend * ppd)
        bonus = math.floor(base * (multiplier - 1)) if cid in equity else 0
        calc = base + bonus
        phone = _phone(customer.get("phone"))
        contact = contacts.get(phone) if phone else None
        fields: dict[str, Any] = {
            "pointsFromOrders": calc,
            "ordersProcessed": counted,
            # money: half a cent rounds up
            "totalSpent": float(spent.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)),
        }
        if contact is None:
            fields.update(
                points=calc,
                tier=_tier(calc, tiers),
                tierSource="calculated",
                loyaltyStatus="no_alpine_account",
                loyaltyReconciled=None,
                pointsFromAlpine=None,
                loyaltyDiscrepancy=None,
            )
        else:
            alpine = int(contact["points"])
            # Exact, as the rules compare it: a float gap of 1/50 is a hair above 0.02.
            gap = Decimal(abs(alpine - calc)) / max(alpine, calc) if max(alpine, calc) else 0
            if alpine == calc:
                status = "matched"
            elif gap <= threshold:
                status = "within_tolerance"
            else:
                status = "alpine_higher" if alpine > calc else "calculated_higher"
            fields.update(
                pointsFromAlpine=alpine,
                loyaltyDiscrepancy=alpine - calc,
                loyaltyStatus=status,
                loyaltyReconciled=status in ("matched", "within_tolerance"),
            )
            if by_alpine:
                named = {t["id"].lower(): t["id"] for t in tiers}
                tier = named.get(str(contact.get("tier") or "").lower()) or _tier(alpine, tiers)
                fields.update(points=alpine, tier=tier, tierSource="alpine_iq")
            else:
                fields.update(points=calc, tier=_tier(calc, tiers), tierSource="calculated")
        expected[cid] = fields
    return expected
