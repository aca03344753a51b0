"""The sandbox's dataset: a deterministic, realistic set of dispensaries, and its loader.

A dataset is one JSON document::

    {
      "asOf": "YYYY-MM-DD",           # every timestamp lies before this day (UTC)
      "orgs": [
        {
          "orgId": "org-1",
          "name": "…",                 # shown as the Alleaves company
          "settings": {…},             # loyalty_settings/{orgId} as LOYALTY_RULES.md names the
                                       # fields: pointsPerDollar, equityMultiplier, tiers
                                       # [{id, name, threshold}], discrepancyThreshold,
                                       # sourceOfTruth, autoAdjust, timezone
          "alleaves": {"username", "password", "pin", "locationId"},
          "alpine": {"uid", "apiKey"},
          "customers": […],            # Alleaves customers exactly as /customer/search returns them
          "orders": […],               # flat Alleaves orders exactly as /order returns them,
                                       # newest first
          "alpineContacts": [          # Alpine IQ loyalty accounts of this org
            {"contactID", "phone" (10 digits), "firstName", "lastName", "points", "tier",
             "lastVisit"}
          ],
          "profiles": [                # Markitbot's customer profiles (customers/{orgId}_{id})
            {"customerId" (the Alleaves id_customer), "equityStatus" (may be absent),
             "firstName", "lastName", "email", "marketingOptIn", "notes"}
          ]
        }
      ]
    }

``generate_dataset`` builds one from a seed: the same arguments give byte-identical JSON. The
data is dirty on purpose, in the ways EXTERNAL_APIS.md says the real systems are: phones in many
formats or missing, walk-in "guest" customers, statuses in any case, amounts as numbers or
strings, null or missing discounts, anonymous orders, placeholder e-mails, Alpine IQ balances that
agree, nearly agree or disagree with the orders. Each such case is dealt from a deck rather than
drawn independently, so even a small dataset holds every case at least once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from loyalty_worker.domain.models import LoyaltyRules, Order
from loyalty_worker.domain.points import calculate_points
from loyalty_worker.domain.tiers import assign_tier
from loyalty_worker.org_settings import OrgSettings

IN_STORE_EMAIL = "no-email@alleaves.local"
HISTORY_DAYS = 3 * 365
# Share of the orders that fall in the last RECENT_DAYS, so that recent windows are never empty.
RECENT_SHARE = 0.2
RECENT_DAYS = 45

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
PHONE_KINDS: Mapping[str, float] = {
    "paren": 0.2,  # (555) 123-4567
    "plus_dots": 0.1,  # +1 555.123.4567
    "digits10": 0.25,  # 5551234567
    "digits11": 0.08,  # 15551234567
    "dashes": 0.12,  # 555-123-4567
    "e164": 0.1,  # +15551234567
    "empty": 0.07,
    "null": 0.05,
    "invalid": 0.03,
}
EQUITY_KINDS: Mapping[str, float] = {"equity": 0.15, "not_equity": 0.75, "unset": 0.10}
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
DISCOUNT_KINDS: Mapping[str, float] = {"zero": 0.55, "amount": 0.25, "null": 0.12, "missing": 0.08}
AMOUNT_STYLES: Mapping[str, float] = {"number": 0.85, "string": 0.15}
CHANNELS: Mapping[str, float] = {"in_store": 0.5, "online": 0.5}
REFUNDS: Mapping[bool, float] = {False: 0.98, True: 0.02}
ANONYMOUS_KINDS: Mapping[str, float] = {"zero_id": 0.5, "missing_id": 0.5}

WALK_IN_SHARE = 0.03
NO_ORDERS_SHARE = 0.07
ANONYMOUS_ORDER_SHARE = 0.04
ORPHAN_CONTACT_SHARE = 0.02
MEAN_ORDERS = 5.9  # per customer with orders: about 5 per customer overall

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sophia", "Elijah", "Isabella", "Lucas",
    "Mia", "Levi", "Amelia", "Ezra", "Harper", "Asher", "Evelyn", "Leo", "Luna", "James",
    "Camila", "Luca", "Gianna", "Hudson", "Aria", "Kai", "Maya", "Jayden", "Nova", "Diego",
    "Zoe", "Malik", "Priya", "Hiro", "Fatima", "Tariq", "Sienna", "Dmitri", "Ngozi", "Marisol",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Garcia", "Brown", "Martinez", "Nguyen", "Lee", "Patel", "Kim",
    "Rodriguez", "Wilson", "Anderson", "Thomas", "Hernandez", "Moore", "Jackson", "Lopez",
    "Walker", "Young", "Allen", "O'Brien", "Okafor", "Reyes", "Chen", "Singh", "Cohen",
    "Schmidt", "Rossi", "Kowalski", "Haddad", "Yamamoto", "Da Silva", "St. John", "Murphy",
)  # fmt: skip
NOTES = ("", "", "", "Prefers pre-rolls", "Ask about the edible sale", "Medical card on file")
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
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
AREA_CODES = (
    ("213", "310", "323", "415", "510", "619", "707", "818", "916"),
    ("303", "720", "970", "719"),
    ("312", "404", "503", "602", "617", "702", "206", "512"),
)
ORG_NAMES = (
    "Green Leaf Collective",
    "Mile High Remedies",
    "Coastal Canna Co.",
    "Desert Bloom Dispensary",
    "Northern Lights Wellness",
)
INVALID_PHONES = ("12345", "555-1234", "0000")

_Case = TypeVar("_Case")


class DatasetError(ValueError):
    """A dataset file that is not a dataset: says which file and which part is wrong."""


def generate_dataset(
    customers: int,
    seed: int,
    *,
    orgs: int = 2,
    malformed_rate: float = 0.0,
    as_of: date | None = None,
) -> dict[str, Any]:
    """A dataset of ``orgs`` dispensaries: ``customers`` customers in the first, a tenth in others.

    Every timestamp lies within about three years before ``as_of`` (default: today, UTC, so that
    "recent" windows hold orders); with ``as_of`` fixed, the same arguments give the same JSON.
    ``malformed_rate`` is the share of customers that lose ``id_customer`` and of orders whose
    ``subtotal`` is broken.
    """
    if customers < 1:
        raise ValueError("customers must be >= 1")
    if orgs < 1:
        raise ValueError("orgs must be >= 1")
    if not 0.0 <= malformed_rate <= 1.0:
        raise ValueError("malformed_rate must be between 0 and 1")
    day = as_of or datetime.now(UTC).date()
    return {
        "asOf": day.isoformat(),
        "orgs": [
            _OrgGenerator(
                index=index,
                customers=customers if index == 0 else max(1, customers // 10),
                rng=random.Random(f"{seed}:{index}"),
                anchor=datetime(day.year, day.month, day.day, tzinfo=UTC),
                malformed_rate=malformed_rate,
            ).generate()
            for index in range(orgs)
        ],
    }


def dump_dataset(dataset: Mapping[str, Any]) -> str:
    """The dataset as compact JSON text (what ``loyalty-worker dataset`` writes)."""
    return json.dumps(dataset, separators=(",", ":"))


def load_dataset(path: str | Path) -> dict[str, Any]:
    """Read and check a dataset file; ``DatasetError`` names the file and the first problem."""
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"dataset {source}: cannot read JSON: {exc}") from None
    validate_dataset(data, source=str(source))
    return data  # type: ignore[no-any-return]


_ORG_KEYS: Mapping[str, type] = {
    "orgId": str,
    "settings": dict,
    "alleaves": dict,
    "alpine": dict,
    "customers": list,
    "orders": list,
    "alpineContacts": list,
    "profiles": list,
}
_CREDENTIAL_KEYS = {"alleaves": ("username", "password", "pin"), "alpine": ("uid", "apiKey")}


def validate_dataset(data: Any, *, source: str = "<dataset>") -> None:
    """Check the structure the sandbox relies on (not every record: dirty records are the point)."""

    def fail(where: str, problem: str) -> DatasetError:
        return DatasetError(f"dataset {source}: {where} {problem}")

    if not isinstance(data, dict) or not isinstance(data.get("orgs"), list):
        raise fail("top level", 'must be an object with an "orgs" list')
    if not data["orgs"]:
        raise fail("orgs", "is empty")
    seen: set[str] = set()
    for position, org in enumerate(data["orgs"]):
        where = f"orgs[{position}]"
        if not isinstance(org, dict):
            raise fail(where, "must be an object")
        for key, kind in _ORG_KEYS.items():
            if not isinstance(org.get(key), kind):
                raise fail(f"{where}.{key}", f"must be a {kind.__name__}")
        for block, keys in _CREDENTIAL_KEYS.items():
            for key in keys:
                if not isinstance(org[block].get(key), str) or not org[block][key]:
                    raise fail(f"{where}.{block}.{key}", "must be a non-empty string")
        if org["orgId"] in seen:
            raise fail(f"{where}.orgId", f"{org['orgId']!r} is not unique")
        seen.add(org["orgId"])
        for records in ("orders", "alpineContacts"):
            for number, record in enumerate(org[records]):
                if not isinstance(record, dict):
                    raise fail(f"{where}.{records}[{number}]", "must be an object")
        for number, order in enumerate(org["orders"]):
            if not isinstance(order.get("id_order"), int) or not isinstance(
                order.get("date_created"), str
            ):
                raise fail(
                    f"{where}.orders[{number}]", "needs an integer id_order and a date_created"
                )


def _deal(rng: random.Random, count: int, weights: Mapping[_Case, float]) -> list[_Case]:
    """``count`` cases in the given proportions, shuffled; each case at least once if room allows.

    Drawing each case independently would leave rare cases out of small datasets.
    """
    total = sum(weights.values())
    deck = [case for case, weight in weights.items() for _ in range(int(weight / total * count))]
    rare = [case for case, weight in weights.items() if int(weight / total * count) == 0]
    deck.extend(rare[: max(0, count - len(deck))])
    cases, shares = list(weights), list(weights.values())
    deck.extend(rng.choices(cases, weights=shares, k=count - len(deck)))
    rng.shuffle(deck)
    return deck


def _settings(index: int, rng: random.Random) -> dict[str, Any]:
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
    tier_sets = (
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


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def _timestamp(moment: datetime) -> str:
    """Alleaves style: ISO-8601 UTC with milliseconds and ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _money(rng: random.Random, low: float, high: float) -> Decimal:
    return Decimal(rng.randint(int(low * 100), int(high * 100))) * _CENT


