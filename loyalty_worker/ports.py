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

    def get_profiles(
        self, org_id: str, customer_ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, dict[str, Any]]:
        """Existing profiles by customer id, only their top-level ``fields`` when given;
        customers without a profile are left out."""
        ...

    def write_profiles(self, updates: Sequence[ProfileUpdate]) -> None:
        """Merge-write the updates (batched); never touches other fields."""
        ...

    def write_run_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        """Store a run's summary at ``loyalty_sync_runs/{runId}`` (merge)."""
        ...

    def list_running_runs(self) -> list[dict[str, Any]]:
        """Run summaries still marked ``running`` (each with its ``runId``)."""
        ...

    def get_run_summary(self, run_id: str) -> dict[str, Any] | None:
        """A run's summary document, or None."""
        ...


class RunLedger(Protocol):
    """A batch run's shared state: lock, completion counting, results (Redis)."""

    def acquire_lock(self, org_id: str, run_id: str, ttl_s: int) -> str | None:
        """Take the org's run lock; the holder's run id when another run has it."""
        ...

    def release_lock(self, org_id: str, run_id: str) -> None:
        """Release the org's lock if ``run_id`` still holds it."""
        ...

    def start(self, run_id: str, org_id: str, **meta: str | int | float) -> None:
        """Open the run's record."""
        ...

    def update(self, run_id: str, **fields: str | int | float) -> None:
        """Set fields of the run's record."""
        ...

    def set_listed(self, run_id: str, listed: int) -> bool:
        """How many results complete the run; True when all are in already."""
        ...

    def record(self, run_id: str, results: Mapping[str, Mapping[str, Any]]) -> bool:
        """Store results by customer key; True for exactly the one caller that completes it."""
        ...

    def iter_results(self, run_id: str) -> Iterator[dict[str, Any]]:
        """Every stored result."""
        ...

    def meta(self, run_id: str) -> dict[str, str]:
        """The run's record."""
        ...

    def claim_summary(self, run_id: str, flag: str = "fired") -> bool:
        """True for exactly one caller (per ``flag``): the one that may write the summary."""
        ...

    def remember(self, results: Sequence[Mapping[str, Any]]) -> None:
        """Keep each customer's latest successful result (per org); a failure forgets it."""
        ...

    def recall(self, org_id: str, customer_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The latest kept result of each of ``customer_ids`` that has one."""
        ...

    def mark_success(self, org_id: str, started_at: float) -> None:
        """Remember when the org's last fully successful run started."""
        ...

    def finish(self, run_id: str, status: str, summary: Mapping[str, Any]) -> None:
        """Close the run with its summary."""
        ...
