"""Inputs of a single-customer sync called on its own (another service, a webhook).

Alleaves has neither a get-customer-by-id nor a per-customer order query. The customer is found
by paging the listing (several pages at a time, stopping once found, and never past
``max_pages``: an unknown id fails with "not found within N pages" instead of reading the
whole listing), and the orders come from the ledger the profile keeps plus the orders created
since its last calculation (less an overlap). A customer without a ledger has their orders read
from the day their Alleaves record was created (``date_created``), so a single sync does not
page the org's whole history.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from loyalty_worker.domain.models import Customer
from loyalty_worker.errors import PermanentError
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.sources import CustomerSource
from loyalty_worker.services.sync.deadline import Deadline
from loyalty_worker.services.sync.inputs import (
    PROFILE_FIELDS,
    CustomerWork,
    profile_subset,
    with_ledger,
)
from loyalty_worker.services.sync.listing import customer_pages
from loyalty_worker.services.sync.order_history import fetch_order_history

# Orders are dated in UTC and a record's date_created may be a local day: one day of margin.
CREATED_MARGIN = timedelta(days=1)


def find_customer(
    source: CustomerSource,
    customer_id: int,
    *,
    parallelism: int,
    max_pages: int,
    deadline: Deadline | None = None,
) -> Customer:
    """The customer's Alleaves record, reading the listing only until it shows up, and at most
    ``max_pages`` pages of it."""
    if customer_id <= 0:  # Alleaves ids start at 1; 0 is its anonymous customer
        raise PermanentError("alleaves", f"customer {customer_id} is no customer id")
    pages = 0
    listing = customer_pages(
        source, parallelism=parallelism, max_pages=max_pages, deadline=deadline
    )
    for records in listing:
        pages += 1
        for record in records:
            if isinstance(record, Customer) and record.customer_id == customer_id:
                return record
    if pages >= max_pages:
        raise PermanentError(
            "alleaves", f"customer {customer_id} not found within {max_pages} pages"
        )
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
    max_pages: int,
    deadline: Deadline | None = None,
) -> CustomerWork:
    """The customer, their orders (ledger + recent ones, or all since the customer's
    ``date_created``) and profile; no page is fetched once ``deadline`` has passed."""
    # A few listing pages at a time: the customer is usually found early, and every page
    # fetched past the last one is a wasted call.
    customer = find_customer(
        alleaves,
        customer_id,
        parallelism=min(parallelism, 4),
        max_pages=max_pages,
        deadline=deadline,
    )
    # pointsLastCalculated dates the ledger: only orders created after it (less the overlap)
    # need reading
    fields = (*PROFILE_FIELDS, "pointsLastCalculated")
    profile = store.get_profiles(org_id, [customer_id], fields).get(customer_id)
    ledger = profile.get("loyaltyOrders") if profile else None
    calculated = profile.get("pointsLastCalculated") if profile else None
    start = history_start
    if customer.created_on is not None:  # no order of theirs is older than their record
        start = max(start, customer.created_on - CREATED_MARGIN)
    # the ledger holds the older orders: read only those created since it (less the overlap)
    read_since_ledger = False
    if ledger is not None and isinstance(calculated, datetime):
        since_ledger = calculated.date() - timedelta(days=overlap_days)
        if since_ledger > start:
            start, read_since_ledger = since_ledger, True
    history = fetch_order_history(
        alleaves.fetch_order_page,
        start=start,
        end=today,
        window_days=window_days,
        page_size=alleaves.page_size,
        parallelism=parallelism,
        deadline=deadline,
    )
    orders = history.orders_of(customer_id)
    malformed = tuple(history.malformed.get(customer_id, ()))
    if read_since_ledger and ledger:
        orders, malformed = with_ledger(customer_id, orders, malformed, ledger)
    return CustomerWork(
        customer=customer,
        orders=tuple(orders),
        malformed_orders=malformed,
        profile=profile_subset(profile),
        profile_known=True,
    )
