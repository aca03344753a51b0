"""A batch from trigger to summary over fakes: counts add up, one alert, one run per org."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import fakeredis
import pytest

from loyalty_worker.adapters.order_slices import RedisOrderSlices
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.domain.results import SyncResult, SyncStatus
from loyalty_worker.domain.run import RunStatus, RunSummaryDocument
from loyalty_worker.domain.selection import CustomerSelection
from loyalty_worker.errors import AuthError, MalformedRecord, TransientError
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.run import OrderSlices
from loyalty_worker.services.run.batch import start_batch
from loyalty_worker.services.run.closing import record_results, summarize_batch
from loyalty_worker.services.run.context import (
    BatchOptions,
    BatchStart,
    RunDispatch,
    RunPorts,
    RunRequest,
)
from loyalty_worker.services.run.history_slices import HistorySlice
from loyalty_worker.services.run.listings import Listing, list_customers
from loyalty_worker.services.run.opening import LOST_FROM_REDIS
from loyalty_worker.services.run.planning import read_run_orders
from loyalty_worker.services.run.profile_reads import (
    PROFILE_CHUNK,
    PROFILE_READ_AHEAD,
    PROFILE_READ_ATTEMPTS,
    ProfileFeed,
    read_profiles,
)
from loyalty_worker.services.sync.customer import sync_chunk
from loyalty_worker.services.sync.inputs import AlpineAnswer, CustomerWork
from loyalty_worker.services.sync.paging import Paging
from tests.fakes import FakeAlleaves, FakeAlpine, InMemoryProfileStore, RecordingNotifier

OPTIONS = BatchOptions(
    history_start=date(2026, 1, 1),
    window_days=10,
    parallelism=3,
    lock_ttl_s=60,
    chunk_size=5,
)
TODAY = date(2026, 3, 1)


@dataclass(frozen=True)
class OrgRun:
    settings: OrgSettings
    alleaves: FakeAlleaves
    alpine: FakeAlpine


class Harness:
    def __init__(self, alleaves: FakeAlleaves, alpine: FakeAlpine) -> None:
        self.alleaves = alleaves
        self.alpine = alpine
        self.store = InMemoryProfileStore()
        self.store.settings["org-1"] = {"discrepancyThreshold": 0.1}
        self.ledger = RunTracker(fakeredis.FakeRedis())
        self.notifier = RecordingNotifier()
        self.queue: list[list[CustomerWork]] = []
        self.summaries: list[RunSummaryDocument] = []

    def start(
        self,
        run_id: str = "r1",
        sleep: Callable[[float], None] = lambda _: None,
        since: date | None = None,
        options: BatchOptions = OPTIONS,
        read_orders: Callable[[HistorySlice], None] | None = None,
        slices: OrderSlices | None = None,
        lookups: Executor | None = None,
        selection: CustomerSelection | None = None,
    ) -> BatchStart:
        org = OrgRun(self.store.get_org_settings("org-1"), self.alleaves, self.alpine)
        ports = RunPorts(
            org_for=lambda _: org,
            store=self.store,
            ledger=self.ledger,
            options=options,
            lookups=lookups,
            slices=slices,
        )
        dispatch = RunDispatch(
            enqueue=lambda works: self.enqueue(works),
            summarize=lambda status: self.summaries.append(self.summarize(run_id, status)),
            read_orders=read_orders,
        )
        # Each start is another planner (a copy of the message, sent again): its own token.
        request = RunRequest(
            "org-1", run_id, since=since, planner=uuid.uuid4().hex, selection=selection
        )
        return start_batch(request, org, ports, dispatch, today=TODAY, sleep=sleep)

    def enqueue(self, works: list[CustomerWork]) -> None:
        self.queue.append(works)

    def summarize(self, run_id: str, status: str = "completed") -> RunSummaryDocument:
        return summarize_batch(
            run_id=run_id,
            ledger=self.ledger,
            store=self.store,
            notifier=self.notifier,
            status=RunStatus(status),
        )

    def drain(self, run_id: str = "r1") -> None:
        while self.queue:
            self.drain_one(run_id)

    def drain_one(self, run_id: str = "r1") -> None:
        org = self.store.get_org_settings("org-1")
        outcome = sync_chunk(
            org, self.queue.pop(0), store=self.store, alpine=self.alpine, run_id=run_id
        )
        assert outcome.retry == []
        if record_results(self.ledger, run_id, outcome.results):
            self.summaries.append(self.summarize(run_id))


def orders_for(cid: int, *amounts: str) -> list[tuple[date, Order | MalformedRecord]]:
    return [
        (date(2026, 1 + i % 2, 1 + i), Order(cid * 100 + i, cid, "completed", Decimal(a)))
        for i, a in enumerate(amounts)
    ]


@pytest.fixture
def harness() -> Harness:
    customers: list[Customer | MalformedRecord] = [
        Customer(i, f"555000{i:04d}") for i in range(1, 13)
    ]
    customers.append(MalformedRecord("alleaves", "customer", "page 1 #13", "no id_customer"))
    orders = [o for i in range(1, 13) for o in orders_for(i, "10", "20.5", "7")]
    orders.append(
        (date(2026, 2, 2), MalformedRecord("alleaves", "order", "9999", "bad", customer_id=3))
    )
    accounts = {f"555000{i:04d}": AlpineProfile(37 if i % 2 else 80) for i in range(1, 9)}
    return Harness(FakeAlleaves(customers, orders, page_size=5), FakeAlpine(accounts))


@pytest.fixture
def shortcut(harness: Harness) -> Harness:
    """The harness with balances in Alpine IQ's contacts listing: the sandbox's opt-in shortcut
    (``--alpine-balances-in-listing``), not the documented API. Only what the plan can settle
    from a listing's balances is tested on it."""
    harness.alpine.balances_in_listing = True
    return harness


