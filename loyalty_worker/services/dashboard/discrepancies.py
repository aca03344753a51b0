"""The discrepancies to review: every ``alpine_higher``/``calculated_higher`` customer with the
state of its review, largest gap first or unchanged longest first, filtered by status, tier and
review state, a page at a time.

The open and "all" lists are one ordered query per status, merged, each read in growing batches
from the page's cursor on; each batch's reviews are read by customer id (and those a sync
changed settled). Their totals are aggregation counts (the open one less the reviews stored
acknowledged or resolved: a review a sync changed counts there until its row is next read). The
acknowledged and resolved lists are read whole, from their reviews, which grow with the admins'
work, not with the org.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from pydantic import Field

from loyalty_worker.domain.models import ReconciliationStatus
from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.domain.review import (
    DISCREPANCY_STATUSES,
    REVIEWED_STATES,
    Outcome,
    Review,
    ReviewState,
    reading,
)
from loyalty_worker.ports.dashboard import DashboardStore, KeyValue
from loyalty_worker.services.dashboard.cursors import PageCursor, page_links
from loyalty_worker.services.dashboard.formatting import stamp
from loyalty_worker.services.dashboard.page import ListPage, PageModel
from loyalty_worker.services.dashboard.reviews import seen, settle_reviews

PAGE_SIZE = 50
# A list's later batches (and the CSV's) read up to this many profiles at once.
STREAM_BATCH = 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The profile fields a list's rows show (read alone: a profile's ledger is most of its size).
DISCREPANCY_FIELDS = (
    "alleavesCustomerId", "loyaltyStatus", "tier", "pointsFromOrders", "pointsFromAlpine",
    "loyaltyDiscrepancy", "pointsLastCalculated",
)  # fmt: skip
CSV_COLUMNS = (
    "customerId", "status", "tier", "calculated", "alpine", "discrepancy", "daysOpen",
    "state", "outcome", "comment",
)  # fmt: skip

# Where a row goes in its list (see ``_sort_key``).
Key = tuple[int, int]


class DiscrepancyRow(PageModel):
    """A customer whose balances differ beyond the tolerance, and its review."""

    customer_id: int
    status: str | None = Field(description="alpine_higher | calculated_higher")
    tier: str | None
    calculated: int | None = Field(description="Points from orders.")
    alpine: int | None = Field(description="Alpine IQ's balance.")
    discrepancy: int = Field(description="Alpine IQ minus calculated.")
    days_open: int = Field(description="Days since the discrepancy opened.")
    state: ReviewState = Field(description="The review's state as it reads now.")
    outcome: Outcome | None
    comment: str | None
    reviewed_by: str | None = Field(description="Who moved the review to its state (or sync).")
    reviewed_at: str | None = Field(description="When (ISO 8601).")


class FilterShown(PageModel):
    """The list's filter and order (``state`` null: every state)."""

    status: str | None
    tier: str | None
    state: ReviewState | None
    sort: str


class DiscrepancyPage(ListPage):
    """One page of the discrepancies of a filter."""

    filter: FilterShown
    items: list[DiscrepancyRow]


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    """A discrepancy list's filter, order and page: the same for its page, its JSON route and
    its CSV (which ignores the page)."""

    status: str | None = None
    tier: str | None = None
    state: ReviewState | None = ReviewState.OPEN
    sort: str = "size"
    cursor: PageCursor | None = None
    page_size: int = PAGE_SIZE

    def query(self) -> dict[str, str]:
        """The filter as URL query parameters (the page left out; its size kept when not the
        default, so that a pager link stays on pages of that size)."""
        shown = {
            "status": self.status,
            "tier": self.tier,
            "state": self.state or "all",
            "sort": self.sort,
            "pageSize": str(self.page_size) if self.page_size != PAGE_SIZE else None,
        }
        return {k: v for k, v in shown.items() if v}

    @property
    def statuses(self) -> tuple[str, ...]:
        return (self.status,) if self.status is not None else DISCREPANCY_STATUSES

    @property
    def after(self) -> Key | None:
        """The sort key the page starts after (``size`` stores the gap positive)."""
        if self.cursor is None or self.cursor.after is None:
            return None
        first, customer = self.cursor.after
        return (-first, customer) if self.sort == "size" else (first, customer)

    def stored_key(self, key: Key) -> tuple[int, ...]:
        return (-key[0], key[1]) if self.sort == "size" else key

    def holds(self, profile: ProfileDocument) -> bool:
        """Whether the profile is a discrepancy of this filter's status and tier."""
        status = profile.get("loyaltyStatus")
        if status not in DISCREPANCY_STATUSES:
            return False
        return (self.status is None or status == self.status) and (
            self.tier is None or profile.get("tier") == self.tier
        )


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _customer(profile: ProfileDocument) -> int:
    return int(profile.get("alleavesCustomerId") or 0)


