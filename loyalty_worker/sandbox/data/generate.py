"""Generation of a dataset: each org from its own random stream, its records dirty by design.

An org is built in a fixed order (settings, customers, orders, Alpine IQ accounts, the malformed
share, credentials) from ``random.Random(f"{seed}:{index}")``: see ``deck`` on why the order holds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime

from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.sandbox.data.contacts import generate_contacts
from loyalty_worker.sandbox.data.customers import PhoneBook, generate_customers
from loyalty_worker.sandbox.data.deck import Draws, random_hex
from loyalty_worker.sandbox.data.orders import generate_orders
from loyalty_worker.sandbox.data.records import (
    CustomerRecord,
    Dataset,
    OrderRecord,
    OrgRecord,
    SettingsRecord,
    TierRecord,
)

ORG_NAMES = (
    "Green Leaf Collective",
    "Mile High Remedies",
    "Coastal Canna Co.",
    "Desert Bloom Dispensary",
    "Northern Lights Wellness",
)


def generate_dataset(
    customers: int,
    seed: int,
    *,
    orgs: int = 2,
    malformed_rate: float = 0.0,
    as_of: date | None = None,
) -> Dataset:
    """A dataset of ``orgs`` dispensaries: ``customers`` customers in the first, a tenth in others.

    The same as ``generate_sized_dataset`` with those sizes (a tenth of at least one customer).
    """
    if customers < 1:
        raise ValueError("customers must be >= 1")
    if orgs < 1:
        raise ValueError("orgs must be >= 1")
    sizes = [customers] + [max(1, customers // 10)] * (orgs - 1)
    return generate_sized_dataset(sizes, seed, malformed_rate=malformed_rate, as_of=as_of)


def generate_sized_dataset(
    sizes: Sequence[int],
    seed: int,
    *,
    malformed_rate: float = 0.0,
    as_of: date | None = None,
) -> Dataset:
    """A dataset of one dispensary per entry of ``sizes``: ``org-{n}`` has ``sizes[n - 1]``
    customers.

    Each org comes from its own random stream, so an org is the same whatever the sizes of the
    others. Every timestamp lies within about three years before ``as_of`` (default: today, UTC,
    so that "recent" windows hold orders); with ``as_of`` fixed, the same arguments give the
    same JSON. ``malformed_rate`` is the share of customers that lose ``id_customer`` and of
    orders whose ``subtotal`` is broken.
    """
    if not sizes:
        raise ValueError("sizes must name at least one org")
    if min(sizes) < 1:
        raise ValueError("every org's size must be >= 1 customer")
    if not 0.0 <= malformed_rate <= 1.0:
        raise ValueError("malformed_rate must be between 0 and 1")
    day = as_of or datetime.now(UTC).date()
    anchor = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {
        "asOf": day.isoformat(),
        "orgs": [
            _org(index, size, Draws(random.Random(f"{seed}:{index}"), anchor), malformed_rate)
            for index, size in enumerate(sizes)
        ],
    }


def _org(index: int, customers: int, draws: Draws, malformed_rate: float) -> OrgRecord:
    """One org of the dataset: ``org-{index + 1}``, with ``customers`` customers."""
    rng = draws.rng
    org_id = f"org-{index + 1}"
    settings = _settings(index, rng)
    rules = OrgSettings.parse(org_id, settings).rules()
    phone_book = PhoneBook(rng, index)
    people = generate_customers(draws, index, customers, phone_book)
    history = generate_orders(draws, index, people.customers)
    contacts = generate_contacts(draws, rules, people, history, phone_book)
    _break_records(rng, people.customers, history.orders, malformed_rate)
    name = ORG_NAMES[index % len(ORG_NAMES)]
    slug = f"org{index + 1}"
    return {
        "orgId": org_id,
        "name": name if index < len(ORG_NAMES) else f"{name} #{index + 1}",
        "settings": settings,
        "alleaves": {
            "username": f"sync-{slug}@{slug}.example",
            "password": f"sbx-alv-pw-{random_hex(rng, 16)}",
            "pin": f"{rng.randint(0, 999_999):06d}",
            "locationId": 100 + index,
        },
        "alpine": {
            "uid": str(rng.randint(1000, 99_999)),
            "apiKey": f"sbx-aiq-{random_hex(rng, 24)}",
        },
        "customers": people.customers,
        "orders": history.orders,
        "alpineContacts": contacts,
        "profiles": people.profiles,
    }


def _settings(index: int, rng: random.Random) -> SettingsRecord:
    """Loyalty settings that differ from org to org, the way real ones do."""
    if index == 0:
        return {
            "pointsPerDollar": 1,
            "equityMultiplier": 1.5,
            "tiers": [
                {"id": "bronze", "name": "Bronze", "threshold": 0},
                {"id": "silver", "name": "Silver", "threshold": 500},
                {"id": "gold", "name": "Gold", "threshold": 1000},
                {"id": "platinum", "name": "Platinum", "threshold": 2500},
            ],
            "discrepancyThreshold": 0.1,
            "sourceOfTruth": "alpine_iq",
            "autoAdjust": False,
            "timezone": "America/Los_Angeles",
        }
    if index == 1:
        # Out of threshold order, custom ids, and no tier at all below 100 points.
        return {
            "pointsPerDollar": 2,
            "equityMultiplier": 2,
            "tiers": [
                {"id": "reserve", "name": "Reserve", "threshold": 6000},
                {"id": "sprout", "name": "Sprout", "threshold": 100},
                {"id": "bloom", "name": "Bloom", "threshold": 2400},
            ],
            "discrepancyThreshold": 0.05,
            "sourceOfTruth": "orders",
            "autoAdjust": True,
            "timezone": "America/Denver",
        }
    tier_sets: tuple[list[TierRecord], ...] = (
        [
            {"id": "member", "name": "Member", "threshold": 0},
            {"id": "insider", "name": "Insider", "threshold": 750},
            {"id": "elite", "name": "Elite", "threshold": 2000},
        ],
        [
            {"id": "Gold", "name": "Gold Club", "threshold": 1500},
            {"id": "Green", "name": "Green Club", "threshold": 0},
        ],
    )
    return {
        "pointsPerDollar": rng.choice((0.5, 1.5, 3)),
        "equityMultiplier": rng.choice((1, 1.25, 3)),
        "tiers": tier_sets[index % 2],
        "discrepancyThreshold": rng.choice((0.02, 0.15, 0.25)),
        "sourceOfTruth": ("alpine_iq", "orders")[index % 2],
        "autoAdjust": index % 3 == 0,
        "timezone": rng.choice(("America/Chicago", "America/New_York", "America/Phoenix")),
    }


def _break_records(
    rng: random.Random,
    customers: list[CustomerRecord],
    orders: list[OrderRecord],
    malformed_rate: float,
) -> None:
    """Apply the malformed rate: customers without an id, orders without a usable subtotal."""
    if malformed_rate <= 0:
        return
    for customer in rng.sample(customers, round(len(customers) * malformed_rate)):
        del customer["id_customer"]
    owned = [order for order in orders if order.get("id_customer")]
    for order in rng.sample(owned, round(len(owned) * malformed_rate)):
        if rng.random() < 0.5:
            order["subtotal"] = "n/a"
        else:
            del order["subtotal"]
