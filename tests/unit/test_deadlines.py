"""Deadlines that hold together: every task bounds its own time, paging cannot run for ever,
and a worker refuses settings whose deadlines are out of order."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal

import httpx
import pytest

from loyalty_worker.adapters.alleaves import AlleavesAccount, AlleavesClient
from loyalty_worker.adapters.alpine import AlpineIQClient
from loyalty_worker.adapters.http import Call, RetryPolicy, send
from loyalty_worker.config import Settings
from loyalty_worker.deadlines import (
    DeadlinesOutOfOrder,
    check_at_worker_start,
    check_deadlines,
    deadlines,
)
from loyalty_worker.domain.models import Customer, Order
from loyalty_worker.domain.profile import ProfileUpdate
from loyalty_worker.domain.results import SyncStatus
from loyalty_worker.errors import DeadlineExceeded, MalformedRecord, PermanentError, TransientError
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.run.listings import list_customers
from loyalty_worker.services.sync.customer import sync_chunk
from loyalty_worker.services.sync.deadline import Deadline
from loyalty_worker.services.sync.inputs import CustomerWork
from loyalty_worker.services.sync.listing import customer_pages
from loyalty_worker.services.sync.order_history import fetch_order_history
from loyalty_worker.services.sync.paging import HistoryWindow, Paging
from tests.fakes import FakeAlpine, InMemoryProfileStore


def settings(**env: object) -> Settings:
    return Settings(**env)  # type: ignore[arg-type]


class Clock:
    def __init__(self, step: float = 0.0) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


# The table and the start-up check.


def test_the_defaults_hold_together_as_the_readme_table_says() -> None:
    d = check_deadlines(settings())
    assert (d.http_attempt_s, d.http_call_s, d.alleaves_call_s, d.firestore_call_s) == (
        25.0,
        130.0,
        520.0,
        13.0,
    )
    assert (d.chunk_task_s, d.retried_customer_task_s, d.single_sync_task_s) == (
        302.0,
        169.0,
        796.0,
    )
    assert (d.summary_task_s, d.plan_s) == (169.0, 1746.0)
    assert d.longest_task_s == 796.0 < d.visibility_timeout_s == 1800.0 < d.stall_s == 3600.0
    assert d.plan_s < d.stall_s


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"visibility_timeout_s": 600}, "LOYALTY_VISIBILITY_TIMEOUT_S"),
        ({"http_max_attempts": 20}, "LOYALTY_VISIBILITY_TIMEOUT_S"),
        ({"run_stall_s": 1800.0}, "LOYALTY_RUN_STALL_S"),
        ({"plan_budget_s": 4000.0, "run_stall_s": 4000.0}, "planning"),
    ],
)
def test_settings_out_of_order_are_refused(env: dict[str, object], names: str) -> None:
    with pytest.raises(DeadlinesOutOfOrder, match=names):
        check_deadlines(settings(**env))


def test_a_worker_does_not_start_with_deadlines_out_of_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test")
    with pytest.raises(SystemExit, match="visibility timeout"):
        check_at_worker_start(settings(visibility_timeout_s=60), log)
    # A test stack that shrinks a timeout on purpose may only warn.
    with caplog.at_level(logging.ERROR):
        d = check_at_worker_start(settings(visibility_timeout_s=60, deadline_check="warn"), log)
    assert d.visibility_timeout_s == 60
    assert "deadlines out of order" in caplog.text


def test_the_worker_start_hook_is_connected() -> None:
    from celery.signals import worker_init

    from loyalty_worker import celery_app

    assert any(
        getattr(receiver(), "__name__", "") == celery_app._deadlines_hold_together.__name__
        for _, receiver in worker_init.receivers
    )


def test_a_longer_http_timeout_lengthens_every_task() -> None:
    short, long = deadlines(settings()), deadlines(settings(http_timeout_s=20.0))
    assert long.longest_task_s > short.longest_task_s
    assert long.http_call_s == 4 * (5 + 40) + 30


# Tasks bound their own time.


def test_a_chunk_starts_no_customer_once_its_budget_is_spent() -> None:
    clock = Clock()
    deadline = Deadline(10.0, clock=clock)
    works = [CustomerWork(Customer(i), (Order(i, i, "completed", Decimal(5)),)) for i in (1, 2, 3)]

    store = InMemoryProfileStore()
    org = OrgSettings.parse("org-1", {})
    clock.step = 6.0  # each check of the clock is six seconds later
    outcome = sync_chunk(org, works, store=store, alpine=FakeAlpine(), deadline=deadline)
    assert [r.customer_id for r in outcome.results] == [1]
    assert outcome.results[0].status is SyncStatus.SYNCED
    assert [w.customer.customer_id for w, _ in outcome.retry] == [2, 3]
    assert all(isinstance(e, DeadlineExceeded) for _, e in outcome.retry)
    assert outcome.retry[0][1].reason == "deadline_exceeded"


def test_a_refused_batched_write_writes_no_profile_alone_once_the_budget_is_spent() -> None:
    class RefusesBatches(InMemoryProfileStore):
        def write_profiles(self, updates: Sequence[ProfileUpdate]) -> None:
            if len(updates) > 1:
                raise ValueError("the batch is refused")
            clock.step = 6.0  # from the first profile written alone, six seconds a check
            super().write_profiles(updates)

    clock = Clock()
    deadline = Deadline(10.0, clock=clock)
    works = [CustomerWork(Customer(i), (Order(i, i, "completed", Decimal(5)),)) for i in (1, 2, 3)]
    store = RefusesBatches()
    org = OrgSettings.parse("org-1", {})
    outcome = sync_chunk(org, works, store=store, alpine=FakeAlpine(), deadline=deadline)
    # 1 and 2 are written alone (checks at 0 and 6 s); 3 is handed back unwritten (12 s).
    assert [(r.customer_id, r.status) for r in outcome.results] == [
        (1, SyncStatus.SYNCED),
        (2, SyncStatus.SYNCED),
    ]
    assert set(store.profiles) == {"org-1_1", "org-1_2"}
    assert [(w.customer.customer_id, e.reason) for w, e in outcome.retry] == [
        (3, "deadline_exceeded")
    ]


# Paging is bounded: a page cap, a repeated-page check, a deadline.


def _full_page(first_id: int, size: int = 2) -> list[Order | MalformedRecord]:
    return [Order(first_id + i, 1, "completed", Decimal(1)) for i in range(size)]


def test_a_day_that_stays_full_stops_at_the_page_cap() -> None:
    pages: list[int] = []

    def fetch(start: date, end: date, page: int) -> list[Order | MalformedRecord]:
        pages.append(page)
        return _full_page(page * 10)

    day = date(2026, 1, 1)
    with pytest.raises(PermanentError, match="still full at 5 pages"):
        fetch_order_history(fetch, HistoryWindow(day, day, 1), Paging(1, 5), page_size=2)
    assert pages == [1, 2, 3, 4, 5]


def test_a_page_that_repeats_the_last_stops_the_paging() -> None:
    def fetch(start: date, end: date, page: int) -> list[Order | MalformedRecord]:
        return _full_page(1)  # the provider ignores ``page``

    day = date(2026, 1, 1)
    with pytest.raises(PermanentError, match="page 2 repeats"):
        fetch_order_history(fetch, HistoryWindow(day, day, 1), Paging(1), page_size=2)


def test_paging_stops_at_the_deadline() -> None:
    clock = Clock(step=1.0)

    def fetch(start: date, end: date, page: int) -> list[Order | MalformedRecord]:
        return _full_page(page * 10)

    day = date(2026, 1, 1)
    with pytest.raises(DeadlineExceeded):
        fetch_order_history(
            fetch,
            HistoryWindow(day, day, 1),
            Paging(1, deadline=Deadline(5.0, clock=clock)),
            page_size=2,
        )


class EndlessCustomers:
    """A customer listing whose every page is full."""

    page_size = 2

    def __init__(self, repeat: bool = False) -> None:
        self.repeat = repeat
        self.fetched: list[int] = []

    def fetch_customer_page(self, page: int) -> list[Customer | MalformedRecord]:
        self.fetched.append(page)
        first = 1 if self.repeat else page * 10
        return [Customer(first), Customer(first + 1)]

    def fetch_order_page(self, start: date, end: date, page: int) -> list[Order | MalformedRecord]:
        return []


def test_a_customer_listing_full_at_the_cap_fails_the_plan() -> None:
    source = EndlessCustomers()
    with pytest.raises(PermanentError, match="still full at 6 pages"):
        list_customers(source, Paging(2, 6))  # type: ignore[arg-type]
    assert max(source.fetched) == 6


def test_a_repeated_customer_page_stops_the_listing() -> None:
    with pytest.raises(PermanentError, match="page 2 repeats page 1"):
        list(customer_pages(EndlessCustomers(repeat=True), Paging(1)))  # type: ignore[arg-type]


def test_the_alleaves_client_iterators_stop_at_the_page_cap() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth"):
            return httpx.Response(200, json={"token": "t"})
        page = int(request.url.params.get("page", "0") or 0)
        return httpx.Response(
            200, json=[{"id_order": page * 10 + i, "status": "x", "subtotal": 1} for i in range(2)]
        )

    client = AlleavesClient(
        httpx.Client(transport=httpx.MockTransport(handler)),
        account=AlleavesAccount(
            base_url="https://alleaves.test/api", username="u", password="p", pin="1"
        ),
        page_size=2,
        retry=RetryPolicy(max_attempts=1, wait=False),
        max_pages=3,
    )
    with pytest.raises(PermanentError, match="still full at 3 pages"):
        list(client.iter_orders(date(2026, 1, 1), date(2026, 1, 2)))


def _alpine(handler: httpx.MockTransport, max_pages: int = 5000) -> AlpineIQClient:
    return AlpineIQClient(
        httpx.Client(transport=handler),
        base_url="https://alpine.test/api",
        uid="u1",
        api_key="k",
        retry=RetryPolicy(max_attempts=1, wait=False),
        max_pages=max_pages,
    )


def test_alpine_contacts_that_repeat_or_never_end_are_cut_off() -> None:
    def same(request: httpx.Request) -> httpx.Response:
        rows = [{"contactID": "c1", "mobilePhone": "5550001111"}]
        return httpx.Response(200, json={"data": {"results": rows, "size": 1, "total": 10**9}})

    with pytest.raises(PermanentError, match="repeats the last"):
        list(_alpine(httpx.MockTransport(same)).iter_contacts(limit=1))

    def endless(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["start"])
        rows = [{"contactID": f"c{start}"}]
        return httpx.Response(200, json={"data": {"results": rows, "size": 1}})

    with pytest.raises(PermanentError, match="after 4 pages"):
        list(_alpine(httpx.MockTransport(endless), max_pages=4).iter_contacts(limit=1))


# Responses are capped in size and in reading time.


def test_a_response_over_the_size_cap_is_refused_without_retries() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=b"x" * 5000)

    policy = RetryPolicy(max_attempts=3, wait=False, max_response_bytes=4096)
    with pytest.raises(PermanentError, match="larger than 4096 bytes"):
        send(
            httpx.Client(transport=httpx.MockTransport(handler)),
            Call("GET", "https://a.test/x"),
            service="alleaves",
            policy=policy,
        )
    assert len(calls) == 1


def test_a_streamed_response_over_the_cap_is_refused_while_reading() -> None:
    def chunks() -> Iterator[bytes]:
        while True:  # a body that never ends
            yield b"y" * 1024

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks())

    policy = RetryPolicy(max_attempts=1, wait=False, max_response_bytes=10_000)
    with pytest.raises(PermanentError, match="larger than 10000 bytes"):
        send(
            httpx.Client(transport=httpx.MockTransport(handler)),
            Call("GET", "https://a.test/x"),
            service="alpine_iq",
            policy=policy,
        )


def test_a_body_trickling_in_past_the_attempt_deadline_times_out() -> None:
    clock = Clock(step=4.0)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"[", b"1", b",", b"2", b"]"]))

    policy = RetryPolicy(max_attempts=2, wait=False, attempt_deadline_s=10.0, clock=clock)
    with pytest.raises(TransientError, match="timed out"):
        send(
            httpx.Client(transport=httpx.MockTransport(handler)),
            Call("GET", "https://a.test/x"),
            service="alleaves",
            policy=policy,
        )


def test_a_response_within_the_caps_reads_as_before() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True}, headers={"Retry-After": "3"})

    policy = RetryPolicy.from_settings(settings())
    response = send(
        httpx.Client(transport=httpx.MockTransport(handler)),
        Call("GET", "https://a.test/x"),
        service="alleaves",
        policy=policy,
    )
    assert response.json() == {"ok": True}
    assert response.headers["Retry-After"] == "3"
    assert policy.max_response_bytes == 16 * 2**20
    assert policy.attempt_deadline_s == 15.0


def test_a_plan_past_its_budget_fails_the_run_without_retrying() -> None:
    import fakeredis

    from loyalty_worker.adapters.run_state import RunTracker
    from loyalty_worker.services.run.batch import start_batch
    from loyalty_worker.services.run.context import BatchOptions, RunDispatch, RunPorts, RunRequest
    from tests.fakes import FakeAlleaves, FakeOrg

    alleaves = FakeAlleaves([Customer(1)])
    store = InMemoryProfileStore()
    ledger = RunTracker(fakeredis.FakeRedis())
    statuses: list[str] = []
    sleeps: list[float] = []

    org = FakeOrg(OrgSettings.parse("org-1", {}), alleaves, FakeAlpine())
    options = BatchOptions(
        history_start=date(2026, 1, 1),
        window_days=30,
        parallelism=2,
        lock_ttl_s=60,
        chunk_size=5,
        plan_budget_s=0.0,  # spent before the first page
    )
    started = start_batch(
        RunRequest("org-1", "r1"),
        org,
        RunPorts(org_for=lambda _: org, store=store, ledger=ledger, options=options),
        RunDispatch(enqueue=lambda _: None, summarize=statuses.append),
        today=date(2026, 2, 1),
        sleep=sleeps.append,
    )
    assert not started.started
    assert statuses == ["failed"]
    assert str(ledger.run_record("r1").error).startswith("deadline_exceeded")
    assert sleeps == []  # not planned again: the budget covers every attempt
    assert alleaves.order_pages == 0
