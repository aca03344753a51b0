"""An org's Alleaves order history, grouped by customer.

Alleaves has no per-customer order query: the history comes by date range, about 1,000 pages for
one store. Pages of one window must be read in order (there is no total), but separate date
windows are independent, so they are fetched in parallel.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

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


def _window_records(
    fetch_page: PageFetcher, window: tuple[date, date], page_size: int
) -> Iterator[list[Order | MalformedRecord]]:
    page = 1
    while True:
        records = fetch_page(window[0], window[1], page)
        yield records
        if len(records) < page_size:
            return
        page += 1


def fetch_order_history(
    fetch_page: PageFetcher,
    *,
    start: date,
    end: date,
    window_days: int,
    page_size: int,
    parallelism: int,
) -> OrderHistory:
    """Every order created in [start, end], windows fetched ``parallelism`` at a time.

    An order seen twice (a page boundary shifting while paging) is kept once.
    """
    history = OrderHistory()
    seen: set[int] = set()

    def read_window(window: tuple[date, date]) -> list[list[Order | MalformedRecord]]:
        return list(_window_records(fetch_page, window, page_size))

    windows = date_windows(start, end, window_days)
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(windows)))) as pool:
        for pages in pool.map(read_window, windows):
            for records in pages:
                history.pages_fetched += 1
                for record in records:
                    if isinstance(record, Order):
                        if record.order_id in seen:
                            continue
                        seen.add(record.order_id)
                    history.add(record)
    return history