class _OrgGenerator:
    """Builds one org of a dataset from its own random stream."""

    def __init__(
        self,
        *,
        index: int,
        customers: int,
        rng: random.Random,
        anchor: datetime,
        malformed_rate: float,
    ) -> None:
        self.index = index
        self.count = customers
        self.rng = rng
        self.anchor = anchor
        self.malformed_rate = malformed_rate
        self.org_id = f"org-{index + 1}"
        self.settings = _settings(index, rng)
        self.rules: LoyaltyRules = OrgSettings.parse(self.org_id, self.settings).rules()
        self.area_codes = AREA_CODES[min(index, len(AREA_CODES) - 1)]
        self.used_phones: set[str] = set()

    def generate(self) -> dict[str, Any]:
        rng = self.rng
        name = ORG_NAMES[self.index % len(ORG_NAMES)]
        slug = f"org{self.index + 1}"
        customers, profiles, phones = self._customers()
        orders, domain_orders, last_visits = self._orders(customers)
        equity = {p["customerId"] for p in profiles if p.get("equityStatus") is True}
        contacts = self._contacts(customers, phones, domain_orders, equity, last_visits)
        self._break_records(customers, orders)
        return {
            "orgId": self.org_id,
            "name": name if self.index < len(ORG_NAMES) else f"{name} #{self.index + 1}",
            "settings": self.settings,
            "alleaves": {
                "username": f"sync-{slug}@{slug}.example",
                "password": f"sbx-alv-pw-{_hex(rng, 16)}",
                "pin": f"{rng.randint(0, 999_999):06d}",
                "locationId": 100 + self.index,
            },
            "alpine": {"uid": str(rng.randint(1000, 99_999)), "apiKey": f"sbx-aiq-{_hex(rng, 24)}"},
            "customers": customers,
            "orders": orders,
            "alpineContacts": contacts,
            "profiles": profiles,
        }

    def _new_phone(self) -> str:
        """Ten digits, unique within the org."""
        while True:
            number = (
                self.rng.choice(self.area_codes)
                + str(self.rng.randint(200, 999))
                + f"{self.rng.randint(0, 9999):04d}"
            )
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def _format_phone(self, kind: str) -> tuple[str | None, str | None]:
        """(what Alleaves shows, the ten digits behind it or None)."""
        if kind == "empty":
            return "", None
        if kind == "null":
            return None, None
        if kind == "invalid":
            return self.rng.choice(INVALID_PHONES), None
        digits = self._new_phone()
        area, exchange, line = digits[:3], digits[3:6], digits[6:]
        shown = {
            "paren": f"({area}) {exchange}-{line}",
            "plus_dots": f"+1 {area}.{exchange}.{line}",
            "digits10": digits,
            "digits11": f"1{digits}",
            "dashes": f"{area}-{exchange}-{line}",
            "e164": f"+1{digits}",
        }[kind]
        return shown, digits

    def _customers(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[int, str]]:
        """Customers, their Markitbot profiles, and the ten-digit phone of those that have one."""
        rng, count = self.rng, self.count
        phone_kinds = _deal(rng, count, PHONE_KINDS)
        walk_ins = _deal(rng, count, {True: WALK_IN_SHARE, False: 1 - WALK_IN_SHARE})
        equity_kinds = _deal(rng, count, EQUITY_KINDS)
        next_id = (self.index + 1) * 1_000_000 + rng.randint(1000, 9000)
        customers: list[dict[str, Any]] = []
        profiles: list[dict[str, Any]] = []
        phones: dict[int, str] = {}
        for position in range(count):
            customer_id = next_id
            next_id += rng.randint(1, 3)
            if walk_ins[position]:
                first, last, email = "guest", "", ""
                shown, digits = self._format_phone("empty")
            else:
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                email = ""
                if rng.random() < 0.65:
                    local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
                    email = f"{local}{rng.randint(1, 999)}@{rng.choice(EMAIL_DOMAINS)}"
                shown, digits = self._format_phone(phone_kinds[position])
            if digits is not None:
                phones[customer_id] = digits
            born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 52))
            created = self.anchor - timedelta(seconds=rng.randint(0, HISTORY_DAYS * 86_400))
            customers.append(
                {
                    "id_customer": customer_id,
                    "name_first": first,
                    "name_last": last,
                    "full_name": f"{first} {last}".strip(),
                    "email": email,
                    "phone": shown,
                    "date_of_birth": born.isoformat() if rng.random() < 0.9 else None,
                    "date_created": _timestamp(created),
                    "loyalty_points": rng.choice((0, None)),
                    "alpine_user_code": None,
                }
            )
            profile: dict[str, Any] = {"customerId": customer_id}
            if equity_kinds[position] != "unset":
                profile["equityStatus"] = equity_kinds[position] == "equity"
            profile.update(
                firstName=first,
                lastName=last,
                email=email,
                marketingOptIn=rng.random() < 0.6,
                notes=rng.choice(NOTES),
            )
            profiles.append(profile)
        return customers, profiles, phones

    def _order_moment(self) -> datetime:
        """When an order was placed: mostly any time in the history, some of them recently."""
        days = RECENT_DAYS if self.rng.random() < RECENT_SHARE else HISTORY_DAYS
        seconds = self.rng.randint(1, days * 86_400)
        return self.anchor - timedelta(seconds=seconds, milliseconds=self.rng.randint(0, 999))

    def _orders(
        self, customers: Sequence[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[int, list[Order]], dict[int, str]]:
        """Flat orders newest first, each customer's orders for the rules, and last visits."""
        rng = self.rng
        has_orders = _deal(rng, len(customers), {False: NO_ORDERS_SHARE, True: 1 - NO_ORDERS_SHARE})
        owners: list[dict[str, Any] | None] = []
        for customer, active in zip(customers, has_orders, strict=True):
            if active:
                owners.extend([customer] * (1 + int(rng.expovariate(1 / (MEAN_ORDERS - 1)))))
        anonymous = max(1, round(len(owners) * ANONYMOUS_ORDER_SHARE))
        owners.extend([None] * anonymous)

        total = len(owners)
        statuses = _deal(rng, total, ORDER_STATUSES)
        discounts = _deal(rng, total, DISCOUNT_KINDS)
        styles = _deal(rng, total, AMOUNT_STYLES)
        channels = _deal(rng, total, CHANNELS)
        refunds = _deal(rng, total, REFUNDS)
        anonymous_kinds = iter(_deal(rng, anonymous, ANONYMOUS_KINDS))
        moments = sorted(((self._order_moment(), n) for n in range(total)), key=lambda m: m[0])
        tax_rate = Decimal("0.20") if self.index % 2 == 0 else Decimal("0.18")

        orders: list[dict[str, Any]] = []
        by_customer: dict[int, list[Order]] = {}
        last_visits: dict[int, str] = {}
        order_id = (self.index + 1) * 10_000_000 + rng.randint(10_000, 90_000)
        for number, (created, slot) in enumerate(moments):
            order_id += rng.randint(1, 4)
            owner = owners[slot]
            status = self._status_case(statuses[slot])
            order, subtotal, discount, refunded = self._order(
                order_id=order_id,
                number=number,
                created=created,
                status=status,
                channel=channels[slot],
                owner=owner,
                discount_kind=discounts[slot],
                as_string=styles[slot] == "string",
                refund=refunds[slot],
                tax_rate=tax_rate,
            )
            if owner is None:
                if next(anonymous_kinds) == "zero_id":
                    order["id_customer"] = 0
            else:
                customer_id = owner["id_customer"]
                order["id_customer"] = customer_id
                by_customer.setdefault(customer_id, []).append(
                    Order(order_id, customer_id, status, subtotal, discount, refunded)
                )
                if customer_id not in last_visits:
                    # Orders come oldest first: a customer record predates its first order.
                    signed_up = created - timedelta(minutes=rng.randint(1, 600))
                    owner["date_created"] = min(owner["date_created"], _timestamp(signed_up))
                last_visits[customer_id] = order["date_created"]
            orders.append(order)
        orders.reverse()
        return orders, by_customer, last_visits

    def _status_case(self, status: str) -> str:
        """Alleaves statuses arrive in any case: "completed", "COMPLETED", "Delivered"."""
        roll = self.rng.random()
        if roll < 0.5:
            return status
        return status.upper() if roll < 0.8 else status.title()

    def _order(
        self,
        *,
        order_id: int,
        number: int,
        created: datetime,
        status: str,
        channel: str,
        owner: Mapping[str, Any] | None,
        discount_kind: str,
        as_string: bool,
        refund: bool,
        tax_rate: Decimal,
    ) -> tuple[dict[str, Any], Decimal, Decimal, Decimal]:
        """One flat order (without ``id_customer``) and its subtotal, discount and refund."""
        rng = self.rng
        items = []
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
        discount = Decimal(0)
        if discount_kind == "amount":
            discount = (subtotal * Decimal(rng.choice((5, 10, 15, 20))) / 100).quantize(_CENT)
        refunded = (subtotal / 2).quantize(_CENT) if refund else Decimal(0)
        loyalty = rng.choice((Decimal(0),) * 8 + (Decimal(5), Decimal(10)))
        tax = ((subtotal - discount) * tax_rate).quantize(_CENT)
        total = max(subtotal - discount + tax - loyalty, Decimal(0))

        def amount(value: Decimal) -> float | str:
            return f"{value:.2f}" if as_string else float(value)

        updated = created + timedelta(seconds=rng.randint(0, 7200))
        if status.lower() in {"cancelled", "voided", "refunded", "returned"}:
            updated += timedelta(days=rng.randint(0, 5))
        updated = max(created, min(updated, self.anchor - timedelta(milliseconds=1)))

        email = IN_STORE_EMAIL
        if owner is not None and channel == "online" and owner["email"]:
            email = owner["email"]
        order: dict[str, Any] = {
            "id_order": order_id,
            "order_number": str(100_000 + number),
            "name_first": owner["name_first"] if owner else "",
            "name_last": owner["name_last"] if owner else "",
            "email": email,
            "phone": (owner["phone"] or "") if owner else "",
            "date_created": _timestamp(created),
            "date_updated": _timestamp(updated),
            "status": status,
            "subtotal": amount(subtotal),
            "tax": amount(tax),
            "discount": amount(discount) if discount_kind in ("zero", "amount") else None,
            "total": amount(total),
            "payment_method": rng.choice(PAYMENT_METHODS[channel]),
            "items": items,
            "loyalty": float(loyalty),
            "points_earned": None,
            "loyalties": [],
        }
        if discount_kind == "missing":
            del order["discount"]
        if refund:
            order["refunded_amount"] = amount(refunded)
        return order, subtotal, discount, refunded

    def _contacts(
        self,
        customers: Sequence[dict[str, Any]],
        phones: Mapping[int, str],
        orders: Mapping[int, Sequence[Order]],
        equity: set[int],
        last_visits: Mapping[int, str],
    ) -> list[dict[str, Any]]:
        """Alpine IQ accounts, balances set relative to the points the rules give."""
        rng = self.rng
        with_phone = [c for c in customers if c["id_customer"] in phones]
        relations = _deal(rng, len(with_phone), ALPINE_RELATIONS)
        account_holders = [
            c for c, relation in zip(with_phone, relations, strict=True) if relation != "no_account"
        ]
        orphans = max(1, round(len(customers) * ORPHAN_CONTACT_SHARE))
        styles = iter(_deal(rng, len(account_holders) + orphans, ALPINE_TIER_STYLES))
        shift: Mapping[str, Callable[[int], int]] = {
            "equal": lambda c: c,
            "within_tolerance": lambda c: c + c * 3 // 100,
            "alpine_higher": lambda c: c + c // 4 if c else 40,
            "calculated_higher": lambda c: c - c * 3 // 10,
        }
        relation_of = {c["id_customer"]: r for c, r in zip(with_phone, relations, strict=True)}
        contacts = []
        for customer in account_holders:
            customer_id = customer["id_customer"]
            calculated = calculate_points(
                orders.get(customer_id, ()), self.rules, equity=customer_id in equity
            ).points_from_orders
            contact = self._contact(
                phone=phones[customer_id],
                first=customer["name_first"],
                last=customer["name_last"],
                points=shift[relation_of[customer_id]](calculated),
                style=next(styles),
                last_visit=last_visits.get(customer_id),
            )
            customer["alpine_user_code"] = contact["contactID"]
            contacts.append(contact)
        for _ in range(orphans):
            # An Alpine IQ account whose phone no Alleaves customer has.
            contacts.append(
                self._contact(
                    phone=self._new_phone(),
                    first=rng.choice(FIRST_NAMES),
                    last=rng.choice(LAST_NAMES),
                    points=rng.randint(0, 1500),
                    style=next(styles),
                    last_visit=_timestamp(self._order_moment()),
                )
            )
        rng.shuffle(contacts)
        return contacts

    def _contact(
        self, *, phone: str, first: str, last: str, points: int, style: str, last_visit: str | None
    ) -> dict[str, Any]:
        tier = assign_tier(points, self.rules.tiers)
        if tier is not None and style == "other_case":
            tier = tier.upper() if tier != tier.upper() else tier.lower()
        elif style == "unknown_name":
            tier = "vip"
        elif style == "null":
            tier = None
        return {
            "contactID": _hex(self.rng, 16),
            "phone": phone,
            "firstName": first,
            "lastName": last,
            "points": points,
            "tier": tier,
            "lastVisit": last_visit,
        }

    def _break_records(self, customers: list[dict[str, Any]], orders: list[dict[str, Any]]) -> None:
        """Apply the malformed rate: customers without an id, orders without a usable subtotal."""
        if self.malformed_rate <= 0:
            return
        rng = self.rng
        for customer in rng.sample(customers, round(len(customers) * self.malformed_rate)):
            del customer["id_customer"]
        owned = [order for order in orders if order.get("id_customer")]
        for order in rng.sample(owned, round(len(owned) * self.malformed_rate)):
            if rng.random() < 0.5:
                order["subtotal"] = "n/a"
            else:
                del order["subtotal"]
