"""Plan an org's batch: everything the per-customer syncs need, fetched once, side by side.

Reads run in parallel: the customer listing (pages fetched several at a time), the order
history (date windows in parallel) and Alpine IQ's contacts listing (which phones have an
account, in a few pages; where a listing carries balances, they spare those customers'
look-ups). Each customer's task gets its share in its message; a customer with an Alpine IQ
account whose balance the listing did not carry is looked up by its task.

The existing profiles are read by the plan only where it can settle customers with them: an
incremental run (chunked bulk reads, for the ledgers and the carried-over customers) and a full
run whose listing carried balances (read a few blocks ahead of the work it sends, so it never
holds them all). Otherwise each chunk task reads its own customers' profiles in one call, so
that the reading is spread over every worker process instead of loading the planner's.

``plan_run`` takes what to read from (``PlanSources``), which history (``PlanWindow``), how hard
(``Paging``) and the run's hooks into it (``PlanHooks``), and gives one ``RunPlan``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import date

from loyalty_worker.domain.models import Customer
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.domain.selection import CustomerSelection
from loyalty_worker.log_context import ContextThreadPool
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.sources import CustomerSource, LoyaltyLookup
from loyalty_worker.services.run.listings import (
    Listing,
    alpine_balances,
    list_customers,
    phones_to_look_up,
)
from loyalty_worker.services.run.profile_reads import ProfileFeed, ProfilesRead, read_profiles
from loyalty_worker.services.sync.inputs import CustomerWork, with_ledger
from loyalty_worker.services.sync.lookups import PlanLookups
from loyalty_worker.services.sync.order_history import OrderHistory, read_orders
from loyalty_worker.services.sync.paging import HistoryWindow, Paging

log = logging.getLogger(__name__)

# The org's orders of a window, however they are read (``services.run.history_slices``).
HistoryReader = Callable[[HistoryWindow], OrderHistory]
# Picks the customers an incremental run leaves as they are (``services.run.memo``): from the
# listing, the recent orders and the day they start.
CarryOver = Callable[[Listing, OrderHistory, date], frozenset[int]]


@dataclass(frozen=True)
class PlanSources:
    """What a plan reads from: the org's Alleaves and Alpine IQ, and Markitbot's profiles."""

    org_id: str
    alleaves: CustomerSource
    alpine: LoyaltyLookup
    store: ProfileStore


@dataclass(frozen=True, slots=True)
class PlanWindow:
    """The history a plan reads: the whole of ``history``, or, for an incremental run, only the
    orders created since ``recent_since`` (the older ones come from the profiles' ledgers)."""

    history: HistoryWindow
    recent_since: date | None = None


@dataclass(frozen=True)
class PlanHooks:
    """The run's parts in its plan: which customers an incremental run carries over, who reads
    the history (None: the planner alone), the pool a full run's look-ups start on while the
    history is read (None: the chunks look the phones up), how pauses are taken, and a partial
    run's selection of customers."""

    carry_over: CarryOver | None = None
    history_reader: HistoryReader | None = None
    lookups: Executor | None = None
    sleep: Callable[[float], None] = time.sleep
    # A partial run's selection: the plan keeps only those of the listed customers.
    selection: CustomerSelection | None = None


NO_HOOKS = PlanHooks()


@dataclass(frozen=True)
class RunPlan:
    """Everything a batch needs, read: the listing, the order history, the profiles the plan
    read itself (all of them ahead for an incremental run, block by block as work is sent for a
    full run whose listing carried balances, or none), and for an incremental run the day its
    history starts (None: the whole of it) and the customers it carries over."""

    listing: Listing
    history: OrderHistory
    profiles: ProfilesRead | ProfileFeed | None = None
    recent_since: date | None = None
    carried: frozenset[int] = frozenset()

    @property
    def listed(self) -> int:
        return self.listing.listed

    def to_sync(self) -> list[Customer]:
        """The listed customers that get a sync (all but the carried ones)."""
        return [c for c in self.listing.customers if c.customer_id not in self.carried]

    def unowned_malformed_orders(self) -> list[str]:
        """Ids of malformed orders that no listed customer will report: those without a
        readable ``id_customer``, and those of a customer the listing does not hold."""
        if self.listing.partial:
            return list(self.history.unowned_malformed)  # the others are not this run's
        listed = {c.customer_id for c in self.listing.customers}
        orphans = [
            order_id
            for customer_id, order_ids in self.history.malformed.items()
            if customer_id not in listed
            for order_id in order_ids
        ]
        return self.history.unowned_malformed + orphans

    def work(self) -> Iterator[CustomerWork]:
        """Each customer to sync with its own orders, Alpine IQ answer and profile.

        Profiles the plan did not read (or a block the feed could not read) are left unknown:
        the customers' chunk tasks read them.
        """
        if isinstance(self.profiles, ProfileFeed):
            for block, profiles in self.profiles:
                for customer in block:
                    yield self._work(customer, profiles)
            return
        read = self.profiles.by_customer if self.profiles is not None else None
        for customer in self.to_sync():
            yield self._work(customer, read)

    def _work(
        self, customer: Customer, profiles: Mapping[int, ProfileDocument] | None
    ) -> CustomerWork:
        cid = customer.customer_id
        profile = profiles.get(cid) if profiles is not None else None
        orders = self.history.orders_of(cid)
        malformed = tuple(self.history.malformed.get(cid, ()))
        ledger = profile.get("loyaltyOrders") if profile is not None else None
        if self.recent_since is not None and ledger:
            orders, malformed = with_ledger(cid, orders, malformed, ledger)
        return CustomerWork(
            customer=customer,
            orders=tuple(orders),
            malformed_orders=malformed,
            alpine=self.listing.alpine_answer(normalize_phone(customer.phone)),
            profile=profile,
            profile_known=profiles is not None,
        )

    def close(self) -> None:
        """Stop reading profiles ahead (a run that ends before its work is all sent)."""
        if isinstance(self.profiles, ProfileFeed):
            self.profiles.close()


def plan_run(
    sources: PlanSources, window: PlanWindow, paging: Paging, hooks: PlanHooks = NO_HOOKS
) -> RunPlan:
    """Everything a batch needs, read before any customer is enqueued.

    An incremental run (``window.recent_since``) reads only the orders created since then; a
    customer's older orders come from the ledger its profile keeps. ``hooks.carry_over`` then
    picks the customers to leave as they are: only the others' profiles are read. Should any
    of those lack a ledger (never synced) and have been created before that day, the whole
    history is read after all.

    Raises AuthError (either API) or TransientError before any customer is enqueued, so a wrong
    credential stops the run with one alert instead of a thousand failures. No listing is read
    past ``paging.max_pages`` pages, and no page is fetched once ``paging.deadline`` has passed
    (``DeadlineExceeded``).
    """
    planner = _Planner(sources, paging, hooks)
    whole, since = window.history, window.recent_since
    if since is None or since <= whole.start:
        return planner.full(whole)
    return planner.incremental(whole, since)


@dataclass(frozen=True)
class _Planner:
    """``plan_run``'s reads, for a full run or an incremental one."""

    sources: PlanSources
    paging: Paging
    hooks: PlanHooks

    def full(self, window: HistoryWindow) -> RunPlan:
        listing, history, feed = self._side_by_side(window, full=True)
        return RunPlan(listing, history, profiles=feed)

    def incremental(self, whole: HistoryWindow, since: date) -> RunPlan:
        listing, history, _ = self._side_by_side(replace(whole, start=since), full=False)
        carry_over = self.hooks.carry_over
        carried = frozenset() if carry_over is None else carry_over(listing, history, since)
        to_sync = [c for c in listing.customers if c.customer_id not in carried]
        sources = self.sources
        profiles = read_profiles(
            sources.store,
            sources.org_id,
            [c.customer_id for c in to_sync],
            parallelism=self.paging.parallelism,
            sleep=self.hooks.sleep,
        )
        recent_since: date | None = since
        if not knows_every_older_order(to_sync, profiles, since):
            log.info(
                "org %s: profiles without an order ledger: reading the whole history",
                sources.org_id,
            )
            recent_since = None
            history = self._read_history(whole)
        return RunPlan(listing, history, ProfilesRead(profiles), recent_since, carried)

    def _read_history(self, window: HistoryWindow) -> OrderHistory:
        reader = self.hooks.history_reader
        if reader is not None:
            return reader(window)
        return read_orders(self.sources.alleaves, window, self.paging)

    def _side_by_side(
        self, window: HistoryWindow, *, full: bool
    ) -> tuple[Listing, OrderHistory, ProfileFeed | None]:
        """The listings and the history of ``window``, read side by side. A full run whose
        contacts listing carried balances starts reading profiles too (``ProfileFeed``), and,
        with a look-up pool, the look-ups its listings call for (``PlanLookups``)."""
        sources, pool_for_lookups = self.sources, self.hooks.lookups
        feed: ProfileFeed | None = None
        lookups: PlanLookups | None = None
        with ContextThreadPool(max_workers=3) as pool:
            contacts = pool.submit(alpine_balances, sources.alpine, self.paging.deadline)
            orders = pool.submit(self._read_history, window)
            customers, malformed = list_customers(sources.alleaves, self.paging)
            selection = self.hooks.selection
            if selection is not None:
                customers, malformed = self._selected(selection, customers), []
            try:
                balances = contacts.result()
                if full and any(p is not None for p in balances.values()):
                    # Balances in the listing: the plan settles the customers it can, so it
                    # reads their profiles, side by side with the history and on as work is sent.
                    feed = ProfileFeed(
                        sources.store, sources.org_id, customers, sleep=self.hooks.sleep
                    )
                if pool_for_lookups is not None and full and not orders.done():
                    phones = phones_to_look_up(customers, balances)
                    lookups = PlanLookups(sources.alpine, pool_for_lookups, phones)
                history = orders.result()
            except BaseException:
                if feed is not None:
                    feed.close()
                raise
            finally:
                if lookups is not None:
                    answered = lookups.stop()
                    log.info(
                        "org %s: %d look-ups answered during the plan", sources.org_id, answered
                    )
        listing = Listing(customers, malformed, balances, lookups, partial=selection is not None)
        return listing, history, feed

    def _selected(self, selection: CustomerSelection, customers: list[Customer]) -> list[Customer]:
        """A partial run's customers: the planner lists them all, the plan keeps these."""
        unlisted = selection.unlisted(customers)
        if unlisted:
            log.warning(
                "org %s: %d customers named are not listed: %s",
                self.sources.org_id,
                len(unlisted),
                ", ".join(str(cid) for cid in unlisted[:20]),
            )
        return selection.pick(customers)


def knows_every_older_order(
    customers: Sequence[Customer], profiles: Mapping[int, ProfileDocument], since: date
) -> bool:
    """Incremental only: every customer's orders before ``since`` are known.

    They are when the profile keeps an order ledger, or when the customer was created since
    that day (so has no older orders).
    """
    return all(
        "loyaltyOrders" in profiles.get(c.customer_id, {})
        or (c.created_on is not None and c.created_on >= since)
        for c in customers
    )
