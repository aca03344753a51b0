"""The enrollment list over the in-memory contact store: order, filters, keyset pages, the CSV
rows and the audit of an export."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

from loyalty_worker.domain.contact import listed_contact, synced_contact
from loyalty_worker.services.dashboard.cursors import PageCursor
from loyalty_worker.services.dashboard.enrollment import (
    EnrollmentFilter,
    audited,
    enrollment,
    enrollment_rows,
)
from tests.fakes import InMemoryContactStore

AT = datetime(2026, 3, 1, tzinfo=UTC)
POOL = ThreadPoolExecutor(2)


def store() -> InMemoryContactStore:
    contacts = InMemoryContactStore()
    rows = {  # id: (phone, email, points, days ago, tier, status)
        1: ("707-708-6718", None, 50, 3, "bronze", "no_alpine_account"),
        2: (None, "b@example.com", 90, 9, "silver", "no_alpine_account"),
        3: ("707-708-0000", None, 70, 1, "bronze", "no_alpine_account"),
        4: ("707-708-6719", "d@example.com", 50, 1, "silver", "no_alpine_account"),
        5: ("707-708-6720", None, 99, 1, "bronze", "matched"),
        6: (None, None, 10, 2, "bronze", "no_alpine_account"),
    }
    for cid, (phone, email, points, days, tier, status) in rows.items():
        contacts.write_contacts(
            [
                listed_contact(
                    "org-1",
                    cid,
                    name=f"N{cid}",
                    last_name=None,
                    email=email,
                    phone=phone,
                    run_id="r",
                    at=AT,
                ),
                synced_contact(
                    "org-1",
                    cid,
                    points_from_orders=points,
                    loyalty_status=status,
                    tier=tier,
                    last_order=date(2026, 3, 1) - timedelta(days=days),
                    orders_known=True,
                ),
            ]
        )
    return contacts


def ids(contacts: InMemoryContactStore, flt: EnrollmentFilter) -> list[int]:
    return [row.customer_id for row in enrollment("org-1", contacts, flt, reads=POOL).items]


def test_reachable_customers_without_an_account_by_points_or_recency() -> None:
    contacts = store()
    assert ids(contacts, EnrollmentFilter()) == [2, 1, 4]
    assert ids(contacts, EnrollmentFilter(sort="recent")) == [4, 1, 2]
    assert ids(contacts, EnrollmentFilter(reach="placeholder")) == [3]
    assert ids(contacts, EnrollmentFilter(reach="none")) == [6]
    assert ids(contacts, EnrollmentFilter(tier="silver")) == [2, 4]
    assert ids(contacts, EnrollmentFilter(tier="silver", sort="recent")) == [4, 2]


def test_pages_follow_their_cursors_both_ways() -> None:
    contacts = store()
    first = enrollment("org-1", contacts, EnrollmentFilter(page_size=2), reads=POOL)
    assert [r.customer_id for r in first.items] == [2, 1] and first.total == 3
    assert first.next is not None and first.prev is None
    cursor = PageCursor.decode(first.next, "points")
    second = enrollment("org-1", contacts, EnrollmentFilter(page_size=2, cursor=cursor), reads=POOL)
    assert [r.customer_id for r in second.items] == [4]
    assert second.next is None and second.prev is not None
    assert second.items[0].phone == "7077086719" and second.items[0].email == "d@example.com"


def test_an_export_is_recorded_with_its_rows_once_sent() -> None:
    contacts = store()
    flt = EnrollmentFilter(tier="silver")
    rows = audited(
        enrollment_rows("org-1", contacts, flt), contacts, org_id="org-1", by="Ana", at=AT, flt=flt
    )
    assert contacts.exports == []
    assert [row.customer_id for row in rows] == [2, 4]
    assert contacts.exports == [
        {
            "orgId": "org-1",
            "by": "Ana",
            "at": AT,
            "rows": 2,
            "filter": "reach=usable&sort=points&tier=silver",
        }
    ]
    page = enrollment("org-1", contacts, flt, reads=POOL)
    assert [(e.by, e.rows) for e in page.exports] == [("Ana", 2)]


def test_a_field_edited_into_another_type_shows_as_missing() -> None:
    contacts = store()
    contacts.documents["org-1_2"].update({"name": 7, "email": ["x"], "tier": None})
    rows = enrollment("org-1", contacts, EnrollmentFilter(), reads=POOL).items
    edited = next(row for row in rows if row.customer_id == 2)
    assert (edited.name, edited.email, edited.tier) == (None, None, None)
