"""Plan an org's batch: everything the per-customer syncs need, fetched once, side by side.

Four reads, run in parallel: the customer listing (pages fetched several at a time), the order
history (date windows in parallel), Alpine IQ's contacts listing (every balance in a few pages
instead of one look-up per customer) and then the existing profiles (chunked bulk reads). Each
customer's task gets its share in its message and makes no read of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from loyalty_worker.domain.models import AlpineProfile, Customer
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.errors import MalformedRecord
from loyalty_worker.ports import CustomerSource, LoyaltyLookup, ProfileStore
from loyalty_worker.services.order_history import OrderHistory, fetch_order_history
from loyalty_worker.services.work import AlpineAnswer, CustomerWork

PROFILE_CHUNK = 300

# Phone → the contact's balance; None: the contact exists, but the listing carried no balance.
AlpineBalances = dict[str, AlpineProfile | None]


@dataclass
class RunPlan:
    customers: list[Customer] = field(default_factory=list)
    malformed_customers: list[MalformedRecord] = field(default_factory=list)
    history: OrderHistory = field(default_factory=OrderHistory)
    balances: AlpineBalances = field(default_factory=dict)
    profiles: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def listed(self) -> int:
        return len(self.customers) + len(self.malformed_customers)

    def alpine_answer(self, phone: str | None) -> AlpineAnswer | None:
        """Alpine IQ's answer from the listing, or None when only a look-up can tell."""
        if phone is None or phone not in self.balances:
            # Every loyalty account is a contact: no contact with that phone, no account.
            return AlpineAnswer(None)
        profile = self.balances[phone]
        return AlpineAnswer(profile) if profile is not None else None

    def work(self) -> Iterator[CustomerWork]:
        """Each listed customer with its own orders, Alpine IQ answer and profile."""
        for customer in self.customers:
            cid = customer.customer_id
            yield CustomerWork(
                customer=customer,
                orders=tuple(self.history.orders.get(cid, ())),
                malformed_orders=tuple(self.history.malformed.get(cid, ())),
                alpine=self.alpine_answer(normalize_phone(customer.phone)),
                profile=self.profiles.get(cid),
                profile_known=True,
            )


def list_customers(
    source: CustomerSource, *, parallelism: int
) -> tuple[list[Customer], list[MalformedRecord]]:
    """Every customer, ``parallelism`` pages at a time, until a short page; duplicates dropped.

    Alleaves gives no total, so pages are fetched in rounds: a round with a short (or empty) page
    is the last, at the cost of at most ``parallelism - 1`` empty pages.
    """
    customers: list[Customer] = []
    malformed: list[MalformedRecord] = []
    seen: set[int] = set()
    first = 1
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        while True:
            pages = list(pool.map(source.fetch_customer_page, range(first, first + parallelism)))
            for records in pages:
                for record in records:
                    if isinstance(record, MalformedRecord):
                        malformed.append(record)
                    elif record.customer_id not in seen:
                        seen.add(record.customer_id)
                        customers.append(record)
                if len(records) < source.page_size:
                    return customers, malformed
            first += parallelism


def alpine_balances(alpine: LoyaltyLookup) -> AlpineBalances:
    """Every contact's balance by phone, from the contacts listing (this also proves the key)."""
    balances: AlpineBalances = {}
    for contact in alpine.iter_contacts():
        if contact.phone is not None:
            balances[contact.phone] = contact.profile
    return balances


def read_profiles(
    store: ProfileStore, org_id: str, ids: Sequence[int], *, parallelism: int
) -> dict[int, dict[str, Any]]:
    """The existing profiles of ``ids``, read in parallel chunks."""
    chunks = [ids[i : i + PROFILE_CHUNK] for i in range(0, len(ids), PROFILE_CHUNK)]
    profiles: dict[int, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        for found in pool.map(lambda chunk: store.get_profiles(org_id, chunk), chunks):
            profiles.update(found)
    return profiles


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
) -> RunPlan:
    """Everything a batch needs, read before any customer is enqueued.

    Raises AuthError (either API) or TransientError before any customer is enqueued, so a wrong
    credential stops the run with one alert instead of a thousand failures.
    """
    with ThreadPoolExecutor(max_workers=3) as pool:
        balances = pool.submit(alpine_balances, alpine)
        history = pool.submit(
            fetch_order_history,
            alleaves.fetch_order_page,
            start=history_start,
            end=today,
            window_days=window_days,
            page_size=alleaves.page_size,
            parallelism=parallelism,
        )
        customers, malformed = list_customers(alleaves, parallelism=parallelism)
        profiles = read_profiles(
            store, org_id, [c.customer_id for c in customers], parallelism=parallelism
        )
        return RunPlan(customers, malformed, history.result(), balances.result(), profiles)
