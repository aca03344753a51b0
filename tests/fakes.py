"""Working in-memory stand-ins for the ports, for fast unit tests.

Each fake keeps the semantics of the real adapter, and the contract tests under
``tests/contracts`` run the same checks over both, so a unit test that passes on a fake means
the same on the real thing.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from loyalty_worker.adapters.dashboard_documents import history_of, profile_of, run_of
from loyalty_worker.adapters.dashboard_store import order_page
from loyalty_worker.adapters.run_state import plan_fields, run_record
from loyalty_worker.adapters.task_results import task_outcome
from loyalty_worker.adapters.wire import AlpineLoyalty, parse_customer, parse_order
from loyalty_worker.domain.contact import ContactDocument, contact_id
from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.domain.profile import (
    HistoryEntry,
    ProfileDocument,
    ProfileUpdate,
    profile_id,
)
from loyalty_worker.domain.results import SyncResult
from loyalty_worker.domain.review import (
    AuditEntry,
    Review,
    ReviewChange,
    ReviewRefused,
    ReviewState,
)
from loyalty_worker.domain.run import (
    AlertOutcome,
    PlanReport,
    RunRecord,
    RunStatus,
    RunSummaryDocument,
)
from loyalty_worker.errors import MalformedRecord, SettingsInvalid, TransientError, UnknownOrg
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.contacts import ExportRecord
from loyalty_worker.ports.dashboard import AuditKey, KeyValue
from loyalty_worker.ports.notify import Alert
from loyalty_worker.ports.run import WorkPayload
from loyalty_worker.ports.sources import AlpineContact
from loyalty_worker.ports.triggers import TaskOutcome


class InMemoryProfileStore:
    """``ProfileStore`` over dicts, keyed by document id like the Firestore collections.

    ``settings`` (``loyalty_settings``), ``profiles`` (``customers``) and ``run_summaries``
    (``loyalty_sync_runs``) are public so tests can arrange and inspect documents directly.
    ``writes`` counts the profile documents written, to check batching and skipped writes.
    Documents are copied in and out, as a database would, so callers cannot alias stored state.
    """

    def __init__(self) -> None:
        self.settings: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        self.run_summaries: dict[str, dict[str, Any]] = {}
        # ``loyalty_contacts``: the contact parts of the updates (share it with an
        # ``InMemoryContactStore`` to read them through the contact port).
        self.contacts: dict[str, dict[str, Any]] = {}
        self.writes = 0

    def get_org_settings(self, org_id: str) -> OrgSettings:
        """The org's validated settings; UnknownOrg or SettingsInvalid otherwise."""
        document = self.settings.get(org_id)
        if document is None:
            raise UnknownOrg(org_id)
        return OrgSettings.parse(org_id, copy.deepcopy(document))

    def list_org_ids(self) -> list[str]:
        """Ids of every org whose loyalty settings are not disabled, sorted."""
        return sorted(
            org_id
            for org_id, document in self.settings.items()
            if document.get("disabled") is not True
        )

    def get_profiles(
        self, org_id: str, customer_ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, ProfileDocument]:
        """Existing profiles by customer id (only ``fields`` when given); missing ones left out."""
        found: dict[int, ProfileDocument] = {}
        for customer_id in customer_ids:
            document = self.profiles.get(profile_id(org_id, customer_id))
            if document is not None:
                if fields is not None:
                    document = {name: document[name] for name in fields if name in document}
                found[customer_id] = cast(ProfileDocument, copy.deepcopy(document))
        return found

    def write_profiles(self, updates: Sequence[ProfileUpdate]) -> None:
        """Set each update's top-level fields and remove its deletes; other fields stay."""
        for update in updates:
            if not update.fields and not update.deletes:
                continue
            document = self.profiles.setdefault(update.document_id, {})
            for name in update.deletes:
                document.pop(name, None)
            document.update(copy.deepcopy(dict(update.fields)))
            if update.contact is not None:
                contact = self.contacts.setdefault(update.document_id, {})
                contact.update(copy.deepcopy(dict(update.contact)))
            self.writes += 1

    def write_run_summary(self, run_id: str, summary: RunSummaryDocument) -> None:
        """Store a run's summary, replacing the top-level fields it names."""
        self.run_summaries.setdefault(run_id, {}).update(copy.deepcopy(dict(summary)))

    def list_running_runs(self) -> list[RunSummaryDocument]:
        """Summaries still marked ``running``."""
        return [
            cast(RunSummaryDocument, {**copy.deepcopy(summary), "runId": run_id})
            for run_id, summary in self.run_summaries.items()
            if summary.get("status") == "running"
        ]

    def get_run_summary(self, run_id: str) -> RunSummaryDocument | None:
        """A run's summary document, or None."""
        summary = self.run_summaries.get(run_id)
        return cast(RunSummaryDocument, copy.deepcopy(summary)) if summary is not None else None


