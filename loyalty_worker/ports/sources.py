"""Alleaves and Alpine IQ as the services read them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.errors import MalformedRecord


class CustomerSource(Protocol):
    """Alleaves: the org's customers and order history."""

    @property
    def page_size(self) -> int:
        """Records per page: a shorter page is the last one."""
        ...

    def fetch_customer_page(self, page: int) -> list[Customer | MalformedRecord]:
        """One page (from 1) of the customer listing."""
        ...

    def iter_customers(self) -> Iterator[Customer | MalformedRecord]:
        """Every customer, page by page; a record that fails validation comes as MalformedRecord."""
        ...

    def iter_orders(self, start: date, end: date) -> Iterator[Order | MalformedRecord]:
        """Every order created between ``start`` and ``end`` (inclusive), flat."""
        ...

    def company(self) -> str | None:
        """The business's name as Alleaves' login gave it (None before a login, or none given):
        what the dashboard calls the org."""
        ...

    def fetch_order_page(self, start: date, end: date, page: int) -> list[Order | MalformedRecord]:
        """One page (from 1) of the orders created between ``start`` and ``end``."""
        ...


@dataclass(frozen=True, slots=True)
class AlpineContact:
    """One row of Alpine IQ's contacts listing, phone already normalised (None: no phone)."""

    contact_id: str
    phone: str | None
    profile: AlpineProfile | None


class LoyaltyLookup(Protocol):
    """Alpine IQ: the external loyalty balance."""

    def lookup(self, phone: str) -> AlpineProfile | None:
        """The loyalty account of a 10-digit phone, or None when there is none."""
        ...

    def iter_contacts(self) -> Iterator[AlpineContact]:
        """Every contact of the account, page by page."""
        ...