def test_look_ups_made_while_the_history_is_read_go_with_the_work(harness: Harness) -> None:
    # The history's pages wait until every contact's phone has been looked up: the look-ups
    # can only have been made during the plan, beside the history.
    all_looked_up = threading.Event()
    lookup, fetch = harness.alpine.lookup, harness.alleaves.fetch_order_page

    def counting_lookup(phone: str) -> AlpineProfile | None:
        answer = lookup(phone)
        if len(harness.alpine.lookups) == 8:
            all_looked_up.set()
        return answer

    def waiting_fetch(start: date, end: date, page: int) -> list[Order | MalformedRecord]:
        assert all_looked_up.wait(10), "the look-ups did not start before the history ended"
        return fetch(start, end, page)

    harness.alpine.lookup = counting_lookup  # type: ignore[method-assign]
    harness.alleaves.fetch_order_page = waiting_fetch  # type: ignore[method-assign]
    with ThreadPoolExecutor(max_workers=4) as pool:
        harness.start(lookups=pool)

    works = {w.customer.customer_id: w for chunk in harness.queue for w in chunk}
    assert sorted(harness.alpine.lookups) == [f"555000{i:04d}" for i in range(1, 9)]
    for cid in range(1, 9):  # each contact's answer travels with its customer's work
        assert works[cid].alpine == AlpineAnswer(AlpineProfile(37 if cid % 2 else 80)), cid
        assert works[cid].phone_to_look_up() is None
    harness.drain()
    assert len(harness.alpine.lookups) == 8  # no chunk looked anyone up again
    (summary,) = harness.summaries
    assert summary["reconciliation"] == {"matched": 3, "alpine_higher": 4, "no_alpine_account": 4}


def test_without_a_look_up_pool_the_chunks_look_the_phones_up(harness: Harness) -> None:
    harness.start()
    assert harness.alpine.lookups == []
    works = [w for chunk in harness.queue for w in chunk if w.customer.customer_id <= 8]
    assert [w.phone_to_look_up() for w in works] == [f"555000{i:04d}" for i in range(1, 9)]
    harness.drain()
    # Customer 3 has a malformed order: it fails before anyone looks its phone up.
    assert sorted(harness.alpine.lookups) == [f"555000{i:04d}" for i in (1, 2, 4, 5, 6, 7, 8)]


def test_the_run_records_the_company_alleaves_names(harness: Harness) -> None:
    harness.start()
    harness.drain()
    assert "orgName" not in harness.store.run_summaries["r1"]  # the fake's login named none
    harness.alleaves.company_name = "Green Leaf"
    harness.start(run_id="r2")
    assert harness.store.run_summaries["r2"]["orgName"] == "Green Leaf"


