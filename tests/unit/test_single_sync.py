"""A customer synced on its own: found within a bounded scan of the listing, its orders read
from its own creation when it has no ledger, and at most so many of an org's at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import fakeredis
import pytest

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.adapters.sync_slots import RedisSyncSlots
from loyalty_worker.config import Settings
from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.results import SyncResultDocument
from loyalty_worker.errors import MalformedRecord, PermanentError, TransientError
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.run import SyncSlots, WorkPayload
from loyalty_worker.services.run.context import BatchOptions, OrgAdapters, RunPorts
from loyalty_worker.services.run.jobs import Job, sync_alone
from loyalty_worker.services.sync.inputs import AlpineAnswer, CustomerWork
from loyalty_worker.services.sync.listing import customer_pages
from loyalty_worker.services.sync.lone import LoneSearch, find_customer_work
from loyalty_worker.services.sync.paging import HistoryWindow, Paging
from loyalty_worker.services.sync.retries import Attempt, RetryLater
from tests.fakes import (
    FakeAlleaves,
    FakeAlpine,
    InMemoryProfileStore,
    InMemoryRunPhones,
    InMemorySyncSlots,
)

HISTORY_START = date(2018, 1, 1)
TODAY = date(2026, 12, 1)
JOINED = date(2026, 6, 15)


class RecordingAlleaves(FakeAlleaves):
    """``FakeAlleaves`` that remembers each customer page and each order window it was asked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.customer_pages: list[int] = []
        self.windows: list[tuple[date, date]] = []

    def fetch_customer_page(self, page: int) -> list[Customer | MalformedRecord]:
        self.customer_pages.append(page)
        return super().fetch_customer_page(page)

    def fetch_order_page(self, start: date, end: date, page: int) -> list[Order | MalformedRecord]:
        self.windows.append((start, end))
        return super().fetch_order_page(start, end, page)


def listing(count: int, *, created_on: date | None = JOINED) -> list[Customer | MalformedRecord]:
    return [Customer(n, f"555000{n:04d}", created_on=created_on) for n in range(1, count + 1)]


def lone_work(alleaves: FakeAlleaves, store: InMemoryProfileStore, customer_id: int) -> Any:
    search = LoneSearch(
        alleaves,
        store,
        history=HistoryWindow(HISTORY_START, TODAY, 30),
        overlap_days=14,
        paging=Paging(4, 3),
    )
    return find_customer_work("org-1", customer_id, search)


def test_a_customer_without_a_ledger_is_read_from_its_creation_not_from_2018() -> None:
    orders: list[tuple[date, Order | MalformedRecord]] = [
        (JOINED, Order(1, 7, "completed", Decimal(40))),
        (TODAY - timedelta(days=3), Order(2, 7, "completed", Decimal(60))),
        (TODAY - timedelta(days=3), Order(3, 8, "completed", Decimal(99))),
    ]
    alleaves = RecordingAlleaves(listing(10), orders, page_size=5)
    work = lone_work(alleaves, InMemoryProfileStore(), 7)
    assert sorted(o.order_id for o in work.orders) == [1, 2]
    first_day = min(start for start, _ in alleaves.windows)
    assert first_day == JOINED - timedelta(days=1)  # a day of margin, no earlier
    # about six months of 30-day windows, not eight years of them
    assert len({window for window in alleaves.windows}) <= 7


def test_a_customer_without_a_creation_date_still_reads_the_whole_history() -> None:
    alleaves = RecordingAlleaves(listing(3, created_on=None), page_size=5)
    lone_work(alleaves, InMemoryProfileStore(), 2)
    assert min(start for start, _ in alleaves.windows) == HISTORY_START


def test_an_unknown_customer_fails_within_the_page_bound() -> None:
    alleaves = RecordingAlleaves(listing(100), page_size=5)  # 20 full pages
    with pytest.raises(PermanentError, match="customer 999 not found within 3 pages"):
        lone_work(alleaves, InMemoryProfileStore(), 999)
    assert sorted(alleaves.customer_pages) == [1, 2, 3]  # none past the bound
    assert alleaves.windows == []  # no order read for a customer never found


def test_a_short_listing_says_not_found_and_id_zero_fails_before_any_call() -> None:
    alleaves = RecordingAlleaves(listing(4), page_size=5)
    with pytest.raises(PermanentError, match=r"customer 999 not found$"):
        lone_work(alleaves, InMemoryProfileStore(), 999)
    alleaves.customer_pages.clear()
    with pytest.raises(PermanentError, match="no customer id"):
        lone_work(alleaves, InMemoryProfileStore(), 0)
    assert alleaves.customer_pages == []


@pytest.mark.parametrize(("max_pages", "parallelism"), [(1, 4), (5, 4), (6, 2), (40, 8)])
def test_the_listing_stops_at_max_pages(max_pages: int, parallelism: int) -> None:
    alleaves = RecordingAlleaves(listing(500), page_size=5)  # 100 full pages
    pages = list(customer_pages(alleaves, Paging(parallelism, max_pages)))
    assert len(pages) == max_pages
    assert sorted(alleaves.customer_pages) == list(range(1, max_pages + 1))


# --- The per-org cap on concurrent single-customer syncs ----------------------------------------

OPTIONS = BatchOptions(
    history_start=date(2026, 1, 1),
    window_days=30,
    parallelism=2,
    lock_ttl_s=60,
    chunk_size=5,
    single_sync_concurrency=2,
    single_sync_slot_ttl_s=600,
)


@dataclass(frozen=True)
class OrgRun:
    settings: OrgSettings
    alleaves: FakeAlleaves
    alpine: FakeAlpine


