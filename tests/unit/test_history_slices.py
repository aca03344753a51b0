"""A plan's history read in slices: the same orders whoever reads each slice, every slice read
once when its readers live, and read by the planner when a reader dies or fails.

The slices meet in ``RedisOrderSlices`` over fakeredis (its Lua scripts as Redis runs them;
the contract over a real redis-server is in tests/contracts).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import fakeredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty_worker.adapters.order_slices import RedisOrderSlices
from loyalty_worker.domain.models import Order
from loyalty_worker.errors import MalformedRecord, TransientError
from loyalty_worker.services.run import history_slices
from loyalty_worker.services.run.history_slices import HistorySlice, SlicedHistory, read_slice
from loyalty_worker.services.sync.order_history import (
    OrderHistory,
    date_windows,
    fetch_order_history,
)
from loyalty_worker.services.sync.paging import HistoryWindow, Paging

START, END = date(2025, 1, 1), date(2025, 12, 31)


def dated_orders(count: int = 400) -> list[tuple[date, Order | MalformedRecord]]:
    """Orders spread over the year, a few customers each, some malformed, some anonymous."""
    orders: list[tuple[date, Order | MalformedRecord]] = []
    for i in range(1, count + 1):
        day = START + timedelta(days=(i * 37) % 365)
        if i % 50 == 0:
            orders.append(
                (day, MalformedRecord("alleaves", "order", str(i), "x", customer_id=i % 7))
            )
        else:
            orders.append((day, Order(i, i % 23, "completed", Decimal(i) / 4)))
    return orders


WINDOW_DAYS = 14


class Reader:
    """Reads a slice of ``orders`` (its share of the 14-day windows) as one page; counts the
    slices it was asked for."""

    def __init__(self, orders: list[tuple[date, Order | MalformedRecord]]) -> None:
        self.orders = orders
        self.ranges: Counter[tuple[int, int]] = Counter()
        self.lock = threading.Lock()
        self.fail: set[tuple[int, int]] = set()
        self.active = self.peak = 0

    def __call__(self, part: HistorySlice, before_page: Callable[[], None]) -> OrderHistory:
        share = (part.index, part.count)
        with self.lock:
            self.ranges[share] += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.02)  # a page's latency: readers side by side overlap
        with self.lock:
            self.active -= 1
        before_page()
        if share in self.fail:
            raise TransientError("alleaves", "GET /order: server error (503)")
        windows = date_windows(part.start, part.end, WINDOW_DAYS)[part.index :: part.count]
        history = OrderHistory()
        history.pages_fetched = 1
        for day, order in self.orders:
            if any(first <= day <= last for first, last in windows):
                history.add(order)
        history.finish()
        return history


def whole() -> OrderHistory:
    return Reader(dated_orders())(HistorySlice("org-1", "r0", START, END), lambda: None)


def shares(count: int) -> list[tuple[int, int]]:
    return [(index, count) for index in range(count)]


def gather(
    reader: Reader,
    slices: RedisOrderSlices,
    count: int,
    send: Callable[[HistorySlice], None] = lambda part: None,
) -> OrderHistory:
    """Run r1's history of the year, gathered in ``count`` slices."""
    sliced = SlicedHistory("org-1", "r1", count=count, read=reader, slices=slices, send=send)
    return sliced(HistoryWindow(START, END, WINDOW_DAYS))


def same_history(a: OrderHistory, b: OrderHistory) -> None:
    assert set(a.customer_ids()) == set(b.customer_ids())
    for customer_id in a.customer_ids():
        assert a.orders_of(customer_id) == b.orders_of(customer_id)
    assert {c: sorted(ids) for c, ids in a.malformed.items()} == {
        c: sorted(ids) for c, ids in b.malformed.items()
    }
    assert sorted(a.unowned_malformed) == sorted(b.unowned_malformed)
    assert a.orders_seen == b.orders_seen


@given(
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
    st.integers(min_value=0, max_value=900),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=20),
)
def test_the_shares_hold_every_window_once(
    start: date, days: int, window_days: int, count: int
) -> None:
    """Each order is read by exactly one slice: the shares split the windows, none twice."""
    end = start + timedelta(days=days)
    windows = date_windows(start, end, window_days)
    read: list[tuple[date, date]] = []

    def fetch(first: date, last: date, page: int) -> list[Order | MalformedRecord]:
        read.append((first, last))
        return []

    for index in range(count):
        fetch_order_history(
            fetch,
            HistoryWindow(start, end, window_days),
            Paging(2),
            page_size=10,
            share=(index, count),
        )
    assert sorted(read) == windows


