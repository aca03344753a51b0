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
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.errors import MalformedRecord, PermanentError, TransientError
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.sources import CustomerSource, LoyaltyLookup
from loyalty_worker.services.sync.deadline import Deadline, check
from loyalty_worker.services.sync.inputs import (
    PROFILE_FIELDS,
    AlpineAnswer,
    CustomerWork,
    with_ledger,
)
from loyalty_worker.services.sync.listing import customer_pages
from loyalty_worker.services.sync.lookups import PlanLookups
from loyalty_worker.services.sync.order_history import (
    OrderHistory,
    PageFetcher,
    fetch_order_history,
)
from loyalty_worker.services.sync.retries import Retries

log = logging.getLogger(__name__)

PROFILE_CHUNK = 300
PROFILE_READ_PARALLELISM = 8
PROFILE_READ_ATTEMPTS = 4
PROFILE_READS = Retries(PROFILE_READ_ATTEMPTS, first_s=2.0)
# Blocks of profiles a full run reads ahead of the work it sends.
PROFILE_READ_AHEAD = 8

# Phone → the contact's balance; None: the contact exists, but the listing carried no balance.
AlpineBalances = dict[str, AlpineProfile | None]


@dataclass
class RunPlan:
    customers: list[Customer] = field(default_factory=list)
    malformed_customers: list[MalformedRecord] = field(default_factory=list)
    history: OrderHistory = field(default_factory=OrderHistory)
    balances: AlpineBalances = field(default_factory=dict)
    # The profiles read ahead (incremental runs); None: not read by the plan.
    profiles: dict[int, dict[str, Any]] | None = None
    # A full run's profiles, read block by block as ``work()`` goes (instead of ``profiles``).
    feed: ProfileFeed | None = None
    # Incremental: the history holds only orders created since this day; the older ones come
    # from each profile's order ledger.
    recent_since: date | None = None
    # Incremental: customers left as their last sync left them (``services.run.memo``); they get
    # no work and their profiles are not read.
    carried: set[int] = field(default_factory=set)
    # A full run's look-ups made while the history was read (``services.sync.lookups``).
    lookups: PlanLookups | None = None

    def to_sync(self) -> list[Customer]:
        """The listed customers that get a sync (all but the carried ones)."""
        return [c for c in self.customers if c.customer_id not in self.carried]

    def knows_every_older_order(self) -> bool:
        """Incremental only: every customer's orders before ``recent_since`` are known.

        They are when the profile keeps an order ledger, or when the customer was created
        since that day (so has no older orders).
        """
        since, profiles = self.recent_since, self.profiles
        assert since is not None and profiles is not None
        return all(
            "loyaltyOrders" in profiles.get(c.customer_id, {})
            or (c.created_on is not None and c.created_on >= since)
            for c in self.to_sync()
        )

    @property
    def listed(self) -> int:
        return len(self.customers) + len(self.malformed_customers)

    def unowned_malformed_orders(self) -> list[str]:
        """Ids of malformed orders that no listed customer will report: those without a
        readable ``id_customer``, and those of a customer the listing does not hold."""
        listed = {c.customer_id for c in self.customers}
        orphans = [
            order_id
            for customer_id, order_ids in self.history.malformed.items()
            if customer_id not in listed
            for order_id in order_ids
        ]
        return self.history.unowned_malformed + orphans

    def alpine_answer(self, phone: str | None) -> AlpineAnswer | None:
        """Alpine IQ's answer from the listing, or None when only a look-up can tell."""
        if phone is None or phone not in self.balances:
            # Every loyalty account is a contact: no contact with that phone, no account.
            return AlpineAnswer(None)
        profile = self.balances[phone]
        if profile is not None:
            return AlpineAnswer(profile)
        return self.lookups.answer(phone) if self.lookups is not None else None

    def phones_to_look_up(self) -> list[str]:
        """The listed customers' phones that only a look-up can answer, once each."""
        phones = (normalize_phone(c.phone) for c in self.customers)
        wanted = (p for p in phones if p is not None and p in self.balances)
        return [p for p in dict.fromkeys(wanted) if self.balances[p] is None]

    def work(self) -> Iterator[CustomerWork]:
        """Each customer to sync with its own orders, Alpine IQ answer and profile.

        Profiles the plan did not read (or a block the feed could not read) are left unknown:
        the customers' chunk tasks read them.
        """
        if self.feed is None:
            for customer in self.to_sync():
                yield self._work(customer, self.profiles)
            return
        for block, profiles in self.feed:
            for customer in block:
                yield self._work(customer, profiles)

    def _work(
        self, customer: Customer, profiles: Mapping[int, dict[str, Any]] | None
    ) -> CustomerWork:
        cid = customer.customer_id
        profile = profiles.get(cid) if profiles is not None else None
        orders = self.history.orders_of(cid)
        malformed = tuple(self.history.malformed.get(cid, ()))
        ledger = (profile or {}).get("loyaltyOrders")
        if self.recent_since is not None and ledger:
            orders, malformed = with_ledger(cid, orders, malformed, ledger)
        return CustomerWork(
            customer=customer,
            orders=tuple(orders),
            malformed_orders=malformed,
            alpine=self.alpine_answer(normalize_phone(customer.phone)),
            profile=profile,
            profile_known=profiles is not None,
        )

    def close(self) -> None:
        """Stop reading profiles ahead (a run that ends before its work is all sent)."""
        if self.feed is not None:
            self.feed.close()


