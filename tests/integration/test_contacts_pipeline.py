"""A run keeps the listed customers' contacts; a later full run drops those Alleaves no longer
lists (a real worker, Redis, the sandbox and the emulator)."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty_worker.domain.contact import clean_email, full_name
from loyalty_worker.domain.phone import normalize_phone
from tests.fixtures.pipeline import Stack

pytestmark = pytest.mark.integration


def contact(stack: Stack, org_id: str, customer_id: int) -> dict[str, Any] | None:
    reference = stack.firestore.collection("loyalty_contacts").document(f"{org_id}_{customer_id}")
    snapshot = reference.get()
    return snapshot.to_dict() if snapshot.exists else None


def test_a_run_writes_contacts_and_a_later_full_run_deletes_the_unlisted(stack: Stack) -> None:
    customers = stack.org("org-1")["customers"]
    progress = stack.run("org-1")
    assert progress.status == "completed", progress
    assert progress.summary is not None

    named = emailed = phoned = 0
    for customer in customers:
        got = contact(stack, "org-1", customer["id_customer"])
        assert got is not None, customer["id_customer"]
        name = full_name(customer["name_first"], customer["name_last"])
        assert got["name"] == name
        assert got["email"] == clean_email(customer["email"])
        assert got["phone"] == normalize_phone(customer["phone"])
        assert got["listedRun"] == progress.summary["runId"]
        assert "loyaltyStatus" in got and "pointsFromOrders" in got
        named += name is not None
        emailed += got["email"] is not None
        phoned += got["phone"] is not None
    assert 0 < named < len(customers)  # the walk-ins have none
    assert emailed > 0 and phoned > 0

    gone = customers[7]["id_customer"]
    assert stack.sandbox.remove_customer("org-1", gone) == 1
    second = stack.run("org-1")
    assert second.status == "completed", second
    assert second.summary is not None

    assert contact(stack, "org-1", gone) is None
    kept = contact(stack, "org-1", customers[8]["id_customer"])
    assert kept is not None and kept["listedRun"] == second.summary["runId"]


def test_a_full_run_fills_a_new_contact_of_an_unchanged_profile(stack: Stack) -> None:
    customer = stack.org("org-1")["customers"][20]["id_customer"]
    before = contact(stack, "org-1", customer)
    assert before is not None and "loyaltyStatus" in before
    # As if contacts came after the profile: the contact is gone, the profile will not change.
    stack.firestore.collection("loyalty_contacts").document(f"org-1_{customer}").delete()

    progress = stack.run("org-1")
    assert progress.status == "completed", progress
    assert progress.summary is not None and progress.summary["synced"] == 0

    after = contact(stack, "org-1", customer)
    assert after is not None
    for field in ("loyaltyStatus", "pointsFromOrders", "tier", "lastOrderAt", "lastOrderDay"):
        assert after.get(field) == before.get(field), field
