"""One customer's bad data fails that customer alone, with a reason and its id.

Each case is data a provider (or a hand-edited profile) can really send: an amount too large
for ``Decimal``'s precision, points beyond what Firestore or a JavaScript reader holds, digits
that are not ASCII, a negative discount or refund, a store that refuses one document.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import fakeredis
import pytest

from loyalty_worker.adapters.alleaves import _page_rows
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.adapters.wire import AlpineLoyalty, parse_customer, parse_order
from loyalty_worker.domain.bounds import MAX_AMOUNT, MAX_POINTS, OutOfBounds
from loyalty_worker.domain.models import AlpineProfile, Customer, LoyaltyRules, Order
from loyalty_worker.domain.phone import PhoneHash, normalize_phone
from loyalty_worker.domain.points import calculate_points
from loyalty_worker.domain.profile import ProfileUpdate
from loyalty_worker.domain.results import SyncStatus
from loyalty_worker.errors import MalformedRecord
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.run.batch import start_batch
from loyalty_worker.services.run.closing import summarize_batch as summarize
from loyalty_worker.services.run.context import BatchOptions, RunDispatch, RunPorts, RunRequest
from loyalty_worker.services.run.summary import summary_alert
from loyalty_worker.services.sync.customer import evaluate_customer, sync_chunk, sync_customer
from loyalty_worker.services.sync.inputs import CustomerWork
from tests.fakes import (
    FakeAlleaves,
    FakeAlpine,
    FakeOrg,
    InMemoryProfileStore,
    InMemoryRunPhones,
    RecordingNotifier,
)

ORG = OrgSettings.parse("org-1", {})
GOOD = ("10.00", None, None)


def order_row(order_id: int, subtotal: object = "10.00", **fields: object) -> dict[str, Any]:
    return {
        "id_order": order_id,
        "id_customer": 7,
        "status": "completed",
        "subtotal": subtotal,
        **fields,
    }


def work(customer_id: int, *orders: Order, phone: str | None = None) -> CustomerWork:
    return CustomerWork(Customer(customer_id, phone), tuple(orders))


def completed(order_id: int, customer_id: int, subtotal: str) -> Order:
    return Order(order_id, customer_id, "completed", Decimal(subtotal))


# Parsing: bad numbers are malformed records named by id, never an exception.


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subtotal", "1e30"),  # beyond any order; quantizing its total would raise
        ("subtotal", str(MAX_AMOUNT + 1)),
        ("subtotal", "١٢٣"),  # Arabic-Indic digits: Decimal() reads them
        ("subtotal", "１２"),  # full-width
        ("subtotal", "1_000"),  # Python's digit grouping, not JSON's
        ("subtotal", True),
        ("discount", "-5"),  # minus a negative discount would add to the spend
        ("refunded_amount", -5),
        ("discount", "٥"),
    ],
)
def test_a_bad_amount_makes_the_order_malformed(field: str, value: object) -> None:
    record = parse_order(order_row(11, **{field: value}), page=1, position=0)
    assert isinstance(record, MalformedRecord)
    assert (record.record_id, record.customer_id, record.reason) == ("11", 7, "malformed")
    assert field in record.problem


@pytest.mark.parametrize("order_id", ["²", "٣", 2**63, -1, 0, "12a"])
def test_an_unreadable_order_id_is_reported_by_position(order_id: object) -> None:
    # "²".isdigit() is true, yet int("²") raises: the id reader must not crash the page.
    record = parse_order(order_row(1, id_order=order_id), page=3, position=4)
    assert isinstance(record, MalformedRecord)
    assert record.record_id in ("page 3 #4", str(order_id))


@pytest.mark.parametrize("customer_id", ["٧", "²", 2**64, -3, 0, 1.5, None])
def test_an_unreadable_customer_id_makes_the_customer_malformed(customer_id: object) -> None:
    record = parse_customer({"id_customer": customer_id}, page=2, position=9)
    assert isinstance(record, MalformedRecord)


def test_an_order_with_a_non_ascii_customer_id_is_counted_as_unowned() -> None:
    record = parse_order(order_row(5, id_customer="٧"), page=1, position=0)
    assert isinstance(record, MalformedRecord)
    assert record.customer_id is None


def test_a_page_keyed_by_unicode_digits_is_no_crash() -> None:
    assert _page_rows({"0": {"a": 1}, "²": {"b": 2}}, 1) == [{"a": 1}]


def test_alpine_points_beyond_the_bound_are_malformed() -> None:
    with pytest.raises(ValueError, match="points"):
        AlpineLoyalty.model_validate({"points": MAX_POINTS + 1})
    with pytest.raises(ValueError, match="points"):
        AlpineLoyalty.model_validate({"points": "٥"})


def test_a_phone_in_non_ascii_digits_is_no_phone() -> None:
    assert normalize_phone("٥٥٥١٢٣٤٥٦٧") is None
    assert normalize_phone("５５５１２３４５６７") is None
    assert normalize_phone("555-123-4567") == "5551234567"
    # and the phone hash of such a customer is computed, not a UnicodeEncodeError
    assert PhoneHash.of(normalize_phone("٥٥٥١٢٣٤٥٦٧"), b"k" * 16).value is None


def test_points_beyond_the_bound_raise_out_of_bounds() -> None:
    rules = LoyaltyRules(points_per_dollar=Decimal(1000))
    orders = [completed(i, 1, "999999") for i in range(1, 1100)]
    with pytest.raises(OutOfBounds):
        calculate_points(orders, rules, equity=False)


# Evaluation: one customer fails, with a reason and its id; the others go on.


@pytest.mark.parametrize(
    ("rate", "bad", "alpine", "detail"),
    [
        # an order built past the parser: its spend, quantized to cents, needs 31 digits
        # (Decimal holds 28) and raises InvalidOperation; its points stay 0 at this rate
        ("1e-30", work(2, completed(20, 2, "1e28")), FakeAlpine(), "InvalidOperation"),
        # an Alpine IQ balance beyond int64 (a fake or a future client without the bound)
        (
            "1",
            work(2, phone="5550000002"),
            FakeAlpine({"5550000002": AlpineProfile(2**63)}),
            "Alpine IQ points",
        ),
        # points beyond the bound from orders (each order itself within its bound)
        (
            "1000",
            work(2, *(completed(i, 2, "999999") for i in range(1, 1100))),
            FakeAlpine(),
            "points from orders",
        ),
    ],
)
def test_one_bad_customer_fails_alone_in_its_chunk(
    rate: str, bad: CustomerWork, alpine: FakeAlpine, detail: str
) -> None:
    store = InMemoryProfileStore()
    rules = OrgSettings.parse("org-1", {"pointsPerDollar": rate})
    works = [work(1, completed(10, 1, "5")), bad, work(3, completed(30, 3, "7"))]
    outcome = sync_chunk(rules, works, store=store, alpine=alpine, run_id="r1")
    by_id = {r.customer_id: r for r in outcome.results}
    assert by_id[1].status is SyncStatus.SYNCED
    assert by_id[3].status is SyncStatus.SYNCED
    assert by_id[2].status is SyncStatus.FAILED
    assert by_id[2].reason == "malformed"
    assert detail in (by_id[2].detail or "")
    assert set(store.profiles) == {"org-1_1", "org-1_3"}
    assert outcome.retry == []


def test_an_unexpected_exception_fails_the_customer_as_internal_error() -> None:
    class Broken(FakeAlpine):
        def lookup(self, phone: str) -> AlpineProfile | None:
            raise KeyError("surprise")

    evaluation = evaluate_customer(
        ORG, work(4, phone="5550000004"), store=InMemoryProfileStore(), alpine=Broken()
    )
    assert evaluation.result.status is SyncStatus.FAILED
    assert (evaluation.result.customer_id, evaluation.result.reason) == (4, "internal_error")
    assert "KeyError" in (evaluation.result.detail or "")
    assert evaluation.update is None


class RefusingStore(InMemoryProfileStore):
    """Refuses, with a non-LoyaltyError as an encoder would, any write touching ``bad``."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad = bad

    def write_profiles(self, updates: Sequence[ProfileUpdate]) -> None:
        if any(update.customer_id == self.bad for update in updates):
            raise ValueError("Value out of range: 9223372036854775808")
        super().write_profiles(updates)