def test_a_history_survives_its_bytes_and_merges_to_the_whole() -> None:
    reader = Reader(dated_orders())
    merged = OrderHistory()
    for index, count in shares(5):
        part = HistorySlice("org-1", "r1", START, END, index, count)
        merged.merge(OrderHistory.from_bytes(reader(part, lambda: None).to_bytes()))
    merged.finish()
    same_history(merged, whole())
    assert merged.pages_fetched == 5


def test_alone_the_planner_reads_every_slice_once() -> None:
    reader = Reader(dated_orders())
    sent: list[HistorySlice] = []
    history = gather(reader, RedisOrderSlices(fakeredis.FakeRedis()), 4, send=sent.append)
    same_history(history, whole())
    assert [(p.index, p.count) for p in sent] == shares(4)[1:]
    assert sorted(reader.ranges) == shares(4)
    assert set(reader.ranges.values()) == {1}
    # the first slice, then the three nobody took, side by side
    assert reader.peak == 3


def test_slices_read_by_other_workers_are_gathered_and_each_read_once() -> None:
    client = fakeredis.FakeRedis()
    planner_reads, worker_reads = Reader(dated_orders()), Reader(dated_orders())
    slices = RedisOrderSlices(client)
    workers: list[threading.Thread] = []

    def send(part: HistorySlice) -> None:
        worker = threading.Thread(
            target=read_slice,
            args=(part, worker_reads, RedisOrderSlices(client)),
            kwargs={"keep_s": 60},
        )
        workers.append(worker)
        worker.start()

    history = gather(planner_reads, slices, 6, send=send)
    for worker in workers:
        worker.join()
    same_history(history, whole())
    every = planner_reads.ranges + worker_reads.ranges
    assert sorted(every) == shares(6)
    assert set(every.values()) == {1}
    assert (0, 6) in planner_reads.ranges
    assert client.keys("loyalty:run:r1:orders:*") == []  # gathered: dropped


def test_a_slice_whose_reader_died_is_read_by_the_planner_once_its_claim_lapses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = fakeredis.FakeRedis()
    slices = RedisOrderSlices(client)
    dead = HistorySlice("org-1", "r1", START, END, 1, 3)
    # A worker took slice 1 and died: its claim is never renewed, never released.
    assert slices.claim("r1", dead.key, "dead-worker", ttl_s=0.3)
    monkeypatch.setattr(history_slices, "POLL_S", 0.01)
    reader = Reader(dated_orders())
    began = time.monotonic()
    history = gather(reader, slices, 3)
    assert time.monotonic() - began >= 0.25  # it waited for the claim to lapse
    same_history(history, whole())
    assert set(reader.ranges) == set(shares(3))


def test_a_reader_that_fails_leaves_its_slice_to_the_planner() -> None:
    client = fakeredis.FakeRedis()
    failing = Reader(dated_orders())
    failing.fail.add((1, 2))
    part = HistorySlice("org-1", "r1", START, END, 1, 2)
    assert read_slice(part, failing, RedisOrderSlices(client), keep_s=60) is False
    assert client.keys("loyalty:run:r1:*") == []  # no orders, and its claim released
    reader = Reader(dated_orders())
    history = gather(reader, RedisOrderSlices(client), 2)
    same_history(history, whole())
    assert set(reader.ranges) == set(shares(2))


def test_a_slice_claimed_or_read_already_is_not_read_again() -> None:
    client = fakeredis.FakeRedis()
    slices = RedisOrderSlices(client)
    reader = Reader(dated_orders())
    part = HistorySlice("org-1", "r1", START, END, 1, 2)
    assert read_slice(part, reader, slices, keep_s=60) is True
    assert read_slice(part, reader, slices, keep_s=60) is False  # its orders are in
    other = HistorySlice("org-1", "r2", START, END, 1, 2)
    assert slices.claim("r2", other.key, "someone", ttl_s=60)
    assert read_slice(other, reader, slices, keep_s=60) is False  # another holds it
    assert reader.ranges[(1, 2)] == 1


def test_a_reader_whose_claim_was_lost_leaves_no_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    client = fakeredis.FakeRedis()
    slices = RedisOrderSlices(client)
    part = HistorySlice("org-1", "r1", START, END, 1, 2)
    monkeypatch.setattr(history_slices, "CLAIM_TTL_S", 0.15)

    def stalled(part: HistorySlice, before_page: Callable[[], None]) -> OrderHistory:
        # Its claim is taken over (as after Redis lost it), then the next page is asked for.
        client.set(f"loyalty:run:r1:orders:{part.key}:claim", "another")
        time.sleep(0.2)  # a renewal finds the claim gone
        before_page()
        raise AssertionError("the page after a lost claim is not read")

    assert read_slice(part, stalled, slices, keep_s=60) is False
    assert slices.get("r1", part.key) is None
    assert client.get(f"loyalty:run:r1:orders:{part.key}:claim") == b"another"
