"""An org's Alleaves order history, grouped by customer.

Alleaves has no per-customer order query: the history comes by date range, about 1,000 pages for
one store. Pages of one window must be read in order (there is no total), but separate date
windows are independent, so they are fetched in parallel, and busy windows are split smaller.
"""

from __future__ import annotations

import sys
import threading
import zlib
from collections import defaultdict
from collections.abc import Callable, KeysView, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from queue import SimpleQueue

import msgspec

from loyalty_worker.domain.models import Customer, Order
from loyalty_worker.errors import MalformedRecord, PermanentError
from loyalty_worker.log_context import ContextThreadPool
from loyalty_worker.ports.sources import CustomerSource
from loyalty_worker.services.sync.deadline import check
from loyalty_worker.services.sync.paging import HistoryWindow, Paging

PageFetcher = Callable[[date, date, int], list[Order | MalformedRecord]]


def page_ids(records: Sequence[Order | Customer | MalformedRecord]) -> list[str]:
    """The ids of a page's records, in order: two pages with the same ids are the same page."""
    ids = []
    for record in records:
        if isinstance(record, MalformedRecord):
            ids.append(f"malformed {record.record_id}")
        elif isinstance(record, Order):
            ids.append(str(record.order_id))
        else:
            ids.append(str(record.customer_id))
    return ids