def test_a_write_the_store_refuses_fails_that_customer_only() -> None:
    store = RefusingStore(bad=2)
    works = [work(i, completed(i, i, "5")) for i in (1, 2, 3)]
    outcome = sync_chunk(ORG, works, store=store, alpine=FakeAlpine(), run_id="r1")
    by_id = {r.customer_id: r for r in outcome.results}
    assert [by_id[i].status for i in (1, 2, 3)] == [
        SyncStatus.SYNCED,
        SyncStatus.FAILED,
        SyncStatus.SYNCED,
    ]
    assert by_id[2].reason == "malformed"
    assert set(store.profiles) == {"org-1_1", "org-1_3"}


def test_a_single_sync_whose_write_is_refused_fails_with_a_reason() -> None:
    result = sync_customer(
        ORG, work(2, completed(1, 2, "5")), store=RefusingStore(bad=2), alpine=FakeAlpine()
    )
    assert (result.status, result.reason, result.customer_id) == (SyncStatus.FAILED, "malformed", 2)


def test_a_hand_edited_order_ledger_fails_that_customer_in_an_incremental_run() -> None:
    from loyalty_worker.services.run.listings import Listing
    from loyalty_worker.services.run.plan import RunPlan
    from loyalty_worker.services.run.profile_reads import ProfilesRead
    from loyalty_worker.services.sync.order_history import OrderHistory

    plan = RunPlan(
        Listing([Customer(1), Customer(2)]),
        OrderHistory(),
        ProfilesRead({1: {"loyaltyOrders": {"x": "1"}}, 2: {"loyaltyOrders": {"5": "10.00"}}}),
        recent_since=date(2026, 1, 1),
    )
    works = {w.customer.customer_id: w for w in plan.work()}
    assert works[1].malformed_orders
    assert not works[2].malformed_orders
    assert [o.order_id for o in works[2].orders] == [5]