def _sort_key(sort: str, profile: ProfileDocument) -> Key:
    """Where a discrepancy goes in its list: the largest gap first (``size``), or the one
    unchanged the longest first (``age``: by when the profile was last calculated, to the
    microsecond, so that a cursor gives the stamp back exactly); then by customer id."""
    if sort == "size":
        return (-abs(int(profile.get("loyaltyDiscrepancy") or 0)), _customer(profile))
    calculated = stamp(profile.get("pointsLastCalculated"))
    return (_micros(calculated) if calculated else 0, _customer(profile))


def _row(profile: ProfileDocument, review: Review | None, now: datetime) -> DiscrepancyRow:
    """A profile's row, its review as it reads now; open since the review's ``openedAt``, else
    since the profile was last calculated."""
    shown = reading(review, seen(profile))
    # as a person (or a sync) left it: who and when
    kept = review if review is not None and review.state is shown.state else None
    opened = stamp(review.opened_at if review else None) or stamp(
        profile.get("pointsLastCalculated")
    )
    return DiscrepancyRow(
        customer_id=_customer(profile),
        status=profile.get("loyaltyStatus"),
        tier=profile.get("tier"),
        calculated=profile.get("pointsFromOrders"),
        alpine=profile.get("pointsFromAlpine"),
        discrepancy=int(profile.get("loyaltyDiscrepancy") or 0),
        days_open=max((now - opened).days, 0) if opened else 0,
        state=shown.state,
        outcome=shown.outcome,
        comment=shown.comment,
        reviewed_by=kept.updated_by if kept else None,
        reviewed_at=kept.updated_at if kept else None,
    )


@dataclass(frozen=True, slots=True)
class _Listing:
    """One read of a filter's rows: the org, its store, the filter, the time, and (for the CSV)
    every review of the org read up front."""

    org_id: str
    store: DashboardStore
    flt: ReviewFilter
    now: datetime
    known: Mapping[int, Review] | None = None

    def rows(self) -> Iterator[tuple[Key, DiscrepancyRow]]:
        """The filter's rows in its order, from its cursor on, each with its sort key."""
        after = self.flt.after
        if self.flt.state in REVIEWED_STATES:
            return iter([item for item in self.reviewed() if after is None or item[0] > after])
        streams = [self.stream(status, after) for status in self.flt.statuses]
        return heapq.merge(*streams, key=lambda item: item[0])

    def stream(self, status: str, after: Key | None) -> Iterator[tuple[Key, DiscrepancyRow]]:
        """The discrepancies of one status in the list's order, from ``after`` on, with their
        review state: an ordered query read in growing batches (the first one a page and
        one), each batch's reviews read by customer id (or taken from ``known``), those that
        changed settled."""
        flt = self.flt
        order, start = self._order(status, after)
        equals = {"loyaltyStatus": status, **({"tier": flt.tier} if flt.tier else {})}
        batch = flt.page_size + 1
        while True:
            found = self.store.page_profiles(
                self.org_id, equals, order, after=start, limit=batch, fields=DISCREPANCY_FIELDS
            )
            profiles = {_customer(p): p for p in found}
            settled = settle_reviews(
                self.org_id, profiles, self._reviews(list(profiles)), self.store, now=self.now
            )
            for profile in found:
                key = _sort_key(flt.sort, profile)
                if after is not None and key <= after:  # a stamp stored as another type
                    continue
                row = _row(profile, settled.get(_customer(profile)), self.now)
                if flt.state is None or row.state == flt.state:
                    yield key, row
            if len(found) < batch:
                return
            last = found[-1]
            start = (
                (last.get("loyaltyDiscrepancy"), _customer(last))
                if flt.sort == "size"
                else (last.get("pointsLastCalculated"), _customer(last))
            )
            batch = min(batch * 2, STREAM_BATCH)

    def _order(
        self, status: str, after: Key | None
    ) -> tuple[tuple[tuple[str, bool], ...], tuple[KeyValue, ...] | None]:
        """The query's order for ``status``, and where it starts after ``after``."""
        if self.flt.sort == "size":
            # alpine_higher gaps are positive, calculated_higher ones negative: largest first
            # is descending for the one, ascending for the other.
            sign = 1 if status == ReconciliationStatus.ALPINE_HIGHER.value else -1
            order = (("loyaltyDiscrepancy", sign > 0), ("alleavesCustomerId", False))
            return order, None if after is None else (-after[0] * sign, after[1])
        order = (("pointsLastCalculated", False), ("alleavesCustomerId", False))
        return order, None if after is None else (
            EPOCH + timedelta(microseconds=after[0]),
            after[1],
        )

    def _reviews(self, ids: list[int]) -> Mapping[int, Review]:
        if self.known is not None:
            return {cid: self.known[cid] for cid in ids if cid in self.known}
        return self.store.get_reviews(self.org_id, customer_ids=ids) if ids else {}

    def reviewed(self) -> list[tuple[Key, DiscrepancyRow]]:
        """Every row of an ``acknowledged`` or ``resolved`` list, in its order: the reviews
        stored in that state with their customers' profiles, those that changed settled."""
        org_id, store, flt = self.org_id, self.store, self.flt
        reviews = store.get_reviews(org_id, state=flt.state)
        profiles = (
            store.read_profiles(org_id, sorted(reviews), DISCREPANCY_FIELDS) if reviews else {}
        )
        settled = settle_reviews(org_id, profiles, reviews, store, now=self.now)
        rows = []
        for customer_id, review in settled.items():
            profile = profiles.get(customer_id)
            if profile is None or not flt.holds(profile):
                continue
            row = _row(profile, review, self.now)
            if row.state == flt.state:
                rows.append((_sort_key(flt.sort, profile), row))
        rows.sort(key=lambda item: item[0])
        return rows