def test_counts_add_up_and_one_alert_is_sent(harness: Harness) -> None:
    started = harness.start()
    assert (started.started, started.listed) == (True, 13)
    assert [len(chunk) for chunk in harness.queue] == [5, 5, 2]
    assert harness.alleaves.order_pages > 6  # several windows were read
    harness.drain()
    (summary,) = harness.summaries
    assert summary["listed"] == 13
    assert summary["synced"] + summary["unchanged"] + summary["failed"] == 13
    assert summary["failedByReason"] == {"malformed": 2}
    # 37 points each (10 + 20 + 7); Alpine 37 (matched) for odd, 80 (alpine_higher) for even
    assert summary["reconciliation"] == {
        "matched": 3,
        "alpine_higher": 4,
        "no_alpine_account": 4,
    }
    # the rules' action per status: a discrepancy alerts (autoAdjust off), the rest need none
    assert summary["actions"] == {"none": 7, "alert_admin": 4}
    assert summary["ordersProcessed"] == 33
    assert len(harness.notifier.alerts) == 1
    assert "13 listed" in harness.notifier.alerts[0].summary
    assert harness.store.run_summaries["r1"]["alert"] == {"sent": True}
    assert harness.ledger.lock_holder("org-1") is None


def test_a_plan_whose_history_other_workers_read_in_slices_adds_up_the_same(
    harness: Harness,
) -> None:
    whole = Harness(harness.alleaves, harness.alpine)
    whole.start()
    whole.drain()
    (expected,) = whole.summaries
    pages_alone = harness.alleaves.order_pages

    options = dataclasses.replace(OPTIONS, plan_slices=3)
    slices = RedisOrderSlices(fakeredis.FakeRedis())
    org = OrgRun(harness.store.get_org_settings("org-1"), harness.alleaves, harness.alpine)
    ports = RunPorts(
        org_for=lambda _: org,
        store=harness.store,
        ledger=harness.ledger,
        options=options,
        slices=slices,
    )
    workers: list[threading.Thread] = []
    read: list[bool] = []

    def read_orders(part: HistorySlice) -> None:  # another worker's thread takes the message
        worker = threading.Thread(target=lambda: read.append(read_run_orders(part, ports)))
        workers.append(worker)
        worker.start()

    harness.start("r2", options=options, read_orders=read_orders, slices=slices)
    for worker in workers:
        worker.join()
    harness.drain("r2")
    (summary,) = harness.summaries
    assert len(workers) == 2  # the planner reads the first slice; any worker the others
    assert read.count(True) + read.count(False) == 2
    for key in ("listed", "synced", "unchanged", "failed", "failedByReason", "reconciliation"):
        assert summary[key] == expected[key]
    assert summary["ordersProcessed"] == expected["ordersProcessed"] == 33
    # Every slice read once: the whole history's windows, plus at most one more at each of
    # the two boundaries between slices.
    assert pages_alone <= harness.alleaves.order_pages - pages_alone <= pages_alone + 2


def test_a_second_trigger_while_running_starts_nothing(harness: Harness) -> None:
    harness.start("r1")
    second = harness.start("r2")
    assert (second.started, second.run_id) == (False, "r1")
    assert sum(len(chunk) for chunk in harness.queue) == 12
    assert harness.ledger.progress("r2").status == "duplicate"


class PlannerKilled(BaseException):
    """The planner's process dying mid-dispatch (nothing in the run catches it)."""


