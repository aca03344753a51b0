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
from loyalty_worker.services.results import SyncResult


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
        """Take the org's run lock for ``ttl_s`` (its holder refreshes it); the holder's run
        id when another run has it."""
        ...

    def beat(self, run_id: str, org_id: str, *, lock_ttl_s: int, planner: bool = False) -> bool:
        """A task of the run is alive: stamp ``lastBeatAt`` (``plannerBeatAt`` too for its
        planner) and keep the org's lock for it; False once the run is closed."""
        ...

    def claim_planner(self, run_id: str, *, stale_s: float) -> str:
        """``claimed`` for exactly one planner at a time (``planAttempts`` counts them,
        ``planStartedAt`` stamps the claim), ``busy`` while another planner beat within
        ``stale_s``, ``planned`` once its work is all sent (``dispatchedAt``), ``ended`` once
        it is closed."""
        ...

    def keep_chunk(self, run_id: str, key: str, payloads: Sequence[Mapping[str, Any]]) -> None:
        """Keep a chunk's payloads until its results are in (what a re-send sends)."""
        ...

    def drop_chunk(self, run_id: str, key: str) -> None:
        """Forget a chunk whose results are all in."""
        ...

    def kept_chunks(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every kept chunk's payloads by chunk key; none once the run is closed."""
        ...

    def has_results(self, run_id: str, keys: Sequence[str]) -> list[bool]:
        """For each customer key, whether the run holds its result."""
        ...

    def release_lock(self, org_id: str, run_id: str) -> None:
        """Release the org's lock if ``run_id`` still holds it."""
        ...

    def start(self, run_id: str, org_id: str, **meta: str | int | float) -> None:
        """Open the run's record afresh (whatever results a lost record held are dropped)."""
        ...

    def update(self, run_id: str, **fields: str | int | float) -> None:
        """Set fields of the run's record."""
        ...

    def set_listed(self, run_id: str, listed: int) -> bool:
        """How many results complete the run; True when all are in already."""
        ...

    def record(self, run_id: str, results: Mapping[str, SyncResult]) -> bool:
        """Store results by customer key (a key stored again replaces its result, counted once,
        except that a failure never replaces a success); True for exactly the one caller whose
        results complete the run; nothing once it is closed."""
        ...

    def iter_results(self, run_id: str) -> Iterator[SyncResult]:
        """Every stored result, equal to what was recorded."""
        ...

    def meta(self, run_id: str) -> dict[str, str]:
        """The run's record."""
        ...

    def claim_summary(self, run_id: str, flag: str = "fired") -> bool:
        """True for exactly one caller (per ``flag``): the one that may write the summary."""
        ...

    def remember(self, results: Sequence[SyncResult]) -> None:
        """Keep each customer's latest successful result with its inputs (per org); a failure
        forgets it, a dry run leaves it alone."""
        ...

    def recall(self, org_id: str, customer_ids: Sequence[int]) -> dict[int, SyncResult]:
        """The latest kept result of each of ``customer_ids`` that has one."""
        ...

    def mark_success(self, org_id: str, started_at: float) -> None:
        """Remember when the org's last fully successful run started."""
        ...

    def finish(self, run_id: str, status: str, summary: Mapping[str, Any]) -> None:
        """Close the run with its summary."""
        ...


# --- The API's side: queries, triggers and webhook bookkeeping ---------------------------------
# (Kept together at the end: the look-up, the export and the HTTP API read through these.)


class OrgStore(Protocol):
    """Firestore reads the API needs (``FirestoreProfileStore``; a fake in tests)."""

    def get_settings_document(self, org_id: str) -> dict[str, Any]:
        """``loyalty_settings/{orgId}`` as stored; UnknownOrg when there is none."""
        ...

    def find_profiles(
        self, org_id: str, field: str, value: str, *, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` profiles of the org whose ``field`` equals ``value``."""
        ...

    def get_run_summary(self, run_id: str) -> dict[str, Any] | None:
        """A run's summary document, or None."""
        ...


class PointsStore(Protocol):
    """What the points look-up reads from Markitbot's Firestore."""

    def get_org_settings(self, org_id: str) -> OrgSettings:
        """The org's validated settings; UnknownOrg or SettingsInvalid otherwise."""
        ...

    def find_profiles(
        self, org_id: str, field: str, value: str, *, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` profiles of the org whose ``field`` equals ``value``."""
        ...


class ProfileSource(Protocol):
    """Every profile of an org, streamed (the export)."""

    def iter_org_profiles(self, org_id: str) -> Iterator[dict[str, Any]]:
        """The org's profiles (``customers`` where ``orgId == org_id``), page by page."""
        ...


class Enqueuer(Protocol):
    """Where the API's triggers go: the workers' tasks, by name, through the broker."""

    def sync_org(self, org_id: str, *, run_id: str, dry_run: bool) -> None:
        """Enqueue an org's run under ``run_id``; TransientError when the broker is down."""
        ...

    def sync_customer(
        self, org_id: str, customer_id: int, *, dry_run: bool = False, delay_s: float = 0.0
    ) -> str:
        """Enqueue one customer's sync, to start after ``delay_s``; returns the task id."""
        ...


class RunRecords(Protocol):
    """A run's record as the API opens it before any worker has (the Redis run state)."""

    def start(self, run_id: str, org_id: str, **meta: str | int | float) -> None:
        """Open the run's record."""
        ...

    def update(self, run_id: str, **fields: str | int | float) -> None:
        """Set fields of the run's record."""
        ...


class WebhookSecrets(Protocol):
    """The secret each org's Alleaves webhooks are signed with."""

    def webhook_secret(self, org_id: str) -> bytes | None:
        """The org's secret, None when it has none; UnknownOrg for an unknown org."""
        ...


class WebhookLedger(Protocol):
    """Claims shared by every API process (Redis): seen deliveries, customers being synced."""

    def claim_delivery(self, org_id: str, signature: str, *, ttl_s: int) -> bool:
        """True the first time this signature is claimed within ``ttl_s``."""
        ...

    def release_delivery(self, org_id: str, signature: str) -> None:
        """Forget a claimed delivery, so that the sender's retry is accepted."""
        ...

    def claim_customer(self, org_id: str, customer_id: int, *, ttl_s: int) -> bool:
        """True when no one claimed this customer within ``ttl_s``."""
        ...

    def release_customer(self, org_id: str, customer_id: int) -> None:
        """Forget a customer's claim."""
        ...


class RunProgress(Protocol):
    """A run's live state as the run state (Redis) reports it."""

    @property
    def org_id(self) -> str | None: ...

    @property
    def status(self) -> str: ...

    @property
    def listed(self) -> int | None: ...

    @property
    def done(self) -> int: ...

    @property
    def failed(self) -> int: ...

    @property
    def summary(self) -> dict[str, Any] | None: ...

    @property
    def error(self) -> str | None: ...


class RunProgressSource(Protocol):
    """Live runs (Redis), which forget a run some time after it closed."""

    def progress(self, run_id: str) -> RunProgress:
        """The run's state; ``org_id`` None when the run is unknown (or forgotten)."""
        ...


class RunSummaries(Protocol):
    """Closed runs' summaries (``loyalty_sync_runs/{runId}``)."""

    def get_run_summary(self, run_id: str) -> dict[str, Any] | None:
        """A run's summary document, or None."""
        ...


class WebhookOrgs(WebhookSecrets, Protocol):
    """An org's webhook secret, and the Alleaves location its signed events must name."""

    def alleaves_location(self, org_id: str) -> str | None:
        """The org's Alleaves ``locationId`` as text, None when its settings name none."""
        ...


# --- Single-customer syncs: a cap per org -------------------------------------------------------


class SyncSlots(Protocol):
    """Slots for an org's single-customer syncs, shared by every worker (Redis): each such sync
    pages Alleaves on its own, so only so many of an org's run at once."""

    def acquire(self, org_id: str, holder: str, *, limit: int, ttl_s: float) -> bool:
        """Take a slot for ``holder`` when the org has fewer than ``limit`` held; a slot whose
        holder never released it frees itself after ``ttl_s``."""
        ...

    def release(self, org_id: str, holder: str) -> None:
        """Give ``holder``'s slot back (nothing when it holds none)."""
        ...


# --- A plan's order history, read in slices by several processes ----------------------------------


class OrderSlices(Protocol):
    """Slices of a run's order history (date ranges) shared by the processes that read them
    (Redis): a slice is claimed by one reader, kept alive while it reads, and its orders left
    for the planner that gathers them. Errors are transient (``TransientError``)."""

    def claim(self, run_id: str, key: str, holder: str, *, ttl_s: float) -> bool:
        """Take the slice for ``holder`` unless another holds it or its orders are in."""
        ...

    def renew(self, run_id: str, key: str, holder: str, *, ttl_s: float) -> bool:
        """Keep ``holder``'s claim for ``ttl_s`` more; False when it holds it no more."""
        ...

    def release(self, run_id: str, key: str, holder: str) -> None:
        """Give ``holder``'s claim back (nothing when it holds none)."""
        ...

    def claimed(self, run_id: str, key: str) -> bool:
        """Whether a reader holds the slice now."""
        ...

    def put(self, run_id: str, key: str, orders: bytes, *, ttl_s: float) -> None:
        """Leave the slice's orders (encoded) for the planner, for ``ttl_s`` at most."""
        ...

    def get(self, run_id: str, key: str) -> bytes | None:
        """The slice's orders, once a reader left them."""
        ...

    def forget(self, run_id: str, keys: Sequence[str]) -> None:
        """Drop the slices' orders and claims (gathered)."""
        ...


# --- A run's phones, kept beside its task messages ------------------------------------------------
# (Task messages sit in the broker and show in Flower: they carry masked phones only.)


class RunPhones(Protocol):
    """The phones a run's tasks must look up in Alpine IQ, kept out of their messages (Redis,
    for a bounded time)."""

    def keep(self, run_id: str, phones: Mapping[int, str]) -> None:
        """Keep these customers' 10-digit phones for the run's tasks and their retries."""
        ...

    def phones(self, run_id: str, customer_ids: Sequence[int]) -> dict[int, str]:
        """The kept phones of those of ``customer_ids`` that have one."""
        ...

    def forget(self, run_id: str) -> None:
        """Drop the run's phones: its summary is written, no task of it needs them."""


# --- The dashboard: counts, lists, review state and history -------------------------------------


class DashboardStore(Protocol):
    """What the dashboard reads from (and the review state it keeps in) Firestore.

    Counts and sums come from aggregation queries, lists from equality queries with a limit or
    from ordered queries read a page at a time (keyset cursors), so no page reads every
    profile of an org.
    """

    def list_org_ids(self) -> list[str]:
        """Ids of every org whose loyalty settings are not disabled."""
        ...

    def count_profiles(self, org_id: str, field: str | None = None, value: Any = None) -> int:
        """How many profiles of the org (whose ``field`` equals ``value``, when given)."""
        ...

    def sum_profiles(self, org_id: str, field: str) -> int:
        """The sum of a numeric field over the org's profiles."""
        ...

    def list_profiles(
        self, org_id: str, field: str, values: Sequence[Any], *, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` profiles of the org whose ``field`` is one of ``values``."""
        ...

    def page_profiles(
        self,
        org_id: str,
        equals: Mapping[str, Any],
        order: Sequence[tuple[str, bool]],
        *,
        after: Sequence[Any] | None = None,
        limit: int,
        fields: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` profiles of the org whose fields equal ``equals``, ordered by the
        ``order`` fields (each ``(field, descending)``; the last one unique within the org, such
        as ``alleavesCustomerId``), starting after the profile whose order fields hold
        ``after`` (a keyset cursor); only their top-level ``fields`` when given. A profile
        without one of the order fields is left out, as Firestore leaves it out of an ordered
        query."""
        ...

    def count_matching(self, org_id: str, equals: Mapping[str, Any]) -> int:
        """How many profiles of the org have every field of ``equals`` equal to its value."""
        ...

    def read_profiles(
        self, org_id: str, customer_ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, dict[str, Any]]:
        """The profiles of ``customer_ids`` that exist, by customer id (batched reads); only
        their top-level ``fields`` when given."""
        ...

    def get_profile(self, org_id: str, customer_id: int) -> dict[str, Any] | None:
        """One profile, or None."""
        ...

    def list_org_runs(self, org_id: str, *, limit: int) -> list[dict[str, Any]]:
        """The org's latest run summaries (each with its ``runId``), newest first."""
        ...

    def list_history(self, org_id: str, customer_id: int, *, limit: int) -> list[dict[str, Any]]:
        """A customer's loyalty history entries, newest first."""
        ...

    def get_reviews(
        self,
        org_id: str,
        *,
        state: str | None = None,
        customer_ids: Sequence[int] | None = None,
    ) -> dict[int, dict[str, Any]]:
        """The org's discrepancy reviews by customer id: those stored in ``state`` when given,
        of ``customer_ids`` when given (batched queries), else all of them."""
        ...

    def count_reviews(self, org_id: str, equals: Mapping[str, Any]) -> int:
        """How many of the org's reviews have every field of ``equals`` equal to its value."""
        ...

    def get_review(self, org_id: str, customer_id: int) -> dict[str, Any] | None:
        """One customer's review state, or None."""
        ...

    def write_review(
        self, org_id: str, customer_id: int, review: Mapping[str, Any], audit: Mapping[str, Any]
    ) -> None:
        """Store a customer's review state and append one audit entry, in one commit."""
        ...

    def list_audit(self, org_id: str, customer_id: int) -> list[dict[str, Any]]:
        """A customer's review audit entries, oldest first."""
        ...


class TaskOutcomes(Protocol):
    """What became of an enqueued task (the Celery result backend)."""

    def outcome(self, task_id: str) -> dict[str, Any] | None:
        """``{"state": ..., "result": ...}`` once the backend knows the task; None before."""
        ...


class RunTriggers(Protocol):
    """The dashboard's run buttons: the org's run in progress, or a new one enqueued."""

    def running_run(self, org_id: str) -> str | None:
        """The org's run that is queued or going, if any."""
        ...

    def start_run(self, org_id: str, run_id: str, *, dry_run: bool, since: str | None) -> None:
        """Record ``run_id`` as queued and enqueue it (``since``: ``"last"`` for an
        incremental run); TransientError when the broker is down."""
        ...


class RememberedResults(Protocol):
    """Each customer's latest kept sync result (the incremental memo, Redis): its phone is
    already masked, which is how the dashboard shows a phone Markitbot's profile lacks."""

    def recall(self, org_id: str, customer_ids: Sequence[int]) -> dict[int, SyncResult]:
        """The latest kept result of each of ``customer_ids`` that has one."""
        ...
