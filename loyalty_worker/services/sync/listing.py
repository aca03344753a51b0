"""The Alleaves customer listing read in rounds of pages (a plan lists every customer, a
customer synced on its own looks for itself)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from loyalty_worker.domain.models import Customer
from loyalty_worker.errors import MalformedRecord, PermanentError
from loyalty_worker.log_context import ContextThreadPool
from loyalty_worker.ports.sources import CustomerSource
from loyalty_worker.services.sync.deadline import check
from loyalty_worker.services.sync.order_history import page_ids
from loyalty_worker.services.sync.paging import Paging

# The first round's pages; later rounds double up to the caller's parallelism.
FIRST_ROUND_PAGES = 4


def customer_pages(
    source: CustomerSource, paging: Paging
) -> Iterator[Sequence[Customer | MalformedRecord]]:
    """The customer listing's pages in order, fetched in parallel rounds.

    Alleaves gives no total, so pages are fetched in rounds and a short (or empty) page is the
    last. Rounds start at 4 pages and double up to ``paging.parallelism``: a small org wastes at
    most a few empty pages, a large one soon reads that many at a time. A caller may stop
    early; ``paging.max_pages`` stops the listing after that many pages (none fetched past it).
    A full page that repeats the one before (a provider ignoring ``page``) raises
    PermanentError rather than being read for ever; no round starts once ``paging.deadline``
    has passed.
    """
    parallelism, max_pages, deadline = paging.parallelism, paging.max_pages, paging.deadline
    first = 1
    size = min(FIRST_ROUND_PAGES, parallelism)
    previous: list[str] | None = None
    with ContextThreadPool(max_workers=parallelism) as pool:
        while True:
            if max_pages is not None:
                size = min(size, max_pages - first + 1)
                if size <= 0:
                    return
            check(deadline, f"customer listing at page {first}")
            pages = list(pool.map(source.fetch_customer_page, range(first, first + size)))
            for number, records in enumerate(pages, start=first):
                ids = page_ids(records)
                if ids and ids == previous:
                    raise PermanentError(
                        "alleaves", f"customer page {number} repeats page {number - 1}"
                    )
                previous = ids
                yield records
                if len(records) < source.page_size:
                    return
            first += size
            size = min(size * 2, parallelism)
