"""A run's listing kept as the customers' contacts (``domain.contact``), in the worker.

The planner holds every listed customer's name, e-mail and phone: it writes them to
``loyalty_contacts`` in batches before any work is sent, so no contact detail travels in a
task message or the result backend. After a complete listing (every customer, not a partial
run's selection) the org's contacts this run did not list are deleted: Alleaves no longer
lists those customers. A dry run writes nothing.

A sync merges its fields into the contact only when it writes the profile: a contact new to a
customer whose profile will not change (contacts introduced on an org already synced, or a
customer listed again) would lack them. A full run, which holds the whole history, fills those
from the profiles and the history (``fill_from_profiles``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from loyalty_worker.domain.contact import (
    ContactDocument,
    last_counted_order,
    listed_contact,
    synced_contact,
)
from loyalty_worker.domain.points import calculate_points
from loyalty_worker.services.run.context import Batch
from loyalty_worker.services.run.plan import RunPlan

log = logging.getLogger(__name__)

# Contacts written per call (the store batches them again by Firestore's limit).
CONTACT_BATCH = 500
# The profile's fields a contact takes when no sync has given it them.
PROFILE_PART = ("loyaltyStatus", "pointsFromOrders", "tier")


def record_contacts(batch: Batch, plan: RunPlan, *, now: datetime | None = None) -> None:
    """Write the listed customers' contacts, then delete the unlisted ones' (complete listing)."""
    request, contacts = batch.request, batch.ports.contacts
    if contacts is None or request.dry_run:
        return
    at = now or datetime.now(UTC)
    org_id, run_id = request.org_id, request.run_id
    documents: list[ContactDocument] = [
        listed_contact(
            org_id,
            customer.customer_id,
            name=customer.name,
            last_name=customer.last_name,
            email=customer.email,
            phone=customer.phone,
            run_id=run_id,
            at=at,
        )
        for customer in plan.listing.customers
    ]
    # A record that could not be parsed is still listed: its contact (if any) stays.
    documents += [
        {"orgId": org_id, "customerId": int(record.record_id), "listedRun": run_id, "listedAt": at}
        for record in plan.listing.malformed
        if record.record_id.isdecimal()
    ]
    for start in range(0, len(documents), CONTACT_BATCH):
        contacts.write_contacts(documents[start : start + CONTACT_BATCH])
    if plan.recent_since is None:
        fill_from_profiles(batch, plan)
    if plan.listing.partial:
        return
    gone = contacts.delete_unlisted(org_id, run_id)
    log.info(
        "run %s: org %s: %d contacts kept, %d unlisted deleted",
        run_id,
        org_id,
        len(documents),
        gone,
    )


def fill_from_profiles(batch: Batch, plan: RunPlan) -> None:
    """Give the listed customers' contacts that hold no sync's fields yet those of their
    profile, and the day of their newest counted order from the plan's (whole) history."""
    request, contacts = batch.request, batch.ports.contacts
    if contacts is None:
        return
    org_id = request.org_id
    lacking = contacts.lacking_sync(org_id, [c.customer_id for c in plan.listing.customers])
    if not lacking:
        return
    rules = batch.org.settings.rules()
    profiles = batch.ports.store.get_profiles(org_id, lacking, PROFILE_PART)
    filled: list[ContactDocument] = []
    for cid, profile in profiles.items():
        status, points = profile.get("loyaltyStatus"), profile.get("pointsFromOrders")
        if not isinstance(status, str) or not isinstance(points, int):
            continue
        orders = plan.history.orders_of(cid)
        calculation = calculate_points(orders, rules, equity=False)
        tier = profile.get("tier")
        filled.append(
            synced_contact(
                org_id,
                cid,
                points_from_orders=points,
                loyalty_status=status,
                tier=tier if isinstance(tier, str) else None,
                last_order=last_counted_order(calculation, orders)[0],
                orders_known=True,
            )
        )
    for start in range(0, len(filled), CONTACT_BATCH):
        contacts.write_contacts(filled[start : start + CONTACT_BATCH])
    log.info(
        "run %s: org %s: %d contacts filled from profiles", request.run_id, org_id, len(filled)
    )
