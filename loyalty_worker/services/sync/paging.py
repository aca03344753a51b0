"""How Alleaves' listings are read: which orders (a window of days, cut into date windows), and
how hard (pages in flight, a page limit, a time budget). Alleaves pages everything, customers
and orders alike, and gives no totals: these bound every read of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from loyalty_worker.services.sync.deadline import Deadline


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """The orders created from ``start`` to ``end`` (inclusive), read in date windows of
    ``window_days`` (``order_history.fetch_order_history``)."""

    start: date
    end: date
    window_days: int


@dataclass(frozen=True, slots=True)
class Paging:
    """At most ``parallelism`` pages in flight, none past ``max_pages`` pages of one listing or
    one day (None: no limit), and none fetched once ``deadline`` has passed."""

    parallelism: int
    max_pages: int | None = None
    deadline: Deadline | None = None