def list_customers(
    source: CustomerSource,
    *,
    parallelism: int,
    max_pages: int | None = None,
    deadline: Deadline | None = None,
) -> tuple[list[Customer], list[MalformedRecord]]:
    """Every customer and every malformed record of the listing; duplicates dropped.

    A listing still full at ``max_pages`` pages raises PermanentError: a run on part of the
    customers would report the others as nothing at all."""
    customers: list[Customer] = []
    malformed: list[MalformedRecord] = []
    seen: set[int] = set()
    listing = customer_pages(
        source, parallelism=parallelism, max_pages=max_pages, deadline=deadline
    )
    for pages, records in enumerate(listing, start=1):
        if max_pages is not None and pages == max_pages and len(records) >= source.page_size:
            raise PermanentError(
                "alleaves", f"customer listing still full at {max_pages} pages (LOYALTY_MAX_PAGES)"
            )
        for record in records:
            if isinstance(record, MalformedRecord):
                malformed.append(record)
            elif record.customer_id not in seen:
                seen.add(record.customer_id)
                customers.append(record)
    return customers, malformed


def alpine_balances(alpine: LoyaltyLookup, deadline: Deadline | None = None) -> AlpineBalances:
    """Every contact's balance by phone, from the contacts listing (this also proves the key)."""
    balances: AlpineBalances = {}
    for contact in alpine.iter_contacts():
        check(deadline, "Alpine IQ contacts listing")
        if contact.phone is not None:
            balances[contact.phone] = contact.profile
    return balances


def _read_chunk(
    store: ProfileStore,
    org_id: str,
    ids: Sequence[int],
    sleep: Callable[[float], None],
) -> dict[int, dict[str, Any]]:
    """One chunk of profiles, read again after a transient failure (``PROFILE_READS``): one
    slow answer among hundreds must not fail a plan."""
    return PROFILE_READS.call(
        lambda: store.get_profiles(org_id, ids, PROFILE_FIELDS),
        what=f"org {org_id}: profile read",
        sleep=sleep,
    )


