"""Plan an org's batch: list its customers, read its order history once, hand each its work."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

from loyalty_worker.domain.models import Customer
from loyalty_worker.errors import MalformedRecord
from loyalty_worker.ports import CustomerSource, LoyaltyLookup
from loyalty_worker.services.order_history import OrderHistory, fetch_order_history
from loyalty_worker.services.work import CustomerWork

# A phone no customer can have: the answer (404 or 401) proves the API key before a batch starts.
_PROBE_PHONE = "0000000000"


@dataclass
class RunPlan:
    customers: list[Customer] = field(default_factory=list)
    malformed_customers: list[MalformedRecord] = field(default_factory=list)
    history: OrderHistory = field(default_factory=OrderHistory)

    @property
    def listed(self) -> int:
        return len(self.customers) + len(self.malformed_customers)

    def work(self) -> Iterator[CustomerWork]:
        """Each listed customer with its own orders (and malformed order ids)."""
        for customer in self.customers:
            cid = customer.customer_id
            yield CustomerWork(
                customer=customer,
                orders=tuple(self.history.orders.get(cid, ())),
                malformed_orders=tuple(self.history.malformed.get(cid, ())),
            )


def plan_run(
    alleaves: CustomerSource,
    alpine: LoyaltyLookup,
    *,
    history_start: date,
    today: date,
    window_days: int,
    page_size: int,
    parallelism: int,
) -> RunPlan:
    """Everything a batch needs from Alleaves, customers and orders fetched side by side.

    Raises AuthError (either API) or TransientError before any customer is enqueued, so a wrong
    credential stops the run with one alert instead of a thousand failures.
    """
    alpine.lookup(_PROBE_PHONE)
    plan = RunPlan()
    with ThreadPoolExecutor(max_workers=1) as pool:
        history = pool.submit(
            fetch_order_history,
            alleaves.fetch_order_page,
            start=history_start,
            end=today,
            window_days=window_days,
            page_size=page_size,
            parallelism=parallelism,
        )
        seen: set[int] = set()
        for record in alleaves.iter_customers():
            if isinstance(record, MalformedRecord):
                plan.malformed_customers.append(record)
            elif record.customer_id not in seen:
                seen.add(record.customer_id)
                plan.customers.append(record)
        plan.history = history.result()
    return plan