def test_a_planner_sent_again_continues_its_run_where_the_dead_one_stopped(
    harness: Harness,
) -> None:
    sent: list[list[CustomerWork]] = []

    def enqueue_then_die(works: list[CustomerWork]) -> None:
        # as tasks' _enqueue_chunk does: keep the chunk, then publish it; the planner then dies
        harness.ledger.keep_chunk(
            "r1", str(works[0].customer.customer_id), [work.to_payload() for work in works]
        )
        sent.append(works)
        raise PlannerKilled

    harness.enqueue = enqueue_then_die  # type: ignore[method-assign]
    with pytest.raises(PlannerKilled):
        harness.start("r1")
    del harness.enqueue
    # registered before anything was read, in Redis and in Firestore
    assert harness.store.run_summaries["r1"]["status"] == "running"
    assert harness.ledger.run_record("r1").dispatched_at is None
    # a planner redelivered while the first still beats plans nothing
    assert harness.start("r1").message == "run busy"
    assert harness.queue == []
    # one customer of the dead planner's chunk got its result before the process died
    org = harness.store.get_org_settings("org-1")
    outcome = sync_chunk(org, sent[0][:1], store=harness.store, alpine=harness.alpine, run_id="r1")
    record_results(harness.ledger, "r1", outcome.results)
    resumed = dataclasses.replace(OPTIONS, planner_stale_s=0.0)  # the first stopped beating
    again = harness.start("r1", options=resumed)
    assert (again.started, again.run_id, again.listed) == (True, "r1", 13)
    # every customer without a result is sent: the dead planner's last chunk too (its
    # process may have taken the message with it)
    again_sent = [w.customer.customer_id for chunk in harness.queue for w in chunk]
    assert sorted(again_sent) == list(range(2, 13))
    assert harness.ledger.run_record("r1").plan_attempts == 2
    assert harness.start("r1", options=resumed).message == "run planned"
    harness.queue.insert(0, sent[0])  # ... and if its message was not lost after all:
    harness.drain()
    (summary,) = harness.summaries
    assert (summary["listed"], summary["missing"], summary["planAttempts"]) == (13, 0, 2)
    assert len(harness.notifier.alerts) == 1
    assert harness.start("r1").message == "run r1 has ended"  # a late redelivery


def test_a_run_redis_lost_keeps_its_start_and_recoveries_when_planned_again(
    harness: Harness,
) -> None:
    # What a restart without persistence leaves: the run's Firestore record, as the watchdog
    # updated it when it sent the planner again, and nothing in Redis.
    harness.store.write_run_summary(
        "r1",
        {"runId": "r1", "orgId": "org-1", "status": "running", "startedAt": 1_790_000_000.0},
    )
    harness.store.write_run_summary("r1", {"recoveries": 1, "recoveredAt": 1_790_000_400.0})
    assert harness.start("r1").started is True
    assert harness.store.run_summaries["r1"]["startedAt"] == 1_790_000_000.0
    harness.drain()
    (summary,) = harness.summaries
    assert (summary["status"], summary["missing"]) == ("completed", 0)
    assert (summary["recoveries"], summary["recoveryLog"]) == (1, [LOST_FROM_REDIS])
    assert summary["startedAt"] == 1_790_000_000.0
    plan_s = summary["planS"]  # the replan's own planning, not the time since the run's start
    assert isinstance(plan_s, float) and 0 <= plan_s < 60, plan_s
    assert harness.store.run_summaries["r1"]["recoveries"] == 1


def test_a_run_the_api_queued_is_registered_as_running_by_its_planner(harness: Harness) -> None:
    harness.ledger.start("r1", "org-1", status="queued", dryRun=0)  # as the API opens it
    assert harness.start("r1").started is True
    registered = harness.store.run_summaries["r1"]
    assert (registered["status"], registered["orgId"], registered["listed"]) == (
        "running",
        "org-1",
        13,
    )
    assert harness.ledger.run_record("r1").plan_attempts == 1
    harness.drain()
    assert harness.store.run_summaries["r1"]["status"] == "completed"


def test_bad_credentials_stop_the_run_with_one_alert(harness: Harness) -> None:
    harness.alleaves.error = AuthError("alleaves", "401 from POST /auth")
    started = harness.start()
    assert started.started is False
    assert harness.queue == []
    (summary,) = harness.summaries
    assert summary["status"] == "failed"
    assert "alleaves_auth" in str(summary["error"])
    assert len(harness.notifier.alerts) == 1
    assert harness.notifier.alerts[0].severity == "error"
    assert harness.ledger.lock_holder("org-1") is None


def test_wrong_alpine_key_is_found_before_any_customer(harness: Harness) -> None:
    harness.alpine.error = AuthError("alpine", "401")
    assert harness.start().started is False
    assert harness.queue == []


