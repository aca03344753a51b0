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

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from loyalty_worker.domain.models import Customer
from loyalty_worker.errors import PermanentError
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.sources import CustomerSource
from loyalty_worker.services.sync.inputs import (
    PROFILE_FIELDS,
    CustomerWork,
    profile_subset,
    with_ledger,
)
from loyalty_worker.services.sync.listing import customer_pages
from loyalty_worker.services.sync.order_history import read_orders
from loyalty_worker.services.sync.paging import HistoryWindow, Paging

# Orders are dated in UTC and a record's date_created may be a local day: one day of margin.
CREATED_MARGIN = timedelta(days=1)


def find_customer(source: CustomerSource, customer_id: int, paging: Paging) -> Customer:
    """The customer's Alleaves record, reading the listing only until it shows up, and at most
    ``paging.max_pages`` pages of it."""
    if customer_id <= 0:  # Alleaves ids start at 1; 0 is its anonymous customer
        raise PermanentError("alleaves", f"customer {customer_id} is no customer id")
    pages = 0
    for records in customer_pages(source, paging):
        pages += 1
        for record in records:
            if isinstance(record, Customer) and record.customer_id == customer_id:
                return record
    if paging.max_pages is not None and pages >= paging.max_pages:
        raise PermanentError(
            "alleaves", f"customer {customer_id} not found within {paging.max_pages} pages"
        )
    raise PermanentError("alleaves", f"customer {customer_id} not found")


@dataclass(frozen=True, slots=True)
class LoneSearch:
    """Where and how far a customer synced on its own is looked for: its org's Alleaves and
    profiles, the org's whole order history (``history``: from its first day to tomorrow), the
    overlap re-read before the profile's ledger ends, and the paging (``max_pages``: of the
    customer listing; the orders are read whole, under the same deadline)."""

    alleaves: CustomerSource
    store: ProfileStore
    history: HistoryWindow
    overlap_days: int
    paging: Paging


def find_customer_work(org_id: str, customer_id: int, search: LoneSearch) -> CustomerWork:
    """The customer, their orders (ledger + recent ones, or all since the customer's
    ``date_created``) and profile; no page is fetched once the deadline has passed."""
    paging = search.paging
    # A few listing pages at a time: the customer is usually found early, and every page
    # fetched past the last one is a wasted call.
    listing = replace(paging, parallelism=min(paging.parallelism, 4))
    customer = find_customer(search.alleaves, customer_id, listing)
    # pointsLastCalculated dates the ledger: only orders created after it (less the overlap)
    # need reading
    fields = (*PROFILE_FIELDS, "pointsLastCalculated")
    profile = search.store.get_profiles(org_id, [customer_id], fields).get(customer_id)
    ledger = profile.get("loyaltyOrders") if profile else None
    calculated = profile.get("pointsLastCalculated") if profile else None
    start = search.history.start
    if customer.created_on is not None:  # no order of theirs is older than their record
        start = max(start, customer.created_on - CREATED_MARGIN)
    # the ledger holds the older orders: read only those created since it (less the overlap)
    read_since_ledger = False
    if ledger is not None and isinstance(calculated, datetime):
        since_ledger = calculated.date() - timedelta(days=search.overlap_days)
        if since_ledger > start:
            start, read_since_ledger = since_ledger, True
    window = replace(search.history, start=start)
    history = read_orders(
        search.alleaves, window, Paging(paging.parallelism, None, paging.deadline)
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