def _counts(
    org_id: str, store: DashboardStore, flt: ReviewFilter, reads: Executor
) -> tuple[list[Future[int]], list[Future[int]]]:
    """The discrepancies of the filter (aggregation counts, one a status) and, for the open
    list, the reviews stored acknowledged or resolved at one of those statuses (and tier)."""
    scope = {"tier": flt.tier} if flt.tier else {}
    counts = [
        reads.submit(store.count_profiles, org_id, {"loyaltyStatus": status, **scope})
        for status in flt.statuses
    ]
    closed = []
    if flt.state is ReviewState.OPEN:
        closed = [
            reads.submit(
                store.count_reviews, org_id, state=state, loyalty_status=status, tier=flt.tier
            )
            for state in REVIEWED_STATES
            for status in flt.statuses
        ]
    return counts, closed


def discrepancies(
    org_id: str, store: DashboardStore, flt: ReviewFilter, *, now: datetime, reads: Executor
) -> DiscrepancyPage:
    """One page of the customers whose balances differ beyond the threshold, with their review
    state (keyset pagination: no page reads the rows before it); the counts are read on
    ``reads`` beside the page."""
    listing = _Listing(org_id, store, flt, now)
    if flt.state in REVIEWED_STATES:
        rows = listing.reviewed()
        total = len(rows)
        after = flt.after
        page = [item for item in rows if after is None or item[0] > after][: flt.page_size + 1]
    else:
        counts, closed = _counts(org_id, store, flt, reads)
        page = list(itertools.islice(listing.rows(), flt.page_size + 1))
        total = sum(c.result() for c in counts) - sum(c.result() for c in closed)
        total = max(total, 0)
    more = len(page) > flt.page_size
    page = page[: flt.page_size]
    links = page_links(flt.cursor, flt.sort, flt.stored_key(page[-1][0]) if more else None)
    return DiscrepancyPage(
        org_id=org_id,
        total=total,
        page=links.page,
        next=links.next,
        prev=links.prev,
        page_size=flt.page_size,
        pages=max((total + flt.page_size - 1) // flt.page_size, 1),
        filter=FilterShown(status=flt.status, tier=flt.tier, state=flt.state, sort=flt.sort),
        items=[row for _, row in page],
    )


def discrepancy_csv_rows(
    org_id: str, store: DashboardStore, flt: ReviewFilter, *, now: datetime
) -> Iterator[DiscrepancyRow]:
    """Every row of the filter, in its order (the CSV), read batch by batch; the org's reviews
    are read once, up front (the CSV reads every discrepancy anyway)."""
    whole = replace(flt, cursor=None, page_size=STREAM_BATCH)
    known = None if flt.state in REVIEWED_STATES else store.get_reviews(org_id)
    return (row for _, row in _Listing(org_id, store, whole, now, known).rows())
