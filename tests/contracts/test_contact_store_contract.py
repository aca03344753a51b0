"""One set of ContactStore checks, run over the in-memory fake and the Firestore store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from google.cloud import firestore

from loyalty_worker.adapters.contacts import FirestoreContactStore
from loyalty_worker.adapters.firestore import FirestoreProfileStore
from loyalty_worker.domain.contact import ContactDocument, listed_contact, synced_contact
from loyalty_worker.domain.profile import ProfileDocument, ProfileUpdate
from loyalty_worker.ports.contacts import ContactStore
from loyalty_worker.ports.profiles import ProfileStore
from tests.fakes import InMemoryContactStore, InMemoryProfileStore

ORG = "org-contacts"
AT = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["fake", pytest.param("firestore", marks=pytest.mark.integration)])
def stores(request: pytest.FixtureRequest) -> tuple[ContactStore, ProfileStore]:
    if request.param == "fake":
        profiles = InMemoryProfileStore()
        return InMemoryContactStore(profiles.contacts), profiles
    client = cast(firestore.Client, request.getfixturevalue("firestore_client"))
    return FirestoreContactStore(client), FirestoreProfileStore(client)


def listed(cid: int, name: str | None, *, run: str = "run-1", org: str = ORG) -> ContactDocument:
    last = name.split()[-1] if name else None
    email = f"{name.split()[0].lower()}@example.com" if name else None
    return listed_contact(
        org,
        cid,
        name=name,
        last_name=last,
        email=email,
        phone=f"(707) 708-{cid:04d}",
        run_id=run,
        at=AT,
    )


def synced(cid: int, points: int, day: int, tier: str = "bronze") -> ContactDocument:
    return synced_contact(
        ORG,
        cid,
        points_from_orders=points,
        loyalty_status="no_alpine_account",
        tier=tier,
        last_order=(AT - timedelta(days=day)).date(),
        orders_known=True,
    )


def test_written_contacts_read_back_by_id_and_other_orgs_are_apart(
    stores: tuple[ContactStore, ProfileStore],
) -> None:
    contacts, _ = stores
    contacts.write_contacts([listed(1, "Maria Lopez"), listed(2, None), listed(1, "X Y", org="o2")])

    found = contacts.get_contacts(ORG, [1, 2, 3])

    assert set(found) == {1, 2}
    assert found[1]["name"] == "Maria Lopez"
    assert found[1]["email"] == "maria@example.com"
    assert found[1]["phone"] == "7077080001"
    assert found[1]["nameKey"] == "maria lopez"
    assert found[2]["name"] is None


def test_a_profile_write_merges_its_contact_part_and_keeps_the_details(
    stores: tuple[ContactStore, ProfileStore],
) -> None:
    contacts, profiles = stores
    contacts.write_contacts([listed(5, "Ana Reyes")])
    update = ProfileUpdate(
        ORG, 5, cast(ProfileDocument, {"orgId": ORG, "points": 3}), (), contact=synced(5, 42, 3)
    )

    profiles.write_profiles([update])

    found = contacts.get_contacts(ORG, [5])[5]
    assert found["name"] == "Ana Reyes"
    assert found["pointsFromOrders"] == 42
    assert found["lastOrderAt"] == "2026-02-26"
    assert found["lastOrderDay"] == 20260226


def test_prefix_search_finds_full_and_last_names_and_equality_finds_an_email(
    stores: tuple[ContactStore, ProfileStore],
) -> None:
    contacts, _ = stores
    contacts.write_contacts(
        [listed(1, "Maria Lopez"), listed(2, "Mark Martinez"), listed(3, "Noah Marsh")]
    )

    by_name = contacts.find_by_prefix(ORG, "nameKey", "mar", limit=10)
    by_last = contacts.find_by_prefix(ORG, "lastNameKey", "mar", limit=10)
    by_email = contacts.find_equal(ORG, "emailKey", "noah@example.com", limit=10)

    assert [c["customerId"] for c in by_name] == [1, 2]
    assert [c["customerId"] for c in by_last] == [3, 2]
    assert [c["customerId"] for c in by_email] == [3]


def test_pages_follow_the_order_from_a_cursor_and_count(
    stores: tuple[ContactStore, ProfileStore],
) -> None:
    contacts, _ = stores
    contacts.write_contacts([listed(cid, f"N{cid} L{cid}") for cid in range(1, 6)])
    contacts.write_contacts(
        [synced(1, 50, 1), synced(2, 90, 4), synced(3, 50, 2, "gold"), synced(4, 10, 9)]
    )
    equals = {"loyaltyStatus": "no_alpine_account", "reach": "usable"}
    order = (("pointsFromOrders", True), ("customerId", False))

    first = contacts.page_contacts(ORG, equals, order, limit=2)
    second = contacts.page_contacts(ORG, equals, order, after=(50, 1), limit=2)
    recent = contacts.page_contacts(
        ORG, equals, (("lastOrderDay", True), ("customerId", False)), limit=10
    )
    gold = contacts.page_contacts(ORG, {**equals, "tier": "gold"}, order, limit=10)

    assert [c["customerId"] for c in first] == [2, 1]
    assert [c["customerId"] for c in second] == [3, 4]
    assert [c["customerId"] for c in recent] == [1, 3, 2, 4]
    assert [c["customerId"] for c in gold] == [3]
    assert contacts.count_contacts(ORG, equals) == 4


def test_delete_unlisted_removes_only_the_org_contacts_another_run_listed(
    stores: tuple[ContactStore, ProfileStore],
) -> None:
    contacts, _ = stores
    contacts.write_contacts([listed(1, "A B"), listed(2, "C D"), listed(3, "E F", org="o2")])
    contacts.write_contacts([listed(1, "A B", run="run-2")])

    gone = contacts.delete_unlisted(ORG, "run-2")

    assert gone == 1
    assert set(contacts.get_contacts(ORG, [1, 2])) == {1}
    assert set(contacts.get_contacts("o2", [3])) == {3}


def test_exports_are_recorded_and_read_newest_first(
    stores: tuple[ContactStore, ProfileStore],
) -> None:
    contacts, _ = stores
    for hours in (1, 3, 2):
        contacts.record_export(
            {
                "orgId": ORG,
                "by": "ann",
                "at": AT + timedelta(hours=hours),
                "rows": hours,
                "filter": "",
            }
        )

    latest = contacts.latest_exports(ORG, limit=2)

    assert [record["rows"] for record in latest] == [3, 2]
    since = contacts.latest_exports(ORG, limit=5, since=AT + timedelta(hours=2))
    assert [record["rows"] for record in since] == [3, 2]


def test_the_sweep_deletes_only_export_records_older_than_its_cutoff(
    stores: tuple[ContactStore, ProfileStore],
) -> None:
    contacts, _ = stores
    for org, days in ((ORG, 800), (ORG, 731), ("o2", 900), (ORG, 729), ("o2", 1)):
        at = AT - timedelta(days=days)
        contacts.record_export({"orgId": org, "by": "ann", "at": at, "rows": days, "filter": ""})
    cutoff = AT - timedelta(days=730)

    assert contacts.delete_exports_before(cutoff, limit=2) == 2
    assert contacts.delete_exports_before(cutoff, limit=500) == 1
    assert contacts.delete_exports_before(cutoff, limit=500) == 0
    kept = [r["rows"] for org in (ORG, "o2") for r in contacts.latest_exports(org, limit=9)]
    assert kept == [729, 1]


@pytest.mark.integration
def test_an_export_record_is_written_with_its_expiry(firestore_client: firestore.Client) -> None:
    contacts = FirestoreContactStore(firestore_client, retention=timedelta(days=30))
    contacts.record_export({"orgId": ORG, "by": "ann", "at": AT, "rows": 1, "filter": ""})

    (stored,) = [s.to_dict() or {} for s in firestore_client.collection("loyalty_exports").stream()]

    assert stored["expireAt"] == AT + timedelta(days=30)


def test_lacking_sync_names_the_contacts_no_sync_has_filled(
    stores: tuple[ContactStore, ProfileStore],
) -> None:
    contacts, _ = stores
    contacts.write_contacts([listed(1, "A B"), listed(2, "C D"), synced(2, 5, 1)])

    assert contacts.lacking_sync(ORG, [1, 2, 3]) == [1, 3]
