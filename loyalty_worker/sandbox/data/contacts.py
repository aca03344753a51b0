"""Alpine IQ loyalty accounts, with balances that agree, nearly agree or disagree with the orders.

Each balance is set relative to the points the org's rules give the customer's orders, so that a
run over the dataset meets every reconciliation case; a few accounts have a phone no Alleaves
customer has, and tiers are named in the org's case, in another case, unknown, or not at all.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from loyalty_worker.domain.models import LoyaltyRules
from loyalty_worker.domain.points import calculate_points
from loyalty_worker.domain.tiers import assign_tier
from loyalty_worker.sandbox.data.customers import FIRST_NAMES, LAST_NAMES, People, PhoneBook
from loyalty_worker.sandbox.data.deck import Draws, deal, random_hex, timestamp
from loyalty_worker.sandbox.data.orders import OrderHistory
from loyalty_worker.sandbox.data.records import AlpineContact

# How a customer's Alpine IQ balance relates to the points the rules give from the orders.
ALPINE_RELATIONS: Mapping[str, float] = {
    "no_account": 0.15,
    "equal": 0.46,
    "within_tolerance": 0.13,
    "alpine_higher": 0.13,
    "calculated_higher": 0.13,
}
ALPINE_TIER_STYLES: Mapping[str, float] = {
    "org_id": 0.6,
    "other_case": 0.15,  # "GOLD" for the org's "gold"
    "unknown_name": 0.1,  # "vip": not one of the org's tiers
    "null": 0.15,
}
ORPHAN_CONTACT_SHARE = 0.02

# The balance each relation gives an account, from the points the rules give its orders.
_SHIFTS: Mapping[str, Callable[[int], int]] = {
    "equal": lambda c: c,
    "within_tolerance": lambda c: c + c * 3 // 100,
    "alpine_higher": lambda c: c + c // 4 if c else 40,
    "calculated_higher": lambda c: c - c * 3 // 10,
}


def generate_contacts(
    draws: Draws,
    rules: LoyaltyRules,
    people: People,
    history: OrderHistory,
    phone_book: PhoneBook,
) -> list[AlpineContact]:
    """Alpine IQ accounts, balances set relative to the points the rules give; sets each account
    holder's ``alpine_user_code``."""
    rng = draws.rng
    customers = people.customers
    equity = people.equity()
    with_phone = [c for c in customers if c["id_customer"] in people.phones]
    relations = deal(rng, len(with_phone), ALPINE_RELATIONS)
    account_holders = [
        c for c, relation in zip(with_phone, relations, strict=True) if relation != "no_account"
    ]
    orphans = max(1, round(len(customers) * ORPHAN_CONTACT_SHARE))
    styles = iter(deal(rng, len(account_holders) + orphans, ALPINE_TIER_STYLES))
    relation_of = {c["id_customer"]: r for c, r in zip(with_phone, relations, strict=True)}
    contacts: list[AlpineContact] = []
    for customer in account_holders:
        customer_id = customer["id_customer"]
        calculated = calculate_points(
            history.by_customer.get(customer_id, ()), rules, equity=customer_id in equity
        ).points_from_orders
        points = _SHIFTS[relation_of[customer_id]](calculated)
        contact = _contact(
            rng,
            phone=people.phones[customer_id],
            first=customer["name_first"],
            last=customer["name_last"],
            points=points,
            tier=_styled_tier(assign_tier(points, rules.tiers), next(styles)),
            last_visit=history.last_visits.get(customer_id),
        )
        customer["alpine_user_code"] = contact["contactID"]
        contacts.append(contact)
    for _ in range(orphans):
        # An Alpine IQ account whose phone no Alleaves customer has.
        phone, first, last = phone_book.new(), rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        points = rng.randint(0, 1500)
        contacts.append(
            _contact(
                rng,
                phone=phone,
                first=first,
                last=last,
                points=points,
                tier=_styled_tier(assign_tier(points, rules.tiers), next(styles)),
                last_visit=timestamp(draws.moment()),
            )
        )
    rng.shuffle(contacts)
    return contacts


def _styled_tier(tier: str | None, style: str) -> str | None:
    """The tier as the account names it: the org's id, in another case, unknown, or null."""
    if tier is not None and style == "other_case":
        return tier.upper() if tier != tier.upper() else tier.lower()
    if style == "unknown_name":
        return "vip"
    if style == "null":
        return None
    return tier


def _contact(
    rng: random.Random,
    *,
    phone: str,
    first: str,
    last: str,
    points: int,
    tier: str | None,
    last_visit: str | None,
) -> AlpineContact:
    return {
        "contactID": random_hex(rng, 16),
        "phone": phone,
        "firstName": first,
        "lastName": last,
        "points": points,
        "tier": tier,
        "lastVisit": last_visit,
    }
