"""An org's Alleaves order history, grouped by customer.

Alleaves has no per-customer order query: the history comes by date range, about 1,000 pages for
one store. Pages of one window must be read in order (there is no total), but separate date
windows are independent, so they are fetched in parallel, and busy windows are split smaller.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise

from loyalty_worker.domain.models import Order
from loyalty_worker.errors import MalformedRecord

PageFetcher = Callable[[date, date, int], list[Order | MalformedRecord]]


def date_windows(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """Split [start, end] into consecutive, non-overlapping inclusive windows of ``days``."""
    windows = []
    current = start
    while current <= end:
        last = min(current + timedelta(days=days - 1), end)
        windows.append((current, last))
        current = last + timedelta(days=1)
    return windows


@dataclass
class OrderHistory:
    """Orders by customer id; malformed order ids by customer id; anonymous orders dropped."""

    orders: dict[int, list[Order]] = field(default_factory=lambda: defaultdict(list))
    malformed: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    unowned_malformed: list[str] = field(default_factory=list)
    pages_fetched: int = 0
    orders_seen: int = 0

    def add(self, record: Order | MalformedRecord) -> None:
        self.orders_seen += 1
        if isinstance(record, MalformedRecord):
            if record.customer_id:
                self.malformed[record.customer_id].append(record.record_id)
            else:
                self.unowned_malformed.append(record.record_id)
        elif record.customer_id:
            self.orders[record.customer_id].append(record)


def fetch_order_history(
    fetch_page: PageFetcher,
    *,
    start: date,
    end: date,
    window_days: int,
    page_size: int,
    parallelism: int,
) -> OrderHistory:
    """Every order created in [start, end], ``parallelism`` pages in flight.

    The range is cut into windows of ``window_days``. A window whose first page comes back full
    holds more than one page; pages of a window must be read one after another, so a busy window
    of several days is split in two halves, each read like any window (the full first page is
    read again within them: one call per split). Only a single busy day is paged in order, so
    the longest chain of sequential calls is one day's pages, not a fortnight's.

    An order seen twice (a page boundary shifting while paging) is kept once; each customer's
    orders end sorted by order id, and ``orders_seen`` counts each order once.
    """
    history = OrderHistory()
    lock = threading.Lock()

    def take(records: list[Order | MalformedRecord]) -> None:
        with lock:
            history.pages_fetched += 1
            for record in records:
                history.add(record)

    def read(window: tuple[date, date]) -> list[tuple[date, date]]:
        """Reads the window, or returns its two halves to read instead."""
        first, last = window
        records = fetch_page(first, last, 1)
        if len(records) >= page_size and last > first:
            middle = first + (last - first) // 2
            return [(first, middle), (middle + timedelta(days=1), last)]
        take(records)
        page = 1
        while len(records) >= page_size:
            page += 1
            records = fetch_page(first, last, page)
            take(records)
        return []

    windows = date_windows(start, end, window_days)
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        pending = {pool.submit(read, window) for window in windows}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                pending.update(pool.submit(read, half) for half in future.result())
    for orders in history.orders.values():
        history.orders_seen -= _sort_unique(orders)
    return history


def _sort_unique(orders: list[Order]) -> int:
    """Sort one customer's orders by id, keeping one of each; returns how many were dropped.

    De-duplicating per customer, once all pages are in, spares a run-wide set of every order id
    (about 60 bytes an order: 30 MB for an org of 500,000 orders).
    """
    orders.sort(key=lambda order: order.order_id)
    if all(a.order_id != b.order_id for a, b in pairwise(orders)):
        return 0
    unique = orders[:1]
    for order in orders[1:]:
        if order.order_id != unique[-1].order_id:
            unique.append(order)
    dropped = len(orders) - len(unique)
    orders[:] = unique
    return dropped