class FakeAlpine:
    """``LoyaltyLookup`` over a dict of 10-digit phone → profile; counts look-ups.

    Its contacts listing is Alpine IQ's documented one: contacts without balances, so each
    customer with a phone needs a look-up. ``balances_in_listing`` models the sandbox's opt-in
    shortcut (``--alpine-balances-in-listing``).
    """

    def __init__(
        self,
        accounts: Mapping[str, AlpineProfile] | None = None,
        *,
        balances_in_listing: bool = False,
    ) -> None:
        self.accounts = dict(accounts or {})
        self.balances_in_listing = balances_in_listing
        self.lookups: list[str] = []
        self.error: Exception | None = None

    @classmethod
    def from_contacts(cls, contacts: Sequence[Mapping[str, Any]]) -> FakeAlpine:
        """Loaded with an Alpine IQ account's contacts as the sandbox's dataset holds them
        (``contactID``, ``phone``, ``points``, ``tier``, ``lastVisit``), read as the client
        reads a look-up answer."""
        accounts: dict[str, AlpineProfile] = {}
        for raw in contacts:
            phone = normalize_phone(raw.get("phone"))
            profile = AlpineLoyalty.model_validate(raw).to_profile()
            if phone is not None and profile is not None:
                accounts[phone] = profile
        return cls(accounts)

    def lookup(self, phone: str) -> AlpineProfile | None:
        self.lookups.append(phone)
        if self.error is not None:
            raise self.error
        return self.accounts.get(phone)

    def iter_contacts(self) -> Iterator[AlpineContact]:
        if self.error is not None:
            raise self.error
        for phone, profile in self.accounts.items():
            shown = profile if self.balances_in_listing else None
            yield AlpineContact(profile.contact_id or phone, phone, shown)