def test_discord_outage_does_not_fail_the_run(harness: Harness) -> None:
    harness.notifier.error = TransientError("discord", "503 after 4 attempts")
    harness.start()
    harness.drain()
    (summary,) = harness.summaries
    assert summary["status"] == "completed"
    assert summary["alert"] == {"sent": False, "error": "discord: 503 after 4 attempts"}


def test_an_org_with_no_customers_completes_at_once() -> None:
    harness = Harness(FakeAlleaves([]), FakeAlpine())
    assert harness.start().listed == 0
    (summary,) = harness.summaries
    assert (summary["status"], summary["listed"]) == ("completed", 0)


def test_each_customer_with_an_account_is_looked_up_once(harness: Harness) -> None:
    harness.start()
    harness.drain()
    # The documented listing names the contacts, not their balances: customers 1-8 have an
    # account and are looked up (3 too, before its malformed order fails it); 9-12 have none.
    assert sorted(harness.alpine.lookups) == [f"555000{i:04d}" for i in range(1, 9) if i != 3]
    assert harness.store.writes == 11  # 12 customers, customer 3 failed (a malformed order)


def test_a_batch_reads_balances_and_profiles_in_bulk(shortcut: Harness) -> None:
    shortcut.store.profiles["org-1_2"] = {"equityStatus": True}
    shortcut.start()
    shortcut.drain()
    assert shortcut.alpine.lookups == []  # every balance came from the contacts listing
    assert shortcut.store.writes == 11  # 12 customers, customer 3 failed (a malformed order)


def test_a_contact_listed_without_a_balance_is_looked_up() -> None:
    listing = Listing((), balances={"5550001111": None, "5550002222": AlpineProfile(4)})
    assert listing.alpine_answer("5550001111") is None  # only a look-up can tell
    answer = listing.alpine_answer("5550002222")
    assert answer is not None and answer.profile == AlpineProfile(4)
    unknown = listing.alpine_answer("5550003333")
    assert unknown is not None and unknown.profile is None  # no contact: no account


def test_planning_is_tried_again_after_a_transient_error(harness: Harness) -> None:
    harness.alleaves.error = TransientError("alleaves", "429 burst")
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        harness.alleaves.error = None  # the burst is over

    assert harness.start(sleep=pause).started is True
    assert pauses == [2.0]


def test_planning_gives_up_after_its_attempts(harness: Harness) -> None:
    harness.alleaves.error = TransientError("alleaves", "503 for good")
    pauses: list[float] = []
    assert harness.start(sleep=pauses.append).started is False
    assert pauses == [2.0, 4.0]
    assert "alleaves_unavailable" in str(harness.summaries[0]["error"])


