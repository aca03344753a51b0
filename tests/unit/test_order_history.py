"""Order history over date windows: complete, de-duplicated, grouped by customer."""

import itertools
from datetime import date, timedelta
from decimal import Decimal
from threading import Lock

from loyalty_worker.domain.models import Order
from loyalty_worker.errors import MalformedRecord
from loyalty_worker.services.sync.order_history import (
    OrderHistory,
    date_windows,
    fetch_order_history,
)
from loyalty_worker.services.sync.paging import HistoryWindow, Paging


def test_windows_cover_the_range_without_overlap() -> None:
    windows = date_windows(date(2026, 1, 1), date(2026, 3, 1), 30)
    assert windows[0] == (date(2026, 1, 1), date(2026, 1, 30))
    assert windows[-1][1] == date(2026, 3, 1)
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start == end + timedelta(days=1)


def test_history_groups_by_customer_and_drops_anonymous_orders() -> None:
    start = date(2026, 1, 1)
    orders: list[Order | MalformedRecord] = [
        Order(i, i % 3, "completed", Decimal(10)) for i in range(1, 251)
    ]
    orders.append(MalformedRecord("alleaves", "order", "999", "subtotal n/a", customer_id=2))
    dated = {
        o.order_id if isinstance(o, Order) else 999: start + timedelta(days=i % 60)
        for i, o in enumerate(orders)
    }
    calls: list[tuple[date, date, int]] = []
    lock = Lock()

    def fetch_page(a: date, b: date, page: int) -> list[Order | MalformedRecord]:
        with lock:
            calls.append((a, b, page))
        in_range = [
            o for o in orders if a <= dated[o.order_id if isinstance(o, Order) else 999] <= b
        ]
        return in_range[(page - 1) * 10 : page * 10]

    history = fetch_order_history(
        fetch_page, HistoryWindow(start, start + timedelta(days=59), 7), Paging(4), page_size=10
    )
    assert history.orders_seen == 251
    by_customer = {cid: history.orders_of(cid) for cid in history.customer_ids()}
    assert sum(len(v) for v in by_customer.values()) == 250 - 83  # customer 0 dropped
    assert set(by_customer) == {1, 2} and 0 not in history and 1 in history
    assert history.malformed == {2: ["999"]}
    # every day of the range was read by some window
    read_days = {a + timedelta(d) for a, b, _ in calls for d in range((b - a).days + 1)}
    assert read_days == {start + timedelta(d) for d in range(60)}
    assert all(v == sorted(v, key=lambda o: o.order_id) for v in by_customer.values())


def test_a_busy_window_is_split_down_to_days_and_only_a_day_is_paged_in_order() -> None:
    start = date(2026, 1, 1)
    # 8 quiet days with 3 orders each, then one busy day with 45 orders
    day_of: dict[int, date] = {}
    for n in range(1, 25):
        day_of[n] = start + timedelta(days=(n - 1) // 3)
    for n in range(25, 70):
        day_of[n] = start + timedelta(days=8)
    calls: list[tuple[date, date, int]] = []
    lock = Lock()

    def fetch_page(a: date, b: date, page: int) -> list[Order | MalformedRecord]:
        with lock:
            calls.append((a, b, page))
        rows = [Order(n, 1, "completed", Decimal(1)) for n in sorted(day_of) if a <= day_of[n] <= b]
        return list(rows[(page - 1) * 10 : page * 10])

    history = fetch_order_history(
        fetch_page, HistoryWindow(start, start + timedelta(days=13), 14), Paging(4), page_size=10
    )
    assert [o.order_id for o in history.orders_of(1)] == list(range(1, 70))
    # only the busy day itself is read beyond its first page, in order
    paged = sorted((a, b, page) for a, b, page in calls if page > 1)
    busy = start + timedelta(days=8)
    assert paged == [(busy, busy, 2), (busy, busy, 3), (busy, busy, 4), (busy, busy, 5)]


def test_an_order_on_two_pages_is_kept_once_and_counted_once() -> None:
    # The page boundary shifts while paging (an order created meanwhile): order 10 is the last
    # of page 1 and again the first of page 2.
    pages = {
        1: [Order(n, 7, "completed", Decimal(1)) for n in range(1, 11)],
        2: [Order(n, 7, "completed", Decimal(1)) for n in range(10, 15)],
    }
    day = date(2026, 1, 1)
    history = fetch_order_history(
        lambda a, b, page: list(pages.get(page, [])),
        HistoryWindow(day, day, 1),
        Paging(2),
        page_size=10,
    )
    assert [o.order_id for o in history.orders_of(7)] == list(range(1, 15))
    assert history.orders_seen == 14


def test_orders_come_back_exactly_as_read() -> None:
    history = OrderHistory()
    kept = [
        Order(12, 7, "Completed", Decimal("19.990"), Decimal("0.99"), Decimal("1E+1")),
        Order(3, 7, "voided", Decimal("0"), Decimal(0), Decimal(0)),
    ]
    for order in kept:
        history.add(order)
    history.add(Order(5, 7, "odd\x1estatus\x1f", Decimal("2")))
    history.finish()
    orders = history.orders_of(7)
    assert orders[0] == kept[1] and orders[2] == kept[0]  # sorted by id, amounts exact
    assert str(orders[2].subtotal) == "19.990" and orders[2].refunded_amount == 10
    assert orders[1].status == "odd status "  # a separator in a status never counts anyway
    assert history.orders_of(8) == []