class FakeAlleaves:
    """``CustomerSource`` over lists, paging like Alleaves (orders filtered by creation day)."""

    @classmethod
    def from_rows(
        cls,
        customers: Sequence[Mapping[str, Any]],
        orders: Sequence[Mapping[str, Any]] = (),
        *,
        page_size: int = 100,
    ) -> FakeAlleaves:
        """Loaded with Alleaves' own rows (the sandbox's dataset), read as the client reads
        them: a customer that fails validation is named by its page and position."""
        return cls(
            [
                parse_customer(raw, page=i // page_size + 1, position=i % page_size)
                for i, raw in enumerate(customers)
            ],
            [
                (
                    date.fromisoformat(str(raw["date_created"])[:10]),
                    parse_order(raw, page=0, position=i),
                )
                for i, raw in enumerate(orders)
            ],
            page_size=page_size,
        )

    def __init__(
        self,
        customers: Sequence[Customer | MalformedRecord],
        orders: Sequence[tuple[date, Order | MalformedRecord]] = (),
        *,
        page_size: int = 100,
    ) -> None:
        self.customers = list(customers)
        self.orders = list(orders)
        self.page_size = page_size
        self.order_pages = 0
        self.error: Exception | None = None
        self.company_name: str | None = None

    def company(self) -> str | None:
        return self.company_name

    def iter_customers(self) -> Iterator[Customer | MalformedRecord]:
        page = 1
        while records := self.fetch_customer_page(page):
            yield from records
            page += 1

    def fetch_customer_page(self, page: int) -> list[Customer | MalformedRecord]:
        if self.error is not None:
            raise self.error
        return self.customers[(page - 1) * self.page_size : page * self.page_size]

    def fetch_order_page(self, start: date, end: date, page: int) -> list[Order | MalformedRecord]:
        self.order_pages += 1
        in_range = [record for day, record in self.orders if start <= day <= end]
        return in_range[(page - 1) * self.page_size : page * self.page_size]

    def iter_orders(self, start: date, end: date) -> Iterator[Order | MalformedRecord]:
        yield from (record for day, record in self.orders if start <= day <= end)


class RecordingNotifier:
    """``Notifier`` that keeps every alert; raises ``error`` instead when set."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.error: Exception | None = None

    def send(self, alert: Alert) -> None:
        if self.error is not None:
            raise self.error
        self.alerts.append(alert)


class InMemoryRunLedger:
    """``RunLedger`` over dicts, as ``RunTracker`` keeps it in Redis: the run's record holds
    text values, a closed run drops its results and ignores late ones, completion fires for
    exactly one caller (thread-safe, like the Lua script). Lock and memo expiry are not kept."""

    def __init__(self) -> None:
        self.locks: dict[str, str] = {}
        self.runs: dict[str, dict[str, str]] = {}
        self.results: dict[str, dict[str, SyncResult]] = {}
        self.memo: dict[str, dict[str, SyncResult]] = {}
        self.successes: dict[str, float] = {}
        self.chunks: dict[str, dict[str, str]] = {}
        self._mutex = threading.RLock()

    def acquire_lock(self, org_id: str, run_id: str, ttl_s: int) -> str | None:
        with self._mutex:
            holder = self.locks.setdefault(org_id, run_id)
            return None if holder == run_id else holder

    def beat(
        self, run_id: str, org_id: str, *, lock_ttl_s: int, planner: str | None = None
    ) -> bool:
        with self._mutex:
            meta = self.runs.get(run_id)
            if meta is None or "finishedAt" in meta:
                return False
            now = str(time.time())
            meta["lastBeatAt"] = now
            if planner and meta.get("planner") == planner:
                meta["plannerBeatAt"] = now
            self.locks.setdefault(org_id, run_id)
            return True

    def claim_planner(self, run_id: str, *, holder: str, stale_s: float) -> str:
        with self._mutex:
            meta = self.runs.setdefault(run_id, {})
            if "finishedAt" in meta:
                return "ended"
            if "dispatchedAt" in meta:
                return "planned"
            now = time.time()
            fresh = now - float(meta.get("plannerBeatAt", "-inf")) < stale_s
            if fresh and meta.get("planner") != holder:
                return "busy"
            meta["plannerBeatAt"] = meta["planStartedAt"] = str(now)
            meta["planner"] = holder
            meta["planAttempts"] = str(int(meta.get("planAttempts", "0")) + 1)
            return "claimed"

    def keep_chunk(self, run_id: str, key: str, payloads: Sequence[WorkPayload]) -> None:
        with self._mutex:
            self.chunks.setdefault(run_id, {})[key] = json.dumps(list(payloads))

    def drop_chunk(self, run_id: str, key: str) -> None:
        with self._mutex:
            self.chunks.get(run_id, {}).pop(key, None)

    def kept_chunks(self, run_id: str) -> dict[str, list[WorkPayload]]:
        with self._mutex:
            return {k: json.loads(v) for k, v in self.chunks.get(run_id, {}).items()}

    def kept_chunk(self, run_id: str, key: str) -> list[WorkPayload] | None:
        with self._mutex:
            kept = self.chunks.get(run_id, {}).get(key)
            return None if kept is None else cast(list[WorkPayload], json.loads(kept))

    def has_results(self, run_id: str, keys: Sequence[str]) -> list[bool]:
        with self._mutex:
            held = self.results.get(run_id, {})
            return [key in held for key in keys]

    def release_lock(self, org_id: str, run_id: str) -> None:
        with self._mutex:
            if self.locks.get(org_id) == run_id:
                del self.locks[org_id]

    def lock_holder(self, org_id: str) -> str | None:
        return self.locks.get(org_id)

    def start(self, run_id: str, org_id: str, **meta: str | int | float) -> None:
        fields = {"orgId": org_id, "status": "listing", "startedAt": time.time(), **meta}
        with self._mutex:
            self.runs.pop(run_id, None)
            self.results.pop(run_id, None)
            self.chunks.pop(run_id, None)
        self.update(run_id, **fields)

    def update(self, run_id: str, **fields: str | int | float) -> None:
        with self._mutex:
            self.runs.setdefault(run_id, {}).update({k: str(v) for k, v in fields.items()})

    def set_listed(self, run_id: str, listed: int) -> bool:
        self.update(run_id, listed=listed, status="syncing", listedAt=time.time())
        with self._mutex:
            return listed == 0 or self._fire_if_complete(run_id)

    def record(self, run_id: str, results: Mapping[str, SyncResult]) -> bool:
        with self._mutex:
            meta = self.runs.setdefault(run_id, {})
            if "finishedAt" in meta:
                return False  # closed: a late redelivery changes nothing
            held = self.results.setdefault(run_id, {})
            for key, result in results.items():
                if result.success or key not in held or not held[key].success:
                    held[key] = result  # a failure never replaces a success
            meta["lastResultAt"] = str(time.time())
            return self._fire_if_complete(run_id)

    def _fire_if_complete(self, run_id: str) -> bool:
        meta = self.runs.setdefault(run_id, {})
        listed = meta.get("listed")
        if listed is None or len(self.results.get(run_id, {})) < int(listed):
            return False
        return self._set_once(meta, "fired")

    @staticmethod
    def _set_once(meta: dict[str, str], flag: str) -> bool:
        if flag in meta:
            return False
        meta[flag] = "1"
        return True

    def iter_results(self, run_id: str) -> Iterator[SyncResult]:
        with self._mutex:
            results = list(self.results.get(run_id, {}).values())
        yield from results

    def run_record(self, run_id: str) -> RunRecord:
        with self._mutex:
            return run_record(run_id, dict(self.runs.get(run_id, {})))

    def note_plan(self, run_id: str, report: PlanReport) -> None:
        self.update(run_id, **plan_fields(report))

    def keep_alert(self, run_id: str, alert: AlertOutcome) -> None:
        self.update(run_id, alert=json.dumps(alert))

    def claim_summary(self, run_id: str, flag: str = "fired") -> bool:
        with self._mutex:
            return self._set_once(self.runs.setdefault(run_id, {}), flag)

    def remember(self, results: Sequence[SyncResult]) -> None:
        with self._mutex:
            for result in results:
                if result.dry_run:
                    continue
                kept = self.memo.setdefault(result.org_id, {})
                if result.success and result.inputs is not None:
                    kept[str(result.customer_id)] = result
                else:
                    kept.pop(str(result.customer_id), None)

    def recall(self, org_id: str, customer_ids: Sequence[int]) -> dict[int, SyncResult]:
        with self._mutex:
            kept = self.memo.get(org_id, {})
            return {cid: kept[str(cid)] for cid in customer_ids if str(cid) in kept}

    def mark_success(self, org_id: str, started_at: float) -> None:
        self.successes[org_id] = started_at

    def last_success(self, org_id: str) -> float | None:
        return self.successes.get(org_id)

    def finish(self, run_id: str, status: RunStatus, summary: RunSummaryDocument) -> None:
        self.update(
            run_id, status=status.value, summary=json.dumps(summary), finishedAt=time.time()
        )
        with self._mutex:
            self.results.pop(run_id, None)
            self.chunks.pop(run_id, None)


class QueryableProfileStore(InMemoryProfileStore):
    """``InMemoryProfileStore`` plus ``FirestoreProfileStore``'s queries (look-up, export).

    ``error``, when set, is raised by every query, as an unavailable Firestore would.
    """

    def __init__(self) -> None:
        super().__init__()
        self.error: Exception | None = None
        self.queries: list[tuple[str, str, str]] = []

    def get_settings_document(self, org_id: str) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        document = self.settings.get(org_id)
        if document is None:
            raise UnknownOrg(org_id)
        return copy.deepcopy(document)

    def find_profiles(
        self, org_id: str, field: str, value: str, *, limit: int
    ) -> list[ProfileDocument]:
        if self.error is not None:
            raise self.error
        self.queries.append((org_id, field, value))
        found = [
            cast(ProfileDocument, copy.deepcopy(document))
            for document in self.profiles.values()
            if document.get("orgId") == org_id and document.get(field) == value
        ]
        return found[:limit]

    def iter_org_profiles(self, org_id: str) -> Iterator[ProfileDocument]:
        if self.error is not None:
            raise self.error
        for document_id in sorted(self.profiles):
            document = self.profiles[document_id]
            if document.get("orgId") == org_id:
                yield cast(ProfileDocument, copy.deepcopy(document))


class RecordingEnqueuer:
    """``Enqueuer`` that keeps what it was asked to send; raises ``error`` instead when set."""

    def __init__(self) -> None:
        self.org_runs: list[dict[str, Any]] = []
        self.customer_syncs: list[dict[str, Any]] = []
        self.error: Exception | None = None

    def sync_org(
        self,
        org_id: str,
        *,
        run_id: str,
        dry_run: bool = False,
        since: str | None = None,
        expires_s: float | None = None,
        selection: str | None = None,
    ) -> None:
        if self.error is not None:
            raise self.error
        run: dict[str, Any] = {
            "org_id": org_id,
            "run_id": run_id,
            "dry_run": dry_run,
            "since": since,
            "expires_s": expires_s,
        }
        if selection is not None:
            run["selection"] = selection
        self.org_runs.append(run)

    def sync_customer(
        self, org_id: str, customer_id: int, *, dry_run: bool = False, delay_s: float = 0.0
    ) -> str:
        if self.error is not None:
            raise self.error
        task_id = f"task-{len(self.customer_syncs) + 1}"
        self.customer_syncs.append(
            {
                "org_id": org_id,
                "customer_id": customer_id,
                "dry_run": dry_run,
                "delay_s": delay_s,
                "task_id": task_id,
            }
        )
        return task_id


@dataclass(frozen=True)
class FakeOrg:
    """An org as the run's services reach it (``services.run.context.OrgAdapters``), over fakes."""

    settings: OrgSettings
    alleaves: FakeAlleaves
    alpine: FakeAlpine


# --- The API's ports: webhook claims and org secrets, on a manual clock --------------------------


class ManualClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class InMemoryWebhookLedger:
    """``WebhookLedger`` over a dict of expiry times, expiring by ``clock`` like Redis keys."""

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock
        self.claims: dict[tuple[str, str, str], float] = {}

    def claim_delivery(self, org_id: str, signature: str, *, ttl_s: int) -> bool:
        return self._claim(("delivery", org_id, signature), ttl_s)

    def release_delivery(self, org_id: str, signature: str) -> None:
        self.claims.pop(("delivery", org_id, signature), None)

    def claim_customer(self, org_id: str, customer_id: int, *, ttl_s: int) -> bool:
        return self._claim(("customer", org_id, str(customer_id)), ttl_s)

    def release_customer(self, org_id: str, customer_id: int) -> None:
        self.claims.pop(("customer", org_id, str(customer_id)), None)

    def held(self, kind: str) -> list[tuple[str, str]]:
        """The live claims of one kind (``delivery`` or ``customer``): (org, signature or id)."""
        now = self._clock()
        return sorted(
            (org, what) for (k, org, what), ends in self.claims.items() if k == kind and ends > now
        )

    def _claim(self, key: tuple[str, str, str], ttl_s: int) -> bool:
        now = self._clock()
        expires = self.claims.get(key)
        if expires is not None and expires > now:
            return False
        self.claims[key] = now + ttl_s
        return True


class StaticWebhookSecrets:
    """``WebhookOrgs`` from mappings; an org missing from ``secrets`` is unknown (UnknownOrg),
    one in ``invalid`` has invalid settings (SettingsInvalid naming that field)."""

    def __init__(
        self,
        secrets: Mapping[str, bytes | None],
        *,
        locations: Mapping[str, str] | None = None,
        invalid: Mapping[str, str] | None = None,
    ) -> None:
        self._secrets = dict(secrets)
        self._locations = dict(locations or {})
        self._invalid = dict(invalid or {})
        self.asked: list[str] = []

    def webhook_secret(self, org_id: str) -> bytes | None:
        self.asked.append(org_id)
        if org_id in self._invalid:
            raise SettingsInvalid(org_id, self._invalid[org_id], "invalid")
        if org_id not in self._secrets:
            raise UnknownOrg(org_id)
        return self._secrets[org_id]

    def alleaves_location(self, org_id: str) -> str | None:
        return self._locations.get(org_id)


# --- A run's kept phones (ports.RunPhones) -------------------------------------------------------


class InMemoryRunPhones:
    """Each run's kept phones in a dict; ``reads`` counts the look-ups a test may check."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[int, str]] = {}
        self.reads = 0

    def keep(self, run_id: str, phones: Mapping[int, str]) -> None:
        self.runs.setdefault(run_id, {}).update(phones)

    def phones(self, run_id: str, customer_ids: Sequence[int]) -> dict[int, str]:
        self.reads += 1
        kept = self.runs.get(run_id, {})
        return {cid: kept[cid] for cid in customer_ids if cid in kept}

    def forget(self, run_id: str) -> None:
        self.runs.pop(run_id, None)


# --- Single-customer sync slots (ports.SyncSlots), on a manual clock -----------------------------


class InMemorySyncSlots:
    """Per-org slots that expire by ``clock`` (seconds); records every refusal."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0) -> None:
        self._clock = clock
        self.held: dict[str, dict[str, float]] = {}
        self.refused: list[str] = []

    def acquire(self, org_id: str, holder: str, *, limit: int, ttl_s: float) -> bool:
        now = self._clock()
        slots = {h: until for h, until in self.held.get(org_id, {}).items() if until > now}
        if holder in slots or len(slots) < limit:
            slots[holder] = now + ttl_s
            self.held[org_id] = slots
            return True
        self.held[org_id] = slots
        self.refused.append(org_id)
        return False

    def release(self, org_id: str, holder: str) -> None:
        self.held.get(org_id, {}).pop(holder, None)


# --- A profile store that refuses what Firestore cannot encode -----------------------------------


INT64 = (-(2**63), 2**63 - 1)


def check_encodable(value: Any, where: str = "value") -> None:
    """Raise as the Firestore client's encoder would for a value it cannot store."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise ValueError(f"{where}: value out of range for int64: {value}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            return  # Firestore stores NaN and infinities as doubles
    elif isinstance(value, str):
        value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError
    elif isinstance(value, dict):
        for key, item in value.items():
            check_encodable(str(key), f"{where} key")
            check_encodable(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            check_encodable(item, where)


class EncodingProfileStore(InMemoryProfileStore):
    """``InMemoryProfileStore`` whose writes fail, all of a batch, on an unencodable value."""

    def write_profiles(self, updates: Sequence[ProfileUpdate]) -> None:
        for update in updates:
            for name, value in update.fields.items():
                check_encodable(value, f"{update.document_id}.{name}")
        super().write_profiles(updates)


# --- The dashboard's ports -----------------------------------------------------------------------


def _only(document: Mapping[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    """A copy of the document, only its top-level ``fields`` when given (a projection)."""
    kept = document if fields is None else {k: v for k, v in document.items() if k in fields}
    return copy.deepcopy(dict(kept))


class InMemoryDashboardStore:
    """``DashboardStore`` over a ``QueryableProfileStore``'s profiles and run summaries, plus
    reviews, their audit and the profiles' history kept here. Documents are read typed by the
    Firestore store's own readers."""

    def __init__(self, base: QueryableProfileStore) -> None:
        self.base = base
        self.reviews: dict[tuple[str, int], Review] = {}
        self.audit: dict[tuple[str, int], list[AuditEntry]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.error: Exception | None = None
        self.page_reads = 0  # ordered reads (page_profiles) made
        self.audit_limits: list[int] = []  # list_audit's limits, one per read
        self.runs_since: list[tuple[float, int]] = []  # list_org_runs_since's (since, limit)

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def _org(self, org_id: str) -> list[dict[str, Any]]:
        return [p for _, p in sorted(self.base.profiles.items()) if p.get("orgId") == org_id]

    def list_org_ids(self) -> list[str]:
        self._check()
        return self.base.list_org_ids()

    def count_profiles(self, org_id: str, equals: Mapping[str, str] | None = None) -> int:
        self._check()
        wanted = (equals or {}).items()
        return sum(1 for p in self._org(org_id) if all(p.get(f) == v for f, v in wanted))

    def sum_profiles(self, org_id: str, field: str) -> int:
        self._check()
        return sum(int(p.get(field) or 0) for p in self._org(org_id))

    def list_profiles(
        self, org_id: str, field: str, values: Sequence[str], *, limit: int
    ) -> list[ProfileDocument]:
        self._check()
        found = [profile_of(_only(p, None)) for p in self._org(org_id) if p.get(field) in values]
        return found[:limit]

    def page_profiles(
        self,
        org_id: str,
        equals: Mapping[str, str],
        order: Sequence[tuple[str, bool]],
        *,
        after: Sequence[KeyValue] | None = None,
        limit: int,
        fields: Sequence[str] | None = None,
    ) -> list[ProfileDocument]:
        self._check()
        self.page_reads += 1
        found = [
            p
            for p in self._org(org_id)
            if all(f in p and p[f] == v for f, v in equals.items())
            and all(f in p for f, _ in order)
        ]
        # ordered and paged as the store orders documents it cannot query in order
        paged = order_page(found, order, after=after, limit=limit)
        return [profile_of(_only(p, fields)) for p in paged]

    def read_profiles(
        self, org_id: str, customer_ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, ProfileDocument]:
        self._check()
        found = {cid: self.base.profiles.get(profile_id(org_id, cid)) for cid in customer_ids}
        return {
            cid: profile_of(_only(document, fields))
            for cid, document in found.items()
            if document is not None and document.get("orgId") == org_id
        }

    def get_profile(self, org_id: str, customer_id: int) -> ProfileDocument | None:
        self._check()
        document = self.base.profiles.get(profile_id(org_id, customer_id))
        if not document or document.get("orgId") != org_id:
            return None
        return profile_of(_only(document, None))

    def list_org_runs(self, org_id: str, *, limit: int) -> list[RunSummaryDocument]:
        self._check()
        runs = [
            run_of({**copy.deepcopy(s), "runId": run_id})
            for run_id, s in self.base.run_summaries.items()
            if s.get("orgId") == org_id
        ]
        runs.sort(key=lambda r: r.get("startedAt") or 0.0, reverse=True)
        return runs[:limit]

    def list_org_runs_since(
        self, org_id: str, since: float, *, limit: int, fields: Sequence[str] | None = None
    ) -> list[RunSummaryDocument]:
        self.runs_since.append((since, limit))
        runs = self.list_org_runs(org_id, limit=len(self.base.run_summaries))
        kept = [run for run in runs if (run.get("startedAt") or 0.0) >= since][:limit]
        if fields is None:
            return kept
        wanted = {*fields, "runId", "startedAt"}
        return [cast(RunSummaryDocument, {k: v for k, v in r.items() if k in wanted}) for r in kept]

    def list_history(self, org_id: str, customer_id: int, *, limit: int) -> list[HistoryEntry]:
        self._check()
        entries = self.history.get(profile_id(org_id, customer_id), [])
        return [history_of(copy.deepcopy(e)) for e in list(reversed(entries))[:limit]]

    def get_reviews(
        self,
        org_id: str,
        *,
        state: ReviewState | None = None,
        customer_ids: Sequence[int] | None = None,
    ) -> dict[int, Review]:
        self._check()
        wanted = None if customer_ids is None else set(customer_ids)
        return {
            cid: review
            for (org, cid), review in self.reviews.items()
            if org == org_id
            and (state is None or review.state is state)
            and (wanted is None or cid in wanted)
        }

    def count_reviews(
        self, org_id: str, *, state: ReviewState, loyalty_status: str, tier: str | None = None
    ) -> int:
        self._check()
        return sum(
            1
            for (org, _), r in self.reviews.items()
            if org == org_id
            and r.state is state
            and r.loyalty_status == loyalty_status
            and (tier is None or r.tier == tier)
        )

    def get_review(self, org_id: str, customer_id: int) -> Review | None:
        self._check()
        return self.reviews.get((org_id, customer_id))

    def write_review(self, org_id: str, customer_id: int, change: ReviewChange) -> None:
        self._check()
        entries = self.audit.setdefault((org_id, customer_id), [])
        if any(entry.id == change.audit.id for entry in entries):  # Firestore's create refuses
            raise ReviewRefused("the review changed meanwhile: reload and try again")
        self.reviews[(org_id, customer_id)] = change.review
        entries.append(change.audit)

    def list_audit(
        self,
        org_id: str,
        customer_id: int,
        *,
        limit: int,
        before: AuditKey | None = None,
        after: AuditKey | None = None,
        since: str | None = None,
    ) -> list[AuditEntry]:
        self._check()
        self.audit_limits.append(limit)
        entries = sorted(self.audit.get((org_id, customer_id), []), key=_audit_key)
        if since is not None:
            entries = [e for e in entries if e.at >= since]
        if after is not None:  # the ``limit`` oldest newer than ``after``, newest first
            return [e for e in entries if _audit_key(e) > after][:limit][::-1]
        entries.reverse()
        if before is not None:
            entries = [e for e in entries if _audit_key(e) < before]
        return entries[:limit]

    def get_audit(self, org_id: str, customer_id: int, entry_id: str) -> AuditEntry | None:
        self._check()
        entries = self.audit.get((org_id, customer_id), [])
        return next((e for e in entries if e.id == entry_id), None)

    def delete_audit_before(self, cutoff: str, *, limit: int) -> int:
        self._check()
        doomed = [(key, e) for key, entries in self.audit.items() for e in entries if e.at < cutoff]
        doomed = doomed[: min(limit, 500)]
        for key, entry in doomed:
            self.audit[key].remove(entry)
        return len(doomed)


def _audit_key(entry: AuditEntry) -> AuditKey:
    return (entry.at, entry.id)


class StaticTaskOutcomes:
    """``TaskOutcomes`` from a dict a test fills: ``{"state": ..., "result": ...}`` by task id,
    read as the Redis one reads Celery's."""

    def __init__(self) -> None:
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.owners: dict[str, str] = {}

    def outcome(self, task_id: str) -> TaskOutcome | None:
        found = self.outcomes.get(task_id)
        if found is None:
            return None
        return task_outcome(str(found.get("state", "PENDING")), copy.deepcopy(found.get("result")))

    def claim(self, task_id: str, org_id: str) -> None:
        self.owners[task_id] = org_id

    def owner(self, task_id: str) -> str | None:
        return self.owners.get(task_id)


class RecordingRunTriggers:
    """``RunTriggers`` over a dict: ``going`` names each org's run going; ``error``, when set,
    is raised instead of remembering a run."""

    def __init__(self) -> None:
        self.going: dict[str, str] = {}
        self.error: TransientError | None = None

    def running_run(self, org_id: str) -> str | None:
        return self.going.get(org_id)

    def remember_run(self, org_id: str, run_id: str) -> None:
        if self.error is not None:
            raise self.error
        self.going[org_id] = run_id


class InMemoryContactStore:
    """``ContactStore`` over a dict keyed by document id (``loyalty_contacts``), and a list of
    export records; pass ``InMemoryProfileStore.contacts`` to see the syncs' contact parts."""

    def __init__(self, documents: dict[str, dict[str, Any]] | None = None) -> None:
        self.documents: dict[str, dict[str, Any]] = {} if documents is None else documents
        self.exports: list[ExportRecord] = []

    def _org(self, org_id: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(d) for _, d in sorted(self.documents.items()) if d.get("orgId") == org_id
        ]

    def write_contacts(self, contacts: Sequence[ContactDocument]) -> None:
        for contact in contacts:
            key = contact_id(contact["orgId"], contact["customerId"])
            self.documents.setdefault(key, {}).update(copy.deepcopy(dict(contact)))

    def lacking_sync(self, org_id: str, customer_ids: Sequence[int]) -> list[int]:
        return [
            cid
            for cid in dict.fromkeys(customer_ids)
            if "loyaltyStatus" not in self.documents.get(contact_id(org_id, cid), {})
        ]

    def delete_unlisted(self, org_id: str, run_id: str) -> int:
        gone = [
            key
            for key, d in self.documents.items()
            if d.get("orgId") == org_id and "listedRun" in d and d["listedRun"] != run_id
        ]
        for key in gone:
            del self.documents[key]
        return len(gone)

    def get_contacts(self, org_id: str, customer_ids: Sequence[int]) -> dict[int, ContactDocument]:
        found: dict[int, ContactDocument] = {}
        for cid in customer_ids:
            document = self.documents.get(contact_id(org_id, cid))
            if document is not None and document.get("orgId") == org_id:
                found[cid] = cast(ContactDocument, copy.deepcopy(document))
        return found

    def find_by_prefix(
        self, org_id: str, field: str, prefix: str, *, limit: int
    ) -> list[ContactDocument]:
        found = [
            d
            for d in self._org(org_id)
            if isinstance(d.get(field), str) and d[field].startswith(prefix)
        ]
        found.sort(key=lambda d: str(d[field]))
        return cast(list[ContactDocument], found[:limit])

    def find_equal(
        self, org_id: str, field: str, value: str, *, limit: int
    ) -> list[ContactDocument]:
        found = [d for d in self._org(org_id) if d.get(field) == value]
        return cast(list[ContactDocument], found[:limit])

    def page_contacts(
        self,
        org_id: str,
        equals: Mapping[str, str],
        order: Sequence[tuple[str, bool]],
        *,
        after: Sequence[int] | None = None,
        limit: int,
    ) -> list[ContactDocument]:
        matching = [d for d in self._org(org_id) if all(d.get(f) == v for f, v in equals.items())]
        return cast(list[ContactDocument], order_page(matching, order, after=after, limit=limit))

    def count_contacts(self, org_id: str, equals: Mapping[str, str]) -> int:
        return sum(1 for d in self._org(org_id) if all(d.get(f) == v for f, v in equals.items()))

    def record_export(self, record: ExportRecord) -> None:
        self.exports.append(copy.deepcopy(record))

    def latest_exports(
        self, org_id: str, *, limit: int, since: datetime | None = None
    ) -> list[ExportRecord]:
        mine = [
            r for r in self.exports if r["orgId"] == org_id and (since is None or r["at"] >= since)
        ]
        mine.sort(key=lambda r: r["at"], reverse=True)
        return mine[:limit]

    def delete_exports_before(self, cutoff: datetime, *, limit: int) -> int:
        doomed = [r for r in self.exports if r["at"] < cutoff][: min(limit, 500)]
        self.exports = [r for r in self.exports if all(r is not d for d in doomed)]
        return len(doomed)