def read_profiles(
    store: ProfileStore,
    org_id: str,
    ids: Sequence[int],
    *,
    parallelism: int,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[int, dict[str, Any]]:
    """The existing profiles of ``ids``, read in parallel chunks.

    At most ``PROFILE_READ_PARALLELISM`` reads at once (a wider fan-out only queues at
    Firestore), each chunk read again after a transient failure (``_read_chunk``).
    """
    chunks = [ids[i : i + PROFILE_CHUNK] for i in range(0, len(ids), PROFILE_CHUNK)]
    profiles: dict[int, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=min(parallelism, PROFILE_READ_PARALLELISM)) as pool:
        for found in pool.map(lambda chunk: _read_chunk(store, org_id, chunk, sleep), chunks):
            profiles.update(found)
    return profiles


class ProfileFeed:
    """A full run's profiles, in blocks of ``PROFILE_CHUNK`` customers in listing order, read
    ``PROFILE_READ_AHEAD`` blocks ahead of the consumer (``PROFILE_READ_PARALLELISM`` at once).

    Reading starts at once, beside the order history; the run then holds a few thousand
    profiles at a time instead of all of them (100,000 synced profiles with their order ledgers
    are over 100 MB). A block whose read keeps failing comes as None, so that its customers'
    tasks read their own profiles.
    """

    def __init__(
        self,
        store: ProfileStore,
        org_id: str,
        customers: Sequence[Customer],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._read = lambda ids: _read_chunk(store, org_id, ids, sleep)
        self._org_id = org_id
        self._blocks = deque(
            customers[i : i + PROFILE_CHUNK] for i in range(0, len(customers), PROFILE_CHUNK)
        )
        self._pool = ThreadPoolExecutor(max_workers=PROFILE_READ_PARALLELISM)
        self._pending: deque[tuple[Sequence[Customer], Future[dict[int, dict[str, Any]]]]]
        self._pending = deque()
        for _ in range(PROFILE_READ_AHEAD):
            self._read_next()

    def _read_next(self) -> None:
        if self._blocks:
            block = self._blocks.popleft()
            ids = [c.customer_id for c in block]
            self._pending.append((block, self._pool.submit(self._read, ids)))

    def __iter__(self) -> Iterator[tuple[Sequence[Customer], dict[int, dict[str, Any]] | None]]:
        try:
            while self._pending:
                block, future = self._pending.popleft()
                self._read_next()
                try:
                    profiles: dict[int, dict[str, Any]] | None = future.result()
                except TransientError as exc:
                    log.warning(
                        "org %s: %d profiles unread (%s): their tasks read them",
                        self._org_id,
                        len(block),
                        exc,
                    )
                    profiles = None
                yield block, profiles
        finally:
            self.close()

    def close(self) -> None:
        self._blocks.clear()
        self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def read_orders(
    alleaves: CustomerSource,
    start: date,
    end: date,
    before_page: Callable[[], None] | None = None,
    *,
    window_days: int,
    parallelism: int,
    max_pages: int | None = None,
    deadline: Deadline | None = None,
    share: tuple[int, int] = (0, 1),
) -> OrderHistory:
    """The org's orders created from ``start`` to ``end`` (``services.sync.order_history``, with
    its ``share``), read in this process; ``before_page`` runs before each page is fetched."""
    fetch: PageFetcher = alleaves.fetch_order_page
    if before_page is not None:

        def fetch(first: date, last: date, page: int) -> list[Order | MalformedRecord]:
            before_page()
            return alleaves.fetch_order_page(first, last, page)

    return fetch_order_history(
        fetch,
        start=start,
        end=end,
        window_days=window_days,
        page_size=alleaves.page_size,
        parallelism=parallelism,
        max_pages=max_pages,
        deadline=deadline,
        share=share,
    )


# The org's orders created in [start, end].
HistoryReader = Callable[[date, date], OrderHistory]


def plan_run(
    org_id: str,
    alleaves: CustomerSource,
    alpine: LoyaltyLookup,
    store: ProfileStore,
    *,
    history_start: date,
    today: date,
    window_days: int,
    parallelism: int,
    recent_since: date | None = None,
    carry_over: Callable[[RunPlan], set[int]] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_pages: int | None = None,
    deadline: Deadline | None = None,
    history_reader: HistoryReader | None = None,
    lookups: Executor | None = None,
) -> RunPlan:
    """Everything a batch needs, read before any customer is enqueued.

    With ``recent_since`` (incremental) only the orders created since that day are read; a
    customer's older orders come from the ledger its profile keeps. ``carry_over`` then picks
    the customers to leave as they are (``services.run.memo``): only the others' profiles are read.
    Should any of those lack a ledger (never synced) and have been created before that day,
    the whole history is read after all.

    The history of [start, today] comes from ``history_reader`` (``services.run.history_slices``:
    read by several processes), else it is read here.

    A full run with a ``lookups`` pool starts the Alpine IQ look-ups its listings call for as
    soon as they are in, while the history is still read (``PlanLookups``).

    Raises AuthError (either API) or TransientError before any customer is enqueued, so a wrong
    credential stops the run with one alert instead of a thousand failures. No listing is read
    past ``max_pages`` pages, and no page is fetched once ``deadline`` has passed
    (``DeadlineExceeded``).
    """
    reader: HistoryReader = history_reader or partial(
        read_orders,
        alleaves,
        window_days=window_days,
        parallelism=parallelism,
        max_pages=max_pages,
        deadline=deadline,
    )
    start = history_start if recent_since is None else max(history_start, recent_since)
    incremental = start > history_start
    with ThreadPoolExecutor(max_workers=3) as pool:
        balances = pool.submit(alpine_balances, alpine, deadline)
        orders = pool.submit(reader, start, today)
        customers, malformed = list_customers(
            alleaves, parallelism=parallelism, max_pages=max_pages, deadline=deadline
        )
        plan = RunPlan(customers, malformed)
        try:
            plan.balances = balances.result()
            if not incremental and any(p is not None for p in plan.balances.values()):
                # Balances in the listing: the plan settles the customers it can, so it reads
                # their profiles, side by side with the history and on as work is sent.
                plan.feed = ProfileFeed(store, org_id, customers, sleep=sleep)
            if lookups is not None and not incremental and not orders.done():
                plan.lookups = PlanLookups(alpine, lookups, plan.phones_to_look_up())
            plan.history = orders.result()
        except BaseException:
            plan.close()
            raise
        finally:
            if plan.lookups is not None:
                answered = plan.lookups.stop()
                log.info("org %s: %d look-ups answered during the plan", org_id, answered)
    if incremental:
        plan.recent_since = start
        if carry_over is not None:
            plan.carried = carry_over(plan)
        ids = [c.customer_id for c in plan.to_sync()]
        plan.profiles = read_profiles(store, org_id, ids, parallelism=parallelism, sleep=sleep)
        if not plan.knows_every_older_order():
            log.info("org %s: profiles without an order ledger: reading the whole history", org_id)
            plan.recent_since = None
            plan.history = reader(history_start, today)
    return plan
