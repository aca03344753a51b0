"""The small interfaces the services need; adapters implement them, fakes stand in for tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.profile import ProfileUpdate
from loyalty_worker.errors import MalformedRecord
from loyalty_worker.org_settings import OrgSettings


class CustomerSource(Protocol):
    """Alleaves: the org's customers and order history."""

    def iter_customers(self) -> Iterator[Customer | MalformedRecord]:
        """Every customer, page by page; a record that fails validation comes as MalformedRecord."""
        ...

    def iter_orders(self, start: date, end: date) -> Iterator[Order | MalformedRecord]:
        """Every order created between ``start`` and ``end`` (inclusive), flat."""
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


@dataclass(frozen=True, slots=True)
class Alert:
    """A message for people: a title, a short text, named sections of lines."""

    title: str
    summary: str
    sections: Sequence[tuple[str, Sequence[str]]] = field(default=())
    severity: str = "info"  # info | warning | error


class Notifier(Protocol):
    """Where alerts go (Discord)."""

    def send(self, alert: Alert) -> None:
        """Deliver one alert; raises TransientError/PermanentError when it cannot."""
        ...


class ProfileStore(Protocol):
    """Markitbot's Firestore: settings in, profiles and run summaries out."""

    def get_org_settings(self, org_id: str) -> OrgSettings:
        """The org's validated settings; UnknownOrg or SettingsInvalid otherwise."""
        ...

    def list_org_ids(self) -> list[str]:
        """Ids of every org whose loyalty settings are not disabled."""
        ...

    def get_profiles(self, org_id: str, customer_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Existing profiles by customer id; customers without a profile are left out."""
        ...

    def write_profiles(self, updates: Sequence[ProfileUpdate]) -> None:
        """Merge-write the updates (batched); never touches other fields."""
        ...

    def write_run_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        """Store a run's summary at ``loyalty_sync_runs/{runId}`` (merge)."""
        ...

    def get_run_summary(self, run_id: str) -> dict[str, Any] | None:
        """A run's summary document, or None."""
        ...
