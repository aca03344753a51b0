"""The customer panel's pieces: the ledger with each order's date, the history entry's diff
(only the fields that changed; the orders added and dropped), when the profile was last synced
(relative, and never before its last change), and thousands separators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from loyalty_worker.adapters.wire import parse_order
from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.points import calculate_points, ledger_entry, ledger_orders, ledger_text
from loyalty_worker.domain.profile import (
    HistoryEntry,
    ProfileDocument,
    ProfileUpdate,
    history_says_something,
    ledger_diff,
    snapshot_changes,
)
from loyalty_worker.domain.results import SyncResult, SyncStatus
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.dashboard.customers import customer_page, history
from loyalty_worker.services.dashboard.formatting import relative_time
from loyalty_worker.services.sync.customer import evaluate_customer
from loyalty_worker.services.sync.inputs import CustomerWork
from loyalty_worker.services.sync.order_history import OrderHistory
from tests.fakes import (
    FakeAlpine,
    InMemoryDashboardStore,
    InMemoryProfileStore,
    QueryableProfileStore,
)

NOW = datetime(2026, 12, 5, 18, 0, tzinfo=UTC)
ORG = OrgSettings.parse("org-1", {"pointsPerDollar": 1, "timezone": "America/Los_Angeles"})


@pytest.mark.parametrize(
    ("ago", "said"),
    [
        (timedelta(seconds=0), "just now"),
        (timedelta(seconds=59), "just now"),
        (timedelta(seconds=-30), "just now"),  # a clock a little ahead
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(minutes=59, seconds=59), "59 minutes ago"),
        (timedelta(hours=1), "1 hour ago"),
        (timedelta(hours=2, minutes=30), "2 hours ago"),
        (timedelta(hours=23, minutes=59), "23 hours ago"),
        (timedelta(days=1), "1 day ago"),
        (timedelta(days=3, hours=5), "3 days ago"),
    ],
)
def test_relative_time_says_how_long_ago(ago: timedelta, said: str) -> None:
    assert relative_time(NOW - ago, NOW) == said


def test_the_ledger_keeps_each_orders_date_and_reads_older_entries() -> None:
    assert ledger_text(Decimal("120.50"), "2026-12-01T18:22:05Z") == "120.50@2026-12-01T18:22:05Z"
    assert ledger_text(Decimal("120.50"), None) == "120.50"
    assert ledger_entry("120.50@2026-12-01T18:22:05Z") == (
        Decimal("120.50"),
        "2026-12-01T18:22:05Z",
    )
    assert ledger_entry("120.50") == (Decimal("120.50"), None)  # written before dates were kept
    with pytest.raises(ValueError):
        ledger_entry("120.50@yesterday")
    orders = ledger_orders(7, {"1": "10@2026-12-01T18:22:05Z", "2": "5"})
    assert [(o.order_id, o.subtotal, o.created_at) for o in orders] == [
        (1, Decimal(10), "2026-12-01T18:22:05Z"),
        (2, Decimal(5), None),
    ]
    # a counted order's date goes into the ledger; an uncounted one is left out
    calc = calculate_points(
        [*orders, Order(3, 7, "pending", Decimal(9), created_at="2026-12-02T00:00:00Z")],
        ORG.rules(),
        equity=False,
    )
    assert calc.counted_at == ((1, "2026-12-01T18:22:05Z"),)


def test_alleaves_order_dates_are_kept_in_utc_through_every_hand_over() -> None:
    raw = {
        "id_order": 5,
        "id_customer": 7,
        "status": "completed",
        "subtotal": "300",
        "date_created": "2026-12-05T09:41:29.123Z",
    }
    order = parse_order(raw, page=1, position=0)
    assert isinstance(order, Order) and order.created_at == "2026-12-05T09:41:29Z"
    local = parse_order({**raw, "date_created": "2026-12-05T01:41:29-08:00"}, page=1, position=0)
    assert isinstance(local, Order) and local.created_at == "2026-12-05T09:41:29Z"
    no_date = parse_order({**raw, "date_created": "soon"}, page=1, position=0)
    assert isinstance(no_date, Order) and no_date.created_at is None
    orders = OrderHistory()
    orders.add(order)
    orders.finish()
    assert orders.orders_of(7) == [order]
    work = CustomerWork(Customer(7), (order, no_date))
    assert CustomerWork.from_payload(work.to_payload()).orders == (order, no_date)


def test_ledger_diff_names_the_orders_added_and_dropped() -> None:
    before = {"10": "50@2026-11-01T10:00:00Z", "11": "20", "12": "5@2026-11-02T10:00:00Z"}
    after = {"10": "50@2026-11-01T10:00:00Z", "12": "5@2026-11-02T10:00:00Z", "9": "300"}
    after["13"] = "300@2026-12-05T09:41:29Z"
    added, dropped = ledger_diff(before, after)
    assert added == [
        {"id": "9", "at": None, "spend": "300"},
        {"id": "13", "at": "2026-12-05T09:41:29Z", "spend": "300"},
    ]
    assert dropped == [{"id": "11", "at": None, "spend": "20"}]
    assert ledger_diff(None, {"1": "2"}) == ([{"id": "1", "at": None, "spend": "2"}], [])
    assert ledger_diff("edited by hand", {}) == ([], [])


def test_snapshot_changes_lists_only_the_fields_that_changed() -> None:
    before = {
        "points": 3253,
        "pointsFromOrders": 2603,
        "pointsFromAlpine": 3253,
        "tier": "platinum",
        "loyaltyStatus": "alpine_higher",
        "loyaltyDiscrepancy": 650,
    }
    after = {**before, "pointsFromOrders": 2903, "loyaltyDiscrepancy": 350}
    assert snapshot_changes(before, after) == [  # type: ignore[arg-type]
        ("pointsFromOrders", 2603, 2903),
        ("loyaltyDiscrepancy", 650, 350),
    ]
    older = {"points": 10, "tier": "bronze"}  # an entry written before the new fields
    assert snapshot_changes(older, after) == [  # type: ignore[arg-type]
        ("points", 10, 3253),
        ("tier", "bronze", "platinum"),
    ]
    assert snapshot_changes(before, before) == []  # type: ignore[arg-type]


def _work(*orders: Order) -> CustomerWork:
    return CustomerWork(Customer(42, "(555) 123-4567", "A-42"), tuple(orders))


def test_a_new_order_writes_an_entry_that_says_what_changed_and_why() -> None:
    store = InMemoryProfileStore()
    alpine = FakeAlpine({"5551234567": AlpineProfile(3253)})
    old = Order(1, 42, "completed", Decimal("2603"), created_at="2026-11-01T10:00:00Z")
    first = evaluate_customer(ORG, _work(old), store=store, alpine=alpine, run_id="r1")
    assert first.update is not None
    store.write_profiles([first.update])
    new = Order(2, 42, "completed", Decimal("300"), created_at="2026-12-05T09:41:29Z")
    second = evaluate_customer(ORG, _work(old, new), store=store, alpine=alpine)
    assert second.update is not None and second.update.history is not None
    entry = second.update.history
    assert entry["ordersAdded"] == [{"id": "2", "at": "2026-12-05T09:41:29Z", "spend": "300"}]
    assert entry["ordersDropped"] == []
    changed = snapshot_changes(entry["before"], entry["after"])
    assert ("pointsFromOrders", 2603, 2903) in changed
    assert "points" not in [name for name, _, _ in changed]  # Alpine IQ's 3253 both times


def test_a_write_that_only_dates_an_older_ledger_has_no_history_entry() -> None:
    store = InMemoryProfileStore()
    alpine = FakeAlpine({"5551234567": AlpineProfile(100)})
    undated = Order(1, 42, "completed", Decimal("100"))
    first = evaluate_customer(ORG, _work(undated), store=store, alpine=alpine)
    assert first.update is not None
    store.write_profiles([first.update])
    dated = Order(1, 42, "completed", Decimal("100"), created_at="2026-11-01T10:00:00Z")
    second = evaluate_customer(ORG, _work(dated), store=store, alpine=alpine)
    assert second.update is not None  # the ledger gains the order's date
    assert second.update.history is None
    entry: HistoryEntry = {"before": {"points": 1}, "after": {"points": 1}}
    assert not history_says_something(entry)
    assert history_says_something(
        {**entry, "ordersDropped": [{"id": "1", "at": None, "spend": "1"}]}
    )


def _dashboard(profile: ProfileDocument) -> InMemoryDashboardStore:
    base = QueryableProfileStore()
    base.profiles["org-1_42"] = {"orgId": "org-1", "alleavesCustomerId": 42, **profile}
    return InMemoryDashboardStore(base)


def test_the_panel_lists_orders_newest_first_and_is_verified_after_its_last_change() -> None:
    changed = NOW - timedelta(hours=2)
    store = _dashboard(
        {
            "points": 3253,
            "pointsFromOrders": 2903,
            "pointsLastCalculated": changed,
            "loyaltyOrders": {
                "1": "2603@2026-11-01T10:00:00Z",
                "2": "300@2026-12-05T09:41:29Z",
                "3": "0.5",
                "4": "bad",
            },
        }
    )
    page = customer_page(ORG, 42, store, now=NOW)
    assert [(o.order_id, o.points, o.created) for o in page.orders] == [
        ("2", 300, "2026-12-05 01:41 PST"),
        ("1", 2603, "2026-11-01 02:00 PST"),
        ("3", 0, None),
    ]
    assert page.last_synced == "2 hours ago"
    assert page.last_verified == page.last_changed == "2026-12-05 08:00 PST"
    assert page.last_synced_at == changed.isoformat()

    class Remembered:
        def recall(self, org_id: str, customer_ids: object) -> dict[int, SyncResult]:
            stamp = (NOW - timedelta(minutes=5)).isoformat()
            return {42: SyncResult("org-1", 42, SyncStatus.UNCHANGED, stamp)}

    # a Sync Now that found nothing to change verified the profile after its last change
    later = customer_page(ORG, 42, store, now=NOW, remembered=Remembered())
    assert later.last_synced == "5 minutes ago"
    assert later.last_verified == "2026-12-05 09:55 PST" and later.last_changed == page.last_changed


def test_the_history_shows_only_what_changed_and_the_orders_added_or_dropped() -> None:
    store = _dashboard({"points": 3253})
    store.history["org-1_42"] = [
        {
            "at": NOW,
            "runId": None,
            "before": {"points": 3253, "pointsFromOrders": 2603, "tier": "gold"},
            "after": {"points": 3253, "pointsFromOrders": 2903, "tier": "gold"},
            "ordersAdded": [{"id": "2", "at": "2026-12-05T09:41:29Z", "spend": "300"}],
            "ordersDropped": [{"id": "7", "at": None, "spend": "12.00"}],
        }
    ]
    (row,) = history(ORG, 42, store, now=NOW).entries
    assert [(c.label, c.from_, c.to) for c in row.changes] == [("Points from orders", 2603, 2903)]
    assert [(o.order_id, o.created) for o in row.orders_added] == [("2", "2026-12-05 01:41 PST")]
    assert [(o.order_id, o.created, o.eligible_spend) for o in row.orders_dropped] == [
        ("7", None, "12.00")
    ]


def test_an_update_without_orders_has_empty_order_lists() -> None:
    update = ProfileUpdate("org-1", 42, {"points": 1}, ())
    entry = update.with_history({"points": 1}, run_id=None, at=NOW).history
    assert entry is not None and entry["ordersAdded"] == [] == entry["ordersDropped"]
