"""The dataset as the sandbox serves it: indexed once at start, so that a request is a slice.

Orders are kept sorted by ``date_created`` and already encoded as JSON, because a full history
is hundreds of thousands of them and a date-range page must cost a bisection, not a scan.
"""

from __future__ import annotations

import bisect
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import cast

from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.sandbox.data import validate_dataset
from loyalty_worker.sandbox.data.records import (
    AlleavesLogin,
    AlpineAccount,
    AlpineContact,
    CustomerRecord,
    Dataset,
    DatasetFields,
    OrderRecord,
    OrgFields,
    OrgRecord,
)


def _encode(value: OrderRecord) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _order_key(order: OrderRecord) -> tuple[str, int]:
    """(date_created, id_order) of an order fit to serve; ValueError says what is missing.

    Checked, not trusted: upserted orders arrive as JSON that only claims to be orders.
    """
    order_id = order.get("id_order")
    created = order.get("date_created")
    if not isinstance(order_id, int) or isinstance(order_id, bool):
        raise ValueError("every order needs an integer id_order")
    if not isinstance(created, str):
        raise ValueError(f"order {order_id} needs date_created")
    try:
        date.fromisoformat(created[:10])
    except ValueError:
        raise ValueError(f"order {order_id}: date_created must be ISO-8601 UTC") from None
    return created, order_id


class OrderBook:
    """One org's orders, sorted by creation time, for newest-first pages of a date range.

    ISO-8601 UTC timestamps sort as text, so a day's bounds are found by bisecting on the
    ``YYYY-MM-DD`` prefix: the date of an order is the UTC date of its ``date_created``.
    """

    def __init__(self, orders: Iterable[OrderRecord]) -> None:
        self._encoded: dict[int, bytes] = {}
        self._created: dict[int, str] = {}
        for order in orders:
            created, order_id = _order_key(order)
            self._encoded[order_id] = _encode(order)
            self._created[order_id] = created
        self._keys = sorted((created, order_id) for order_id, created in self._created.items())

    def __len__(self) -> int:
        return len(self._keys)

    def page(self, start: date, end: date, page: int, size: int) -> list[bytes]:
        """Page ``page`` (from 1) of the orders created from ``start`` to ``end``, newest first."""
        low = bisect.bisect_left(self._keys, (start.isoformat(),))
        high = bisect.bisect_left(self._keys, ((end + timedelta(days=1)).isoformat(),))
        newest = high - 1 - (page - 1) * size
        oldest = max(low, newest - size + 1)
        return [self._encoded[self._keys[i][1]] for i in range(newest, oldest - 1, -1)]

    def upsert(self, orders: Sequence[OrderRecord]) -> tuple[int, int]:
        """Add or replace orders by ``id_order``; (created, updated). All or none are applied."""
        keyed = [(_order_key(order), order) for order in orders]
        created = updated = 0
        for (key, order_id), order in keyed:
            previous = self._created.get(order_id)
            if previous is None:
                created += 1
            else:
                updated += 1
                del self._keys[bisect.bisect_left(self._keys, (previous, order_id))]
            bisect.insort(self._keys, (key, order_id))
            self._created[order_id] = key
            self._encoded[order_id] = _encode(order)
        return created, updated

    def newest_first(self) -> list[OrderRecord]:
        return [json.loads(self._encoded[order_id]) for _, order_id in reversed(self._keys)]


@dataclass(eq=False, slots=True)
class OrgData:
    """One org of the dataset, indexed for the routes that serve it."""

    position: int
    record: OrgFields
    orders: OrderBook
    contacts_by_phone: dict[str, AlpineContact]

    @classmethod
    def build(cls, position: int, org: OrgRecord) -> OrgData:
        # Every key but the orders, in the file's order: as_json puts the orders back last.
        record = cast("OrgFields", {key: value for key, value in org.items() if key != "orders"})
        by_phone = {}
        for contact in org["alpineContacts"]:
            phone = normalize_phone(contact.get("phone"))
            if phone is not None:
                by_phone[phone] = contact
        return cls(position, record, OrderBook(org["orders"]), by_phone)

    @property
    def org_id(self) -> str:
        return self.record["orgId"]

    @property
    def customers(self) -> list[CustomerRecord]:
        return self.record["customers"]

    def remove_customer(self, customer_id: int) -> int:
        """Drop a customer from the listing; how many rows went."""
        kept = [c for c in self.customers if c["id_customer"] != customer_id]
        removed = len(self.customers) - len(kept)
        self.customers[:] = kept
        return removed

    @property
    def contacts(self) -> list[AlpineContact]:
        return self.record["alpineContacts"]

    @property
    def alleaves(self) -> AlleavesLogin:
        return self.record["alleaves"]

    @property
    def alpine(self) -> AlpineAccount:
        return self.record["alpine"]

    def as_json(self) -> OrgRecord:
        """The org as the dataset format writes it, with its orders as they are now."""
        return {**self.record, "orders": self.orders.newest_first()}


def _same(given: object, expected: str) -> bool:
    """Constant-time comparison of a credential, whatever JSON type the client sent."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


class SandboxStore:
    """Every org of a dataset, found by id, Alleaves login or Alpine IQ key."""

    def __init__(self, dataset: Dataset) -> None:
        validate_dataset(dataset)
        # Every key but the orgs, in the file's order: as_json puts the orgs back last.
        self._top = cast("DatasetFields", {k: v for k, v in dataset.items() if k != "orgs"})
        self.orgs = [OrgData.build(position, org) for position, org in enumerate(dataset["orgs"])]
        self._by_id = {org.org_id: org for org in self.orgs}
        self._by_username = {org.alleaves["username"]: org for org in self.orgs}
        self._by_api_key = {org.alpine["apiKey"]: org for org in self.orgs}

    def org(self, org_id: str) -> OrgData | None:
        return self._by_id.get(org_id)

    def alleaves_login(self, username: object, password: object, pin: object) -> OrgData | None:
        """The org whose Alleaves username, password and PIN these are."""
        org = self._by_username.get(username) if isinstance(username, str) else None
        if org is None:
            return None
        password_ok = _same(password, org.alleaves["password"])
        pin_ok = _same(pin, org.alleaves["pin"])
        return org if password_ok and pin_ok else None

    def alpine_account(self, api_key: str | None) -> OrgData | None:
        """The org whose Alpine IQ account this API key opens."""
        return self._by_api_key.get(api_key) if api_key else None

    def as_json(self) -> Dataset:
        return {**self._top, "orgs": [org.as_json() for org in self.orgs]}
