"""A customer's contact details, kept beside the profile in ``loyalty_contacts/{orgId}_{id}``.

Markitbot's profile holds no phone and its fields are fixed (LOYALTY_RULES.md), and Alleaves
has no per-customer read: the run's listing writes each customer's name, e-mail and phone
here (``listed_contact``), and each sync merges what the enrollment list sorts and filters on
(``synced_contact``) in the same batch as the profile.

Neither Alleaves nor Alpine IQ records a customer's marketing consent, so ``marketingConsent``
is never written (absent: unknown).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TypedDict

from loyalty_worker.domain.models import Order, PointsCalculation
from loyalty_worker.domain.phone import Reachability, normalize_phone, reachability

# What Alleaves records for a customer who gave no e-mail, and the first name of a walk-in.
PLACEHOLDER_EMAIL = "no-email@alleaves.local"
WALK_IN_NAME = "guest"


class ContactDocument(TypedDict, total=False):
    """``loyalty_contacts/{orgId}_{customerId}``."""

    orgId: str
    customerId: int
    name: str | None
    email: str | None
    phone: str | None  # ten digits, when Alleaves' phone is a US number
    reachability: str  # of the phone: ``domain.phone.Reachability``
    # ``usable``: a usable phone or an e-mail; else the phone's reachability (``placeholder``,
    # or ``none`` for no phone, an invalid one, and no e-mail): the enrollment list's filter.
    reach: str
    nameKey: str | None  # lowercase full name (prefix search)
    lastNameKey: str | None  # lowercase last name (prefix search)
    emailKey: str | None  # lowercase e-mail (whole)
    marketingConsent: bool | None
    lastOrderAt: str | None  # ISO date of the newest counted order
    lastOrderDay: int  # the same as YYYYMMDD (0: no counted order), the recency sort
    pointsFromOrders: int
    loyaltyStatus: str
    tier: str | None
    listedRun: str
    listedAt: datetime


def contact_id(org_id: str, customer_id: int) -> str:
    """The document id of a customer's contact (the profile's id)."""
    return f"{org_id}_{customer_id}"


def full_name(first: str | None, last: str | None) -> str | None:
    """The customer's name; None for none and for Alleaves' walk-in "guest"."""
    first, last = (first or "").strip(), (last or "").strip()
    if first.lower() == WALK_IN_NAME:
        first = ""
    return " ".join(part for part in (first, last) if part) or None


def clean_email(raw: str | None) -> str | None:
    """The e-mail, or None for none and for Alleaves' placeholder."""
    email = (raw or "").strip()
    if not email or "@" not in email or email.lower() == PLACEHOLDER_EMAIL:
        return None
    return email


def mask_email(email: str | None) -> str | None:
    """An e-mail as a person who may not see contact details sees it: ``a***@example.com``."""
    if not email:
        return email
    local, at, domain = email.partition("@")
    return f"{local[:1]}***{at}{domain}"


def reach_of(phone_reachability: str, email: str | None) -> str:
    """``ContactDocument.reach``: how (whether) the customer can be reached."""
    if phone_reachability == Reachability.USABLE or email:
        return Reachability.USABLE
    if phone_reachability == Reachability.PLACEHOLDER:
        return Reachability.PLACEHOLDER
    return Reachability.NONE


def listed_contact(
    org_id: str,
    customer_id: int,
    *,
    name: str | None,
    last_name: str | None,
    email: str | None,
    phone: str | None,
    run_id: str,
    at: datetime,
) -> ContactDocument:
    """The fields the run's listing writes (``phone`` as Alleaves shows it)."""
    reachable = reachability(phone)
    return {
        "orgId": org_id,
        "customerId": customer_id,
        "name": name,
        "email": email,
        "phone": normalize_phone(phone),
        "reachability": reachable,
        "reach": reach_of(reachable, email),
        "nameKey": name.lower() if name else None,
        "lastNameKey": last_name.strip().lower() if last_name and name else None,
        "emailKey": email.lower() if email else None,
        "listedRun": run_id,
        "listedAt": at,
    }


def synced_contact(
    org_id: str,
    customer_id: int,
    *,
    points_from_orders: int,
    loyalty_status: str,
    tier: str | None,
    last_order: date | None,
    orders_known: bool,
) -> ContactDocument:
    """The fields a sync merges; the last order only when the sync knows it
    (``orders_known``: every counted order's date was read)."""
    fields: ContactDocument = {
        "orgId": org_id,
        "customerId": customer_id,
        "pointsFromOrders": points_from_orders,
        "loyaltyStatus": loyalty_status,
        "tier": tier,
    }
    if orders_known:
        fields["lastOrderAt"] = last_order.isoformat() if last_order else None
        fields["lastOrderDay"] = day_number(last_order)
    return fields


def day_number(day: date | None) -> int:
    """A date as YYYYMMDD (0 for none): sorts as the dates do, and fits a page cursor."""
    return day.year * 10000 + day.month * 100 + day.day if day else 0


def last_counted_order(
    calculation: PointsCalculation, orders: Iterable[Order]
) -> tuple[date | None, bool]:
    """The date of the newest counted order, and whether every counted order's date is known
    (an order the profile's ledger remembers has none)."""
    counted = {order_id for order_id, _ in calculation.counted}
    newest: date | None = None
    known = True
    for order in orders:
        if order.order_id not in counted:
            continue
        if order.placed_on is None:
            known = False
        elif newest is None or order.placed_on > newest:
            newest = order.placed_on
    return newest, known or newest is not None
