"""Inputs of a single-customer sync called on its own (another service, a webhook)."""

from __future__ import annotations

from datetime import date, timedelta

from loyalty_worker.config import Settings
from loyalty_worker.domain.models import Customer
from loyalty_worker.errors import PermanentError
from loyalty_worker.ports import CustomerSource
from loyalty_worker.services.order_history import fetch_order_history
from loyalty_worker.services.work import CustomerWork


def find_customer(alleaves: CustomerSource, customer_id: int) -> Customer:
    """The customer's Alleaves record; Alleaves has no get-by-id, so the listing is paged."""
    for record in alleaves.iter_customers():
        if isinstance(record, Customer) and record.customer_id == customer_id:
            return record
    raise PermanentError("alleaves", f"customer {customer_id} not found")


def find_customer_work(
    alleaves: CustomerSource, customer_id: int, *, settings: Settings
) -> CustomerWork:
    """The customer and their orders, found in the org's order history."""
    customer = find_customer(alleaves, customer_id)
    history = fetch_order_history(
        alleaves.fetch_order_page,
        start=settings.order_history_start,
        end=date.today() + timedelta(days=1),
        window_days=settings.order_window_days,
        page_size=alleaves.page_size,
        parallelism=settings.order_fetch_parallelism,
    )
    return CustomerWork(
        customer=customer,
        orders=tuple(history.orders.get(customer_id, ())),
        malformed_orders=tuple(history.malformed.get(customer_id, ())),
    )