def date_windows(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """Split [start, end] into consecutive, non-overlapping inclusive windows of ``days``."""
    windows = []
    current = start
    while current <= end:
        last = min(current + timedelta(days=days - 1), end)
        windows.append((current, last))
        current = last + timedelta(days=1)
    return windows


# A customer's orders are kept packed in one string: a row per order, its fields apart.
_ROW, _FIELD = "\x1e", "\x1f"
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(tuple[dict[int, str], dict[int, list[str]], list[str], int, int])


@dataclass
class OrderHistory:
    """Orders by customer id; malformed order ids by customer id; anonymous orders dropped.

    A run holds the org's whole history at once (500,000 orders for a large chain), so each
    customer's orders are packed into one string (``_ROW``-separated rows of id, subtotal,
    discount, refund, day, status: about 40 bytes an order, against about 350 as ``Order``
    objects) and unpacked, as ``Order`` values, one customer at a time (``orders_of``).
    Amounts keep their exact ``Decimal`` text.
    """

    _packed: dict[int, str] = field(default_factory=dict)
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
            row = _pack(record)
            packed = self._packed.get(record.customer_id)
            self._packed[record.customer_id] = row if packed is None else packed + _ROW + row

    def __contains__(self, customer_id: object) -> bool:
        """Whether the customer has any (well-formed) order in this history."""
        return customer_id in self._packed

    def customer_ids(self) -> KeysView[int]:
        """The customers with any (well-formed) order in this history."""
        return self._packed.keys()

    def orders_of(self, customer_id: int) -> list[Order]:
        """The customer's orders, sorted by order id."""
        packed = self._packed.get(customer_id)
        if packed is None:
            return []
        return [_unpack(customer_id, row) for row in packed.split(_ROW)]

    def merge(self, other: OrderHistory) -> None:
        """Add ``other``'s orders (another date range of the same org); ``finish`` after."""
        for customer_id, packed in other._packed.items():
            mine = self._packed.get(customer_id)
            self._packed[customer_id] = packed if mine is None else mine + _ROW + packed
        for customer_id, order_ids in other.malformed.items():
            self.malformed[customer_id].extend(order_ids)
        self.unowned_malformed.extend(other.unowned_malformed)
        self.pages_fetched += other.pages_fetched
        self.orders_seen += other.orders_seen

    def to_bytes(self) -> bytes:
        """The history as compressed bytes, to hand to another process (``from_bytes``)."""
        state = (
            self._packed,
            dict(self.malformed),
            self.unowned_malformed,
            self.pages_fetched,
            self.orders_seen,
        )
        return zlib.compress(_ENCODER.encode(state), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> OrderHistory:
        packed, malformed, unowned, pages, seen = _DECODER.decode(zlib.decompress(data))
        return cls(packed, defaultdict(list, malformed), unowned, pages, seen)

    def finish(self) -> None:
        """Sort each customer's orders by id and keep one of each (an order read on two
        pages); ``orders_seen`` then counts each order once."""
        for customer_id, packed in self._packed.items():
            if _ROW not in packed:
                continue
            rows = sorted(packed.split(_ROW), key=_row_id)
            unique = [rows[0]] + [b for a, b in pairwise(rows) if _row_id(a) != _row_id(b)]
            self.orders_seen -= len(rows) - len(unique)
            self._packed[customer_id] = _ROW.join(unique)


def _pack(order: Order) -> str:
    status = order.status
    if _ROW in status or _FIELD in status:  # never a status that counts: kept apart
        status = status.replace(_ROW, " ").replace(_FIELD, " ")
    return _FIELD.join(
        (
            str(order.order_id),
            str(order.subtotal),
            str(order.discount),
            str(order.refunded_amount),
            order.created_at or "",
            status,
        )
    )


def _row_id(row: str) -> int:
    return int(row[: row.index(_FIELD)])


def _unpack(customer_id: int, row: str) -> Order:
    order_id, subtotal, discount, refunded, created_at, status = row.split(_FIELD, 5)
    return Order(
        order_id=int(order_id),
        customer_id=customer_id,
        status=sys.intern(status),
        subtotal=Decimal(subtotal),
        discount=Decimal(discount),
        refunded_amount=Decimal(refunded),
        created_at=created_at or None,
    )


def read_orders(
    source: CustomerSource,
    window: HistoryWindow,
    paging: Paging,
    *,
    before_page: Callable[[], None] | None = None,
    share: tuple[int, int] = (0, 1),
) -> OrderHistory:
    """The org's orders of ``window`` from its Alleaves (``fetch_order_history``, with its
    ``share``); ``before_page`` runs before each page is fetched."""
    fetch: PageFetcher = source.fetch_order_page
    if before_page is not None:

        def fetch(first: date, last: date, page: int) -> list[Order | MalformedRecord]:
            before_page()
            return source.fetch_order_page(first, last, page)

    return fetch_order_history(fetch, window, paging, page_size=source.page_size, share=share)


def fetch_order_history(
    fetch_page: PageFetcher,
    window: HistoryWindow,
    paging: Paging,
    *,
    page_size: int,
    share: tuple[int, int] = (0, 1),
) -> OrderHistory:
    """Every order created in the window, ``paging.parallelism`` pages in flight; with ``share``
    ``(k, n)``, only those of every n-th date window from the k-th (one of n readers' shares:
    busy and quiet seasons alike spread over all of them).

    The range is cut into date windows of ``window.window_days``. A window whose first page
    comes back full holds more than one page; pages of a window must be read one after another,
    so a busy window of several days is split in two halves, each read like any window (the full
    first page is read again within them: one call per split). Only a single busy day is paged
    in order, so the longest chain of sequential calls is one day's pages, not a fortnight's.

    An order seen twice (a page boundary shifting while paging) is kept once; each customer's
    orders end sorted by order id, and ``orders_seen`` counts each order once.

    Paging is bounded: a day still full at ``paging.max_pages`` pages, or a full page that
    repeats the one before (a provider ignoring ``page``), raises PermanentError; no page is
    fetched once ``paging.deadline`` has passed (``DeadlineExceeded``).
    """
    max_pages, deadline = paging.max_pages, paging.deadline
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
        check(deadline, f"orders of {first}..{last}")
        records = fetch_page(first, last, 1)
        if len(records) >= page_size and last > first:
            middle = first + (last - first) // 2
            return [(first, middle), (middle + timedelta(days=1), last)]
        take(records)
        page = 1
        while len(records) >= page_size:
            if max_pages is not None and page >= max_pages:
                raise PermanentError(
                    "alleaves", f"orders of {first} still full at {max_pages} pages"
                )
            check(deadline, f"orders of {first}..{last}, page {page + 1}")
            previous = page_ids(records)
            page += 1
            records = fetch_page(first, last, page)
            if records and page_ids(records) == previous:
                raise PermanentError("alleaves", f"orders of {first}: page {page} repeats the last")
            take(records)
        return []

    # Finished reads arrive on a queue: waiting on the pending set instead (``wait``) costs a
    # pass over every pending window per finished one, quadratic in a history's windows.
    finished: SimpleQueue[Future[list[tuple[date, date]]]] = SimpleQueue()
    with ContextThreadPool(max_workers=max(1, paging.parallelism)) as pool:

        def submit(window: tuple[date, date]) -> Future[list[tuple[date, date]]]:
            future = pool.submit(read, window)
            future.add_done_callback(finished.put)
            return future

        index, count = share
        windows = date_windows(window.start, window.end, window.window_days)[index::count]
        pending = {submit(window) for window in windows}
        try:
            while pending:
                future = finished.get()
                pending.discard(future)
                pending.update(submit(half) for half in future.result())
        except BaseException:
            # One window failed the history: the windows not yet started are not read.
            for future in pending:
                future.cancel()
            raise
    history.finish()
    return history
