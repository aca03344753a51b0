"""Alleaves customers and Markitbot's profiles of them, phones in every form Alleaves shows.

Walk-in "guest" customers, missing e-mails and phones that are empty, null or invalid are dealt
from the deck, as are the profiles' equity statuses (some of them unset).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from loyalty_worker.sandbox.data.deck import HISTORY_DAYS, Draws, deal, timestamp
from loyalty_worker.sandbox.data.records import CustomerRecord, ProfileFields, ProfileRecord

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
WALK_IN_SHARE = 0.03

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
AREA_CODES = (
    ("213", "310", "323", "415", "510", "619", "707", "818", "916"),
    ("303", "720", "970", "719"),
    ("312", "404", "503", "602", "617", "702", "206", "512"),
)
INVALID_PHONES = ("12345", "555-1234", "0000")


class PhoneBook:
    """An org's ten-digit phones, unique within the org, and how Alleaves shows each of them."""

    def __init__(self, rng: random.Random, org_index: int) -> None:
        self.rng = rng
        self.area_codes = AREA_CODES[min(org_index, len(AREA_CODES) - 1)]
        self.used: set[str] = set()

    def new(self) -> str:
        """Ten digits, unique within the org."""
        while True:
            number = (
                self.rng.choice(self.area_codes)
                + str(self.rng.randint(200, 999))
                + f"{self.rng.randint(0, 9999):04d}"
            )
            if number not in self.used:
                self.used.add(number)
                return number

    def shown(self, kind: str) -> tuple[str | None, str | None]:
        """(what Alleaves shows, the ten digits behind it or None)."""
        if kind == "empty":
            return "", None
        if kind == "null":
            return None, None
        if kind == "invalid":
            return self.rng.choice(INVALID_PHONES), None
        digits = self.new()
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


@dataclass(frozen=True, slots=True)
class People:
    """An org's customers, their profiles, and the ten digits of each customer that has a phone."""

    customers: list[CustomerRecord]
    profiles: list[ProfileRecord]
    phones: dict[int, str]

    def equity(self) -> set[int]:
        """Ids of the customers whose profile says they are equity customers."""
        return {p["customerId"] for p in self.profiles if p.get("equityStatus") is True}


def generate_customers(draws: Draws, org_index: int, count: int, phone_book: PhoneBook) -> People:
    """``count`` customers as /customer/search returns them, and Markitbot's profile of each."""
    rng = draws.rng
    phone_kinds = deal(rng, count, PHONE_KINDS)
    walk_ins = deal(rng, count, {True: WALK_IN_SHARE, False: 1 - WALK_IN_SHARE})
    equity_kinds = deal(rng, count, EQUITY_KINDS)
    next_id = (org_index + 1) * 1_000_000 + rng.randint(1000, 9000)
    customers: list[CustomerRecord] = []
    profiles: list[ProfileRecord] = []
    phones: dict[int, str] = {}
    for position in range(count):
        customer_id = next_id
        next_id += rng.randint(1, 3)
        if walk_ins[position]:
            first, last, email = "guest", "", ""
            shown, digits = phone_book.shown("empty")
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = ""
            if rng.random() < 0.65:
                local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
                email = f"{local}{rng.randint(1, 999)}@{rng.choice(EMAIL_DOMAINS)}"
            shown, digits = phone_book.shown(phone_kinds[position])
        if digits is not None:
            phones[customer_id] = digits
        born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 52))
        created = draws.anchor - timedelta(seconds=rng.randint(0, HISTORY_DAYS * 86_400))
        customers.append(
            {
                "id_customer": customer_id,
                "name_first": first,
                "name_last": last,
                "full_name": f"{first} {last}".strip(),
                "email": email,
                "phone": shown,
                "date_of_birth": born.isoformat() if rng.random() < 0.9 else None,
                "date_created": timestamp(created),
                "loyalty_points": rng.choice((0, None)),
                "alpine_user_code": None,
            }
        )
        kind = equity_kinds[position]
        equity: ProfileFields = {} if kind == "unset" else {"equityStatus": kind == "equity"}
        profiles.append(
            {
                "customerId": customer_id,
                **equity,
                "firstName": first,
                "lastName": last,
                "email": email,
                "marketingOptIn": rng.random() < 0.6,
                "notes": rng.choice(NOTES),
            }
        )
    return People(customers, profiles, phones)
