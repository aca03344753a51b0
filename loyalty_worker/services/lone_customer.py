"""Inputs of a single-customer sync called on its own (another service, a webhook).

Alleaves has neither a get-customer-by-id nor a per-customer order query. The customer is found
by paging the listing (several pages at a time, stopping once found), and the orders come from
the ledger the profile keeps plus the orders created since its last calculation (less an
overlap), so a single sync does not page the org's whole history.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from loyalty_worker.domain.models import Customer
from loyalty_worker.domain.points import ledger_orders, merge_orders
from loyalty_worker.errors import PermanentError
from loyalty_worker.ports import CustomerSource, ProfileStore
from loyalty_worker.services.customer_inputs import PROFILE_FIELDS, CustomerWork, profile_subset
from loyalty_worker.services.order_history import fetch_order_history
from loyalty_worker.services.plan import customer_pages


def find_customer(source: CustomerSource, customer_id: int, *, parallelism: int) -> Customer:
    """The customer's Alleaves record, reading the listing only until it shows up."""
    for records in customer_pages(source, parallelism=parallelism):
        for record in records:
            if isinstance(record, Customer) and record.customer_id == customer_id:
                return record
    raise PermanentError("alleaves", f"customer {customer_id} not found")


def find_customer_work(
    org_id: str,
    customer_id: int,
    *,
    alleaves: CustomerSource,
    store: ProfileStore,
    history_start: date,
    today: date,
    window_days: int,
    parallelism: int,
    overlap_days: int,
) -> CustomerWork:
    """The customer, their orders (ledger + recent ones, or the whole history) and profile."""
    # A few listing pages at a time: the customer is usually found early, and every page
    # fetched past the last one is a wasted call.
    customer = find_customer(alleaves, customer_id, parallelism=min(parallelism, 4))
    # pointsLastCalculated dates the ledger: only orders created after it (less the overlap)
    # need reading
    fields = (*PROFILE_FIELDS, "pointsLastCalculated")
    profile = store.get_profiles(org_id, [customer_id], fields).get(customer_id)
    ledger = profile.get("loyaltyOrders") if profile else None
    calculated = profile.get("pointsLastCalculated") if profile else None
    start = history_start
    if ledger is not None and isinstance(calculated, datetime):
        start = max(history_start, calculated.date() - timedelta(days=overlap_days))
    history = fetch_order_history(
        alleaves.fetch_order_page,
        start=start,
        end=today,
        window_days=window_days,
        page_size=alleaves.page_size,
        parallelism=parallelism,
    )
    orders = history.orders_of(customer_id)
    if start > history_start and ledger:
        orders = merge_orders(ledger_orders(customer_id, ledger), orders)
    return CustomerWork(
        customer=customer,
        orders=tuple(orders),
        malformed_orders=tuple(history.malformed.get(customer_id, ())),
        profile=profile_subset(profile),
        profile_known=True,
    )