def _stable(profiles: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    stamps = {"pointsLastCalculated", "lastLoyaltySyncRunId"}
    return {k: {f: v for f, v in p.items() if f not in stamps} for k, p in profiles.items()}


def test_incremental_run_gives_the_profiles_a_full_run_gives(harness: Harness) -> None:
    recent = date(2026, 2, 27)
    orders = harness.alleaves.orders
    # without the malformed order: a customer never synced has no ledger (see the next test)
    orders[:] = [o for o in orders if isinstance(o[1], Order)]
    orders += [
        (recent, Order(5002, 2, "pending", Decimal("15"))),
        (recent, Order(5003, 4, "completed", Decimal("60"))),
    ]
    harness.start("full")
    harness.drain("full")
    # after the full run: an order added, a pending one completed, a completed one voided
    orders[-2] = (recent, Order(5002, 2, "completed", Decimal("15")))
    orders[-1] = (recent, Order(5003, 4, "voided", Decimal("60")))
    orders.append((recent, Order(5001, 1, "Delivered", Decimal("40.75"))))
    pages_before = harness.alleaves.order_pages
    harness.start("incremental", since=date(2026, 2, 28))
    harness.drain("incremental")
    incremental_pages = harness.alleaves.order_pages - pages_before
    summary = harness.store.run_summaries["incremental"]
    assert summary["ordersSince"] == "2026-02-14"  # since less the 14-day overlap
    assert summary["synced"] == 3  # the three customers whose orders changed

    fresh = Harness(FakeAlleaves(harness.alleaves.customers, orders, page_size=5), harness.alpine)
    fresh.store.profiles = {
        k: {"equityStatus": v["equityStatus"]}
        for k, v in harness.store.profiles.items()
        if "equityStatus" in v
    }
    fresh.start("reference")
    fresh.drain("reference")
    assert _stable(harness.store.profiles) == _stable(fresh.store.profiles)
    assert incremental_pages < fresh.alleaves.order_pages


def test_incremental_without_ledgers_reads_the_whole_history(harness: Harness) -> None:
    harness.start("r1", since=date(2026, 2, 28))  # nothing synced before: no ledgers
    harness.drain("r1")
    assert harness.store.run_summaries["r1"]["ordersSince"] == "all"
    assert harness.store.profiles["org-1_1"]["pointsFromOrders"] == 37


def test_a_summary_retried_after_firestore_refused_it_alerts_once(harness: Harness) -> None:
    harness.start()
    refused = TransientError("firestore", "write summary of run r1: unavailable")
    write_summary = harness.store.write_run_summary
    attempts: list[str] = []

    def unavailable_once(run_id: str, summary: RunSummaryDocument) -> None:
        attempts.append(run_id)
        if len(attempts) == 1:
            raise refused
        write_summary(run_id, summary)

    harness.store.write_run_summary = unavailable_once  # type: ignore[method-assign]
    with pytest.raises(TransientError):
        harness.drain()
    summary = harness.summarize("r1")  # the task's retry
    assert len(harness.notifier.alerts) == 1
    assert summary["alert"] == {"sent": True}
    assert harness.store.run_summaries["r1"]["status"] == "completed"


class FlakyProfileStore(InMemoryProfileStore):
    """Refuses the first ``failures`` profile reads, as a Firestore under load times out."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.reads = 0

    def get_profiles(
        self, org_id: str, customer_ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, ProfileDocument]:
        self.reads += 1
        if self.reads <= self.failures:
            raise TransientError("firestore", "read profiles: DeadlineExceeded")
        return super().get_profiles(org_id, customer_ids, fields)


def test_a_profile_chunk_read_that_times_out_is_read_again() -> None:
    store = FlakyProfileStore(failures=PROFILE_READ_ATTEMPTS - 1)
    store.profiles["org-1_7"] = {"equityStatus": True}
    pauses: list[float] = []
    found = read_profiles(store, "org-1", [7, 8], parallelism=32, sleep=pauses.append)
    assert found == {7: {"equityStatus": True}}
    assert pauses == [2.0, 4.0, 8.0]  # backing off between the attempts


def test_a_profile_read_that_keeps_failing_fails_the_plan() -> None:
    store = FlakyProfileStore(failures=PROFILE_READ_ATTEMPTS)
    with pytest.raises(TransientError):
        read_profiles(store, "org-1", [7], parallelism=4, sleep=lambda s: None)
    assert store.reads == PROFILE_READ_ATTEMPTS


class CountingAlleaves(FakeAlleaves):
    def __init__(self, customers: int) -> None:
        super().__init__([Customer(n, None, None) for n in range(1, customers + 1)], [])
        self.pages: list[int] = []

    def fetch_customer_page(self, page: int) -> list[Customer | MalformedRecord]:
        self.pages.append(page)
        return super().fetch_customer_page(page)


@pytest.mark.parametrize(
    ("customers", "pages_read"),
    [(1_050, 12), (250, 4), (0, 4), (10_000, 124)],
)
def test_the_listing_reads_rounds_of_4_doubling_to_the_parallelism(
    customers: int, pages_read: int
) -> None:
    # 1,050 customers: pages 1-11 hold them (11 short); rounds of 4 then 8 read pages 1-12.
    # 10,000: 100 full pages and an empty 101st; rounds 4+8+16+32+32+32 = 124 pages.
    source = CountingAlleaves(customers)
    listed, malformed = list_customers(source, Paging(32))
    assert len(listed) == customers and malformed == []
    assert sorted(source.pages) == list(range(1, pages_read + 1))


class ReadCountingStore(InMemoryProfileStore):
    """Counts the profiles read, by customer id."""

    def __init__(self) -> None:
        super().__init__()
        self.read_ids: list[int] = []

    def get_profiles(
        self, org_id: str, customer_ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, ProfileDocument]:
        self.read_ids += customer_ids
        return super().get_profiles(org_id, customer_ids, fields)


def test_an_unchanged_rerun_is_settled_in_the_plan(shortcut: Harness) -> None:
    shortcut.start("first")
    shortcut.drain("first")
    writes = shortcut.store.writes
    shortcut.start("again")
    # only customer 3 (a malformed order) is sent: every other profile would stay as it is
    assert [[w.customer.customer_id for w in chunk] for chunk in shortcut.queue] == [[3]]
    shortcut.drain("again")
    summary = shortcut.store.run_summaries["again"]
    assert (summary["synced"], summary["unchanged"], summary["failed"]) == (0, 11, 2)
    assert summary["carried"] == 0  # a full run reads and checks every profile
    assert summary["reconciliation"] == shortcut.store.run_summaries["first"]["reconciliation"]
    assert shortcut.store.writes == writes
    assert len(shortcut.notifier.alerts) == 2  # one per run


def test_a_changed_profile_is_not_settled_in_the_plan(shortcut: Harness) -> None:
    shortcut.start("first")
    shortcut.drain("first")
    shortcut.store.profiles["org-1_5"]["points"] = 1  # edited by hand
    shortcut.start("again")
    sent = [w.customer.customer_id for chunk in shortcut.queue for w in chunk]
    assert sorted(sent) == [3, 5]
    shortcut.drain("again")
    assert shortcut.store.profiles["org-1_5"]["points"] == 37


@pytest.fixture
def synced(shortcut: Harness) -> Harness:
    """A full run done, on a store that counts profile reads; no malformed order; balances in
    the listing, so that customers with an account can be carried over."""
    harness = shortcut
    harness.store = ReadCountingStore()
    harness.store.settings["org-1"] = {"discrepancyThreshold": 0.1}
    orders = harness.alleaves.orders
    orders[:] = [o for o in orders if isinstance(o[1], Order)]
    harness.start("full")
    harness.drain("full")
    harness.store.read_ids.clear()
    return harness


def test_an_incremental_run_reads_only_the_profiles_of_customers_it_syncs(
    synced: Harness,
) -> None:
    synced.alpine.accounts["5550000002"] = AlpineProfile(50)  # a balance changed
    synced.alleaves.orders.append((date(2026, 2, 27), Order(6001, 4, "completed", Decimal("9"))))
    synced.start("incremental", since=date(2026, 2, 28))
    synced.drain("incremental")
    assert isinstance(synced.store, ReadCountingStore)
    assert sorted(synced.store.read_ids) == [2, 4]  # the other ten were left as they were
    summary = synced.store.run_summaries["incremental"]
    assert (summary["synced"], summary["unchanged"], summary["carried"]) == (2, 10, 10)
    assert summary["failed"] == 1  # the malformed customer record, as in every run
    # the carried results still count in the summary's tiers and reconciliation
    assert sum(summary["tiers"].values()) == 12
    assert synced.store.profiles["org-1_2"]["pointsFromAlpine"] == 50
    assert synced.store.profiles["org-1_4"]["pointsFromOrders"] == 46


def test_new_rules_leave_no_customer_to_carry_over(synced: Harness) -> None:
    synced.store.settings["org-1"]["pointsPerDollar"] = 2
    synced.start("incremental", since=date(2026, 2, 28))
    synced.drain("incremental")
    summary = synced.store.run_summaries["incremental"]
    assert (summary["synced"], summary["carried"]) == (12, 0)
    assert synced.store.profiles["org-1_1"]["pointsFromOrders"] == 75  # 20 + 41 + 14


def test_a_customer_whose_last_sync_failed_is_synced_again(synced: Harness) -> None:
    synced.ledger.remember(
        [SyncResult("org-1", 7, SyncStatus.FAILED, "2026-03-01T00:00:00+00:00", reason="x")]
    )
    synced.start("incremental", since=date(2026, 2, 28))
    synced.drain("incremental")
    assert isinstance(synced.store, ReadCountingStore)
    assert synced.store.read_ids == [7]
    assert synced.store.run_summaries["incremental"]["carried"] == 11


def test_a_full_run_reads_profiles_a_few_blocks_ahead_of_the_work_it_sends() -> None:
    store = ReadCountingStore()
    customers = [Customer(n) for n in range(1, 20 * PROFILE_CHUNK + 1)]
    store.profiles = {f"org-1_{c.customer_id}": {"equityStatus": True} for c in customers}
    feed = ProfileFeed(store, "org-1", customers)
    ahead = PROFILE_READ_AHEAD * PROFILE_CHUNK
    wait_until = time.monotonic() + 10
    while len(store.read_ids) < ahead and time.monotonic() < wait_until:
        time.sleep(0.01)
    time.sleep(0.05)
    assert len(store.read_ids) == ahead  # not the 20 blocks: nothing is read far ahead
    blocks = list(feed)
    assert [c for block, _ in blocks for c in block] == customers
    assert all(profiles is not None and len(profiles) == PROFILE_CHUNK for _, profiles in blocks)
    assert len(store.read_ids) == len(customers)


def test_profiles_a_full_run_cannot_read_are_read_by_the_tasks(shortcut: Harness) -> None:
    harness = shortcut  # balances in the listing: the plan reads profiles to settle customers
    flaky = FlakyProfileStore(failures=PROFILE_READ_ATTEMPTS)  # the plan's one block fails
    flaky.settings = harness.store.settings
    harness.store = flaky
    harness.start(sleep=lambda _: None)
    works = [w for chunk in harness.queue for w in chunk]
    assert len(works) == 12 and not any(w.profile_known for w in works)
    harness.drain()
    assert flaky.reads == PROFILE_READ_ATTEMPTS + len([5, 5, 2])  # then one read per chunk
    assert harness.store.run_summaries["r1"]["synced"] == 11  # and customer 3 failed malformed


def test_on_the_documented_listing_each_chunk_reads_its_own_profiles(harness: Harness) -> None:
    settings = {"discrepancyThreshold": 0.1, "equityMultiplier": 2}
    store = ReadCountingStore()
    store.settings["org-1"] = settings
    store.profiles = {f"org-1_{cid}": {"equityStatus": True} for cid in range(1, 13)}
    harness.store = store
    harness.start()
    assert store.read_ids == []  # the plan, which could settle no one, read no profile
    assert not any(w.profile_known for chunk in harness.queue for w in chunk)
    reads: list[list[int]] = []
    while harness.queue:
        before = len(store.read_ids)
        harness.drain_one()
        reads.append(store.read_ids[before:])
    assert reads == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12]]  # one call per chunk
    # The profiles read were used: every customer is an equity customer (points doubled).
    no_equity = Harness(harness.alleaves, harness.alpine)
    no_equity.store.settings["org-1"] = settings
    no_equity.start("plain")
    no_equity.drain("plain")
    for cid in (1, 2, 12):
        with_equity = store.profiles[f"org-1_{cid}"]["pointsFromOrders"]
        plain = no_equity.store.profiles[f"org-1_{cid}"]["pointsFromOrders"]
        assert with_equity > plain, (cid, with_equity, plain)


def test_a_chunk_whose_profile_read_fails_is_retried_whole_and_writes_nothing(
    harness: Harness,
) -> None:
    flaky = FlakyProfileStore(failures=1)
    flaky.settings = harness.store.settings
    harness.store = flaky
    harness.start()
    org = flaky.get_org_settings("org-1")
    chunk = harness.queue[0]
    with pytest.raises(TransientError):
        sync_chunk(org, chunk, store=flaky, alpine=harness.alpine, run_id="r1")
    assert flaky.profiles == {}
    outcome = sync_chunk(org, chunk, store=flaky, alpine=harness.alpine, run_id="r1")
    synced, malformed = SyncStatus.SYNCED, SyncStatus.FAILED  # customer 3: a malformed order
    assert [r.status for r in outcome.results] == [synced, synced, malformed, synced, synced]
    assert len(flaky.profiles) == 4


def test_malformed_customers_get_results_like_every_other(harness: Harness) -> None:
    harness.start()
    (result,) = [r for r in harness.ledger.iter_results("r1") if r.status is SyncStatus.FAILED]
    assert result.success is False
    assert (result.customer_id, result.reason) == ("page 1 #13", "malformed")
    assert result.dry_run is False
    # An ISO timestamp, as every SyncResult has (not an epoch float)
    assert datetime.fromisoformat(result.updated_at).tzinfo is not None