class Worker:
    def __init__(self) -> None:
        self.store = InMemoryProfileStore()
        self.store.settings["org-1"] = {}
        self.alleaves = RecordingAlleaves([Customer(1, "5550000001")], page_size=5)
        self.alpine = FakeAlpine({"5550000001": AlpineProfile(12)})
        self.slots = InMemorySyncSlots()
        self.ports = RunPorts(
            self.org_for,
            self.store,
            RunTracker(fakeredis.FakeRedis()),
            OPTIONS,
            single_syncs=self.slots,
        )

    def org_for(self, org_id: str) -> OrgAdapters:
        return OrgRun(self.store.get_org_settings(org_id), self.alleaves, self.alpine)

    def sync(self, attempt: Attempt, payload: WorkPayload | None = None) -> SyncResultDocument:
        job = Job(self.ports, InMemoryRunPhones(), attempt, close_run=lambda run_id: None)
        return sync_alone(
            "org-1", 1, run_id=None, dry_run=False, payload=payload, job=job
        ).to_dict()


def test_over_the_cap_a_single_sync_waits_its_turn_without_calling_alleaves() -> None:
    worker = Worker()
    for holder in ("a", "b"):
        assert worker.slots.acquire("org-1", holder, limit=2, ttl_s=600)
    # retries used up for errors: a wait for a slot still retries
    with pytest.raises(RetryLater) as raised:
        worker.sync(Attempt(retries=9, max_retries=5))
    assert raised.value.error.reason == "single_sync_unavailable"
    assert 0 < raised.value.countdown <= 60
    assert worker.alleaves.customer_pages == [] and worker.alleaves.windows == []
    # another org is not held up
    assert worker.slots.acquire("org-2", "c", limit=2, ttl_s=600)
    worker.slots.release("org-1", "a")
    assert worker.sync(Attempt())["status"] == "synced"
    assert set(worker.slots.held["org-1"]) == {"b"}  # its own slot given back


def test_the_slot_is_given_back_when_the_sync_fails_or_retries() -> None:
    worker = Worker()
    worker.alleaves.error = PermanentError("alleaves", "gone")
    assert worker.sync(Attempt())["status"] == "failed"
    assert worker.slots.held["org-1"] == {}
    worker.alleaves.error = None
    worker.alpine.error = TransientError("alpine", "503")
    with pytest.raises(RetryLater):
        worker.sync(Attempt(max_retries=3))
    assert worker.slots.held["org-1"] == {}


def test_a_runs_customer_retried_alone_takes_no_slot() -> None:
    worker = Worker()
    for holder in ("a", "b"):
        worker.slots.acquire("org-1", holder, limit=2, ttl_s=600)
    work = CustomerWork(Customer(1, "5550000001"), alpine=AlpineAnswer(None))
    assert worker.sync(Attempt(), payload=work.to_payload())["status"] == "synced"
    assert worker.slots.refused == []


def test_the_single_sync_settings_and_their_defaults() -> None:
    settings = Settings()
    assert settings.single_sync_max_customer_pages == 200
    assert settings.single_sync_concurrency == 2
    assert settings.single_sync_slot_ttl_s == 900
    with pytest.raises(ValueError):
        Settings(single_sync_concurrency=0)


# --- One contract for ports.SyncSlots: the fake and the Redis adapter -------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _in_memory() -> tuple[SyncSlots, Callable[[float], None]]:
    clock = Clock()

    def advance(seconds: float) -> None:
        clock.now += seconds

    return InMemorySyncSlots(clock), advance


def _redis() -> tuple[SyncSlots, Callable[[float], None]]:
    return RedisSyncSlots(fakeredis.FakeRedis()), time.sleep


@pytest.fixture(params=[_in_memory, _redis], ids=["in_memory", "redis"])
def slots(request: pytest.FixtureRequest) -> Iterator[tuple[SyncSlots, Callable[[float], None]]]:
    yield request.param()


def test_slots_are_capped_per_org_and_freed_on_release(
    slots: tuple[SyncSlots, Callable[[float], None]],
) -> None:
    cap, _ = slots
    assert cap.acquire("org-1", "a", limit=2, ttl_s=60)
    assert cap.acquire("org-1", "b", limit=2, ttl_s=60)
    assert not cap.acquire("org-1", "c", limit=2, ttl_s=60)
    assert cap.acquire("org-1", "a", limit=2, ttl_s=60)  # a holder renews its own
    assert cap.acquire("org-2", "c", limit=2, ttl_s=60)
    cap.release("org-1", "b")
    cap.release("org-1", "never-held")
    assert cap.acquire("org-1", "c", limit=2, ttl_s=60)


def test_a_slot_never_released_frees_itself_after_its_ttl(
    slots: tuple[SyncSlots, Callable[[float], None]],
) -> None:
    cap, advance = slots
    # Redis's own clock runs here: half a second keeps the slot held across the next call
    # even on a loaded machine, and is still short enough to wait out.
    assert cap.acquire("org-1", "dead-worker", limit=1, ttl_s=0.5)
    assert not cap.acquire("org-1", "b", limit=1, ttl_s=0.5)
    advance(0.6)
    assert cap.acquire("org-1", "b", limit=1, ttl_s=60)


def test_the_batch_options_default_to_the_settings_defaults() -> None:
    settings = Settings()
    options = BatchOptions(HISTORY_START, 1, 1, 60, 1)
    assert options.customer_page_limit == settings.single_sync_max_customer_pages
    assert options.single_sync_concurrency == settings.single_sync_concurrency
    assert options.single_sync_slot_ttl_s == settings.single_sync_slot_ttl_s
