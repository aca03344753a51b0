"""A run's listing kept as the customers' contacts (``domain.contact``), in the worker.

The planner holds every listed customer's name, e-mail and phone: it writes them to
``loyalty_contacts`` in batches before any work is sent, so no contact detail travels in a
task message or the result backend. After a complete listing (every customer, not a partial
run's selection) the org's contacts this run did not list are deleted: Alleaves no longer
lists those customers. A dry run writes nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from loyalty_worker.domain.contact import ContactDocument, listed_contact
from loyalty_worker.services.run.context import Batch
from loyalty_worker.services.run.plan import RunPlan

log = logging.getLogger(__name__)

# Contacts written per call (the store batches them again by Firestore's limit).
CONTACT_BATCH = 500


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
