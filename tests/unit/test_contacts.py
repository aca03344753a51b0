"""Contact details: the phone's reachability rule, names and e-mails as Alleaves sends them,
what a sync merges, the run's listing kept and pruned, and the search over contacts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import cast

import pytest

from loyalty_worker.adapters.wire import parse_customer, parse_order
from loyalty_worker.domain.contact import (
    clean_email,
    full_name,
    last_counted_order,
    listed_contact,
    synced_contact,
)
from loyalty_worker.domain.models import Customer, LoyaltyRules, Order, PointsCalculation
from loyalty_worker.domain.phone import reachability
from loyalty_worker.errors import MalformedRecord
from loyalty_worker.services.dashboard.search import find_customers
from loyalty_worker.services.run.contacts import record_contacts
from loyalty_worker.services.run.context import Batch
from loyalty_worker.services.run.listings import Listing
from loyalty_worker.services.run.plan import RunPlan
from loyalty_worker.services.sync.inputs import CustomerWork
from loyalty_worker.services.sync.order_history import OrderHistory
from tests.fakes import (
    InMemoryContactStore,
    InMemoryDashboardStore,
    InMemoryProfileStore,
    QueryableProfileStore,
)

AT = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "none"),
        ("  ", "none"),
        ("12345", "invalid"),
        ("555-1234", "invalid"),
        ("(107) 708-6718", "invalid"),
        ("707-108-6718", "invalid"),
        ("(707) 708-0000", "placeholder"),
        ("707-708-1234", "placeholder"),
        ("+1 707 708 2345", "placeholder"),
        ("7777777777", "placeholder"),
        ("2345678901", "usable"),
        ("(707) 555-0142", "placeholder"),
        ("(707) 555-0242", "usable"),
        ("+1 (707) 708-6718", "usable"),
    ],
)
def test_reachability_of_a_phone(raw: str | None, expected: str) -> None:
    assert reachability(raw) == expected


def test_walk_ins_have_no_name_and_the_placeholder_email_is_none() -> None:
    assert full_name("guest", "") is None
    assert full_name("Guest", None) is None
    assert full_name(" Maria ", "Lopez") == "Maria Lopez"
    assert clean_email("no-email@alleaves.local") is None
    assert clean_email("NO-EMAIL@alleaves.local") is None
    assert clean_email("") is None
    assert clean_email(" a@b.c ") == "a@b.c"


def test_an_alleaves_row_gives_name_and_email_and_the_task_message_carries_neither() -> None:
    row = {
        "id_customer": 12,
        "name_first": "Maria",
        "name_last": "Lopez",
        "email": "Maria.Lopez@Example.com",
        "phone": "(707) 708-6718",
    }
    customer = parse_customer(row, page=1, position=0)
    assert isinstance(customer, Customer)
    assert (customer.name, customer.last_name, customer.email) == (
        "Maria Lopez",
        "Lopez",
        "Maria.Lopez@Example.com",
    )
    payload = str(CustomerWork(customer).to_payload())
    assert "Maria" not in payload and "Example" not in payload and "6718" in payload


def test_an_order_keeps_its_day_through_a_task_message() -> None:
    row = {"id_order": 5, "id_customer": 12, "status": "completed", "subtotal": "10"}
    order = parse_order({**row, "date_created": "2026-02-03T10:00:00.000Z"}, page=1, position=0)
    assert isinstance(order, Order) and order.placed_on == date(2026, 2, 3)
    work = CustomerWork(Customer(12), orders=(order,))
    assert CustomerWork.from_payload(work.to_payload()).orders == (order,)


def test_the_last_order_is_the_newest_counted_one_and_unknown_without_dates() -> None:
    calc = PointsCalculation(0, 0, 0, 2, Decimal(0), counted=((1, Decimal(1)), (2, Decimal(1))))
    orders = [
        Order(1, 7, "completed", Decimal(1), created_at="2026-01-02T12:00:00Z"),
        Order(2, 7, "completed", Decimal(1), created_at="2026-01-09T12:00:00Z"),
        Order(3, 7, "voided", Decimal(1), created_at="2026-02-01T12:00:00Z"),
    ]
    assert last_counted_order(calc, orders) == (date(2026, 1, 9), True)
    ledger_only = [Order(1, 7, "completed", Decimal(1)), Order(2, 7, "completed", Decimal(1))]
    assert last_counted_order(calc, ledger_only) == (None, False)


def test_reach_is_usable_with_an_email_even_without_a_phone() -> None:
    def reach(phone: str | None, email: str | None) -> str:
        contact = listed_contact(
            "o", 1, name=None, last_name=None, email=email, phone=phone, run_id="r", at=AT
        )
        return contact["reach"]

    assert reach(None, "a@b.c") == "usable"
    assert reach("707-708-0000", None) == "placeholder"
    assert reach("12", None) == "none"
    assert reach("(707) 708-6718", None) == "usable"


def _store_with(names: dict[int, tuple[str, str | None]]) -> InMemoryContactStore:
    contacts = InMemoryContactStore()
    contacts.write_contacts(
        [
            listed_contact(
                "org-1",
                cid,
                name=name,
                last_name=name.split()[-1],
                email=email,
                phone=None,
                run_id="r",
                at=AT,
            )
            for cid, (name, email) in names.items()
        ]
    )
    return contacts


def test_search_finds_a_name_prefix_in_any_case_a_last_name_and_a_whole_email() -> None:
    contacts = _store_with(
        {
            1: ("Maria Lopez", "Maria.Lopez@example.com"),
            2: ("Mark Chen", None),
            3: ("Ana Marsh", None),
        }
    )
    base = QueryableProfileStore()
    base.profiles["org-1_1"] = {"orgId": "org-1", "alleavesCustomerId": 1, "points": 40}
    store = InMemoryDashboardStore(base)

    def found(query: str) -> list[int]:
        answer = find_customers("org-1", query, store, phone_key=None, contacts=contacts)
        return sorted(item.customer_id for item in answer.items)

    assert found("mar") == [1, 2, 3]
    assert found("MARIA l") == [1]
    assert found("marsh") == [3]
    assert found("maria.lopez@EXAMPLE.com") == [1]
    assert found("maria.lopez@example") == []
    answer = find_customers("org-1", "mari", store, phone_key=None, contacts=contacts)
    assert [(item.name, item.points) for item in answer.items] == [("Maria Lopez", 40)]


def _record(
    contacts: InMemoryContactStore,
    customers: list[Customer],
    *,
    run_id: str,
    dry_run: bool = False,
    partial: bool = False,
    malformed: tuple[MalformedRecord, ...] = (),
) -> None:
    batch = SimpleNamespace(
        request=SimpleNamespace(org_id="org-1", run_id=run_id, dry_run=dry_run),
        ports=SimpleNamespace(contacts=contacts),
    )
    # An incremental run's plan: no whole history to fill contacts from.
    plan = SimpleNamespace(
        listing=Listing(customers, malformed, partial=partial), recent_since=date(2026, 2, 1)
    )
    record_contacts(cast(Batch, batch), cast(RunPlan, plan), now=AT)


def test_a_run_keeps_its_listing_and_a_complete_one_drops_the_unlisted() -> None:
    contacts = InMemoryContactStore()
    ana = Customer(1, "(707) 708-6718", name="Ana Reyes", last_name="Reyes", email="a@b.c")
    bo, cy = Customer(2, name="Bo Li", last_name="Li"), Customer(3)
    _record(contacts, [ana, bo, cy], run_id="r1")
    assert contacts.get_contacts("org-1", [1])[1]["phone"] == "7077086718"
    assert contacts.get_contacts("org-1", [1])[1]["nameKey"] == "ana reyes"

    _record(contacts, [ana], run_id="r2", partial=True)  # a partial run deletes nothing
    assert set(contacts.get_contacts("org-1", [1, 2, 3])) == {1, 2, 3}

    _record(contacts, [ana], run_id="r3", dry_run=True)  # a dry run writes nothing
    assert contacts.get_contacts("org-1", [1])[1]["listedRun"] == "r2"

    bad = MalformedRecord("alleaves", "customer", "3", "phone: bad")
    _record(contacts, [ana], run_id="r4", malformed=(bad,))  # listed, if unreadable: kept
    assert set(contacts.get_contacts("org-1", [1, 2, 3])) == {1, 3}


def test_a_full_run_fills_new_contacts_of_unchanged_profiles_from_profile_and_history() -> None:
    profiles = InMemoryProfileStore()
    contacts = InMemoryContactStore(profiles.contacts)
    profiles.profiles["org-1_1"] = {
        "orgId": "org-1",
        "loyaltyStatus": "no_alpine_account",
        "pointsFromOrders": 30,
        "tier": "bronze",
    }
    contacts.write_contacts(  # customer 2 was synced with this feature: left alone
        [
            synced_contact(
                "org-1",
                2,
                points_from_orders=5,
                loyalty_status="matched",
                tier=None,
                last_order=None,
                orders_known=True,
            )
        ]
    )
    history = OrderHistory()
    for order in (
        Order(11, 1, "completed", Decimal(20), created_at="2026-01-05T12:00:00Z"),
        Order(12, 1, "completed", Decimal(10), created_at="2026-02-07T12:00:00Z"),
        Order(13, 1, "voided", Decimal(10), created_at="2026-02-20T12:00:00Z"),
    ):
        history.add(order)
    history.finish()
    batch = SimpleNamespace(
        request=SimpleNamespace(org_id="org-1", run_id="r1", dry_run=False),
        ports=SimpleNamespace(contacts=contacts, store=profiles),
        org=SimpleNamespace(settings=SimpleNamespace(rules=LoyaltyRules)),
    )
    plan = SimpleNamespace(
        listing=Listing([Customer(1, name="Ana Reyes"), Customer(2), Customer(3)]),
        history=history,
        recent_since=None,
    )

    record_contacts(cast(Batch, batch), cast(RunPlan, plan), now=AT)

    found = contacts.get_contacts("org-1", [1, 2, 3])
    assert found[1]["name"] == "Ana Reyes"
    assert (found[1]["loyaltyStatus"], found[1]["pointsFromOrders"]) == ("no_alpine_account", 30)
    assert (found[1]["lastOrderAt"], found[1]["lastOrderDay"]) == ("2026-02-07", 20260207)
    assert found[2]["loyaltyStatus"] == "matched" and found[2]["pointsFromOrders"] == 5
    assert "loyaltyStatus" not in found[3]  # no profile yet: its sync will give them