# The run: malformed orders without a customer are counted and reported.


def test_malformed_orders_without_a_customer_are_counted_in_the_summary() -> None:
    day = date(2026, 2, 1)
    orders: list[tuple[date, Order | MalformedRecord]] = [
        (day, completed(1, 1, "10")),
        (day, MalformedRecord("alleaves", "order", "77", "subtotal: missing")),
        (day, MalformedRecord("alleaves", "order", "page 1 #3", "id_order: missing")),
        # a readable customer id that the listing does not hold: nobody else reports it
        (day, MalformedRecord("alleaves", "order", "78", "subtotal: missing", customer_id=99)),
        # a listed customer's: that customer fails with it
        (day, MalformedRecord("alleaves", "order", "79", "subtotal: missing", customer_id=2)),
    ]
    alleaves = FakeAlleaves([Customer(1), Customer(2)], orders)
    store = InMemoryProfileStore()
    store.settings["org-1"] = {}
    ledger = RunTracker(fakeredis.FakeRedis())
    notifier = RecordingNotifier()
    queue: list[list[CustomerWork]] = []
    options = BatchOptions(
        history_start=date(2026, 1, 1), window_days=30, parallelism=2, lock_ttl_s=60, chunk_size=5
    )
    org = FakeOrg(store.get_org_settings("org-1"), alleaves, FakeAlpine())
    start_batch(
        RunRequest("org-1", "r1"),
        org,
        RunPorts(org_for=lambda _: org, store=store, ledger=ledger, options=options),
        RunDispatch(enqueue=queue.append, summarize=lambda _: None),
        today=date(2026, 3, 1),
        sleep=lambda _: None,
    )
    for chunk in queue:
        outcome = sync_chunk(org.settings, chunk, store=store, alpine=org.alpine, run_id="r1")
        ledger.record("r1", {str(r.customer_id): r for r in outcome.results})
    summary = summarize(run_id="r1", ledger=ledger, store=store, notifier=notifier)
    assert summary["unownedMalformedOrders"] == 3
    assert sorted(summary["unownedMalformedOrderIds"]) == ["77", "78", "page 1 #3"]
    assert summary["failedByReason"] == {"malformed": 1}
    alert = summary_alert(summary)
    assert alert.severity == "warning"
    assert any(title == "Malformed orders without a customer" for title, _ in alert.sections)


def test_a_single_sync_with_a_hand_edited_ledger_fails_as_malformed() -> None:
    from datetime import UTC, datetime

    from loyalty_worker.services.sync.lone import LoneSearch, find_customer_work
    from loyalty_worker.services.sync.paging import HistoryWindow, Paging

    store = InMemoryProfileStore()
    store.profiles["org-1_7"] = {
        "loyaltyOrders": {"not-an-id": "1"},
        "pointsLastCalculated": datetime(2026, 2, 20, tzinfo=UTC),
    }
    search = LoneSearch(
        FakeAlleaves([Customer(7)]),
        store,
        history=HistoryWindow(date(2026, 1, 1), date(2026, 3, 1), 30),
        overlap_days=3,
        paging=Paging(2, 3),
    )
    found = find_customer_work("org-1", 7, search)
    assert found.malformed_orders
    result = sync_customer(ORG, found, store=store, alpine=FakeAlpine())
    assert (result.status, result.reason) == (SyncStatus.FAILED, "malformed")


def test_a_single_sync_meeting_an_unexpected_exception_records_a_failure() -> None:
    from loyalty_worker.services.run.jobs import Job, sync_alone
    from loyalty_worker.services.sync.retries import Attempt

    class BrokenListing(FakeAlleaves):
        def fetch_customer_page(self, page: int) -> list[Customer | MalformedRecord]:
            raise ValueError("a page no parser expected")

    ledger = RunTracker(fakeredis.FakeRedis())
    ledger.start("r1", "org-1")
    ledger.set_listed("r1", 1)
    closed: list[str] = []
    ports = RunPorts(
        org_for=lambda org_id: FakeOrg(ORG, BrokenListing([]), FakeAlpine()),
        store=InMemoryProfileStore(),
        ledger=ledger,
        options=BatchOptions(
            history_start=date(2026, 1, 1),
            window_days=30,
            parallelism=2,
            lock_ttl_s=60,
            chunk_size=5,
        ),
    )
    job = Job(ports, InMemoryRunPhones(), Attempt(0, 3), close_run=closed.append)
    result = sync_alone("org-1", 7, run_id="r1", dry_run=False, payload=None, job=job)
    assert (result.status, result.reason) == (SyncStatus.FAILED, "malformed")
    assert "ValueError" in str(result.detail)
    assert closed == ["r1"]  # its result recorded: the run completes
