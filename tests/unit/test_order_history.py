"""Order history over date windows: complete, de-duplicated, grouped by customer."""

import itertools
from datetime import date, timedelta
from decimal import Decimal
from threading import Lock

from loyalty_worker.domain.models import Order
from loyalty_worker.errors import MalformedRecord
from loyalty_worker.services.order_history import date_windows, fetch_order_history


def test_windows_cover_the_range_without_overlap() -> None:
    windows = date_windows(date(2026, 1, 1), date(2026, 3, 1), 30)
    assert windows[0] == (date(2026, 1, 1), date(2026, 1, 30))
    assert windows[-1][1] == date(2026, 3, 1)
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start == end + timedelta(days=1)


def test_history_groups_by_customer_and_drops_anonymous_orders() -> None:
    start = date(2026, 1, 1)
    orders: list[Order | MalformedRecord] = [
        Order(i, i % 3, "completed", Decimal(10), updated_at=None) for i in range(1, 251)
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
        fetch_page,
        start=start,
        end=start + timedelta(days=59),
        window_days=7,
        page_size=10,
        parallelism=4,
    )
    assert history.orders_seen == 251
    assert sum(len(v) for v in history.orders.values()) == 250 - 83  # customer 0 dropped
    assert set(history.orders) == {1, 2}
    assert history.malformed == {2: ["999"]}
    assert len({(a, b) for a, b, _ in calls}) == len(date_windows(start, start + timedelta(59), 7))
