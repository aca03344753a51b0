"""The dashboard's services and session over fakes: time zones, charts, CSV, reviews, history,
the signed cookie, the metrics text."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest

from loyalty_worker.api.session import (
    csrf_token,
    csrf_valid,
    new_session_cookie,
    read_session,
)
from loyalty_worker.api.settings import ApiToken
from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.review import Move, ReviewRefused, ReviewState
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.dashboard.csv_export import to_csv
from loyalty_worker.services.dashboard.cursors import MAX_TRAIL, PageCursor
from loyalty_worker.services.dashboard.discrepancies import ReviewFilter, discrepancies
from loyalty_worker.services.dashboard.formatting import (
    bars,
    in_words,
    mask_phone,
    next_nightly,
    number,
)
from loyalty_worker.services.dashboard.metrics import org_samples, render
from loyalty_worker.services.dashboard.no_account import (
    NO_ACCOUNT_SORT,
    no_account,
    no_account_rows,
)
from loyalty_worker.services.dashboard.overview import overview
from loyalty_worker.services.dashboard.page import NotFound, PageModel
from loyalty_worker.services.dashboard.reviews import ReviewChanged, change_review
from loyalty_worker.services.dashboard.search import find_customers
from loyalty_worker.services.sync.customer import evaluate_customer
from tests.fakes import (
    FakeAlpine,
    InMemoryDashboardStore,
    InMemoryProfileStore,
    QueryableProfileStore,
)

TOKEN = "session-caller-Wm3Kd9Qz5Rt1"
OTHER = "other-caller-Bx8Np2Lc6Hv4"
NOW = datetime(2027, 3, 14, 12, 0, tzinfo=UTC)
# The read pool the app hands the services.
READS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-dashboard-read")


def grants() -> tuple[ApiToken, ...]:
    return (
        ApiToken.model_validate({"token": TOKEN, "orgs": ["org-1"]}),
        ApiToken.model_validate({"token": OTHER, "orgs": ["*"]}),
    )


def test_the_next_nightly_run_is_in_the_orgs_zone_across_a_clock_change() -> None:
    tz = ZoneInfo("America/Los_Angeles")
    # 2027-03-14 is the spring-forward day in the US: 02:00 does not exist that night.
    before = datetime(2027, 3, 14, 8, 0, tzinfo=UTC)  # 00:00 PST
    assert next_nightly(before, tz, 2).isoformat().startswith("2027-03-14T02:00")
    after = datetime(2027, 3, 14, 12, 0, tzinfo=UTC)  # 05:00 PDT
    assert next_nightly(after, tz, 2).strftime("%Y-%m-%d %H:%M %Z") == "2027-03-15 02:00 PDT"


def test_phones_are_masked_to_their_last_four_digits() -> None:
    assert mask_phone("(555) 123-4567") == "***-***-4567"
    assert mask_phone(None) == "—"
    assert mask_phone("12") == "***-***-****"


class Cells(PageModel):
    a: str
    b: int
    c_value: str | None


def test_codes_read_in_words_and_numbers_with_thousands_separators() -> None:
    assert in_words("alpine_higher") == "Alpine IQ higher"
    assert in_words("no_alpine_account") == "No Alpine IQ account"
    assert in_words("calculated_higher") == "Orders higher"
    assert in_words("lookup_failed") == "Lookup failed"  # no word kept: spaced, capitalised
    assert in_words(None) == ""
    assert number(1234567) == "1,234,567"
    assert number(-1200, signed=True) == "-1,200"
    assert number(1200, signed=True) == "+1,200"
    assert number(0, signed=True) == "+0"
    assert number(1234.5) == "1,234.50"
    assert number(None) == "—" and number("no account") == "no account"
    assert number(True) == "True"


def test_csv_cells_never_run_as_formulas() -> None:
    text = to_csv([Cells(a="=HYPERLINK(1)", b=-40, c_value=None)], ("a", "b", "cValue"))
    assert text.splitlines() == ["a,b,cValue", "'=HYPERLINK(1),-40,"]


def test_bars_scale_to_the_largest_value() -> None:
    drawn = bars([("a", 10), ("b", 5), ("c", 0)], width=300, height=120)
    assert [b.height for b in drawn] == [100.0, 50.0, 0.0]
    assert bars([]) == []


def test_review_moves_are_checked_stored_and_audited() -> None:
    base = QueryableProfileStore()
    base.profiles["org-1_7"] = {
        "orgId": "org-1",
        "alleavesCustomerId": 7,
        "loyaltyStatus": "calculated_higher",
        "loyaltyDiscrepancy": -90,
    }
    store = InMemoryDashboardStore(base)

    def move(
        customer_id: int, to: str, outcome: str | None = None, comment: str | None = None
    ) -> ReviewChanged:
        return change_review(
            "org-1", customer_id, Move(to, outcome, comment), by="Ana", store=store, now=NOW
        )

    change = move(7, "acknowledged", comment="ignored")
    assert (change.state, change.comment, change.discrepancy) == ("acknowledged", None, -90)
    with pytest.raises(ReviewRefused):
        move(7, "acknowledged")
    with pytest.raises(ReviewRefused):
        move(7, "resolved", "matched")
    with pytest.raises(NotFound, match="unknown customer 8"):
        move(8, "acknowledged")
    move(7, "resolved", "fixed", " ok ")
    audit = store.audit[("org-1", 7)]
    assert [(a.from_state, a.to_state, a.by, a.comment) for a in audit] == [
        ("open", "acknowledged", "Ana", None),
        ("acknowledged", "resolved", "Ana", "ok"),
    ]
    stored = store.reviews[("org-1", 7)]
    assert (stored.state, stored.outcome, stored.opened_at) == (
        "resolved",
        "fixed",
        NOW.isoformat(),
    )
    assert "state" not in base.profiles["org-1_7"]  # never in Markitbot's profile


def test_auto_adjust_is_recorded_in_the_history_entry() -> None:
    org = OrgSettings.parse("org-1", {"autoAdjust": True, "sourceOfTruth": "orders"})
    store = InMemoryProfileStore()
    alpine = FakeAlpine({"5551234567": AlpineProfile(900)})
    work_orders = (Order(1, 42, "completed", Decimal("300")),)
    from loyalty_worker.services.sync.inputs import CustomerWork

    work = CustomerWork(Customer(42, "5551234567"), work_orders)
    evaluation = evaluate_customer(org, work, store=store, alpine=alpine, run_id="r1")
    assert evaluation.update is not None and evaluation.update.history is not None
    assert evaluation.update.history["adjustment"] == {
        "source": "alpine_iq",
        "from": 900,
        "to": 300,
    }


def test_a_session_cookie_is_signed_scoped_and_never_holds_the_token() -> None:
    cookie = new_session_cookie(grants(), TOKEN, "Ana", 1000.0)
    assert TOKEN not in cookie
    session = read_session(grants(), cookie, 1001.0)
    assert session is not None and session.who == "Ana"
    assert session.caller.allows("org-1") and not session.caller.allows("org-2")
    assert read_session(grants(), cookie, 1000.0 + 13 * 3600) is None  # expired
    body, _, mac = cookie.rpartition(".")
    assert read_session(grants(), f"{body}x.{mac}", 1001.0) is None  # tampered
    assert read_session(grants()[1:], cookie, 1001.0) is None  # its token was removed
    token = csrf_token(grants(), session.nonce)
    assert csrf_valid(grants(), session.nonce, token)
    assert not csrf_valid(grants(), session.nonce, "0" * 64)
    assert not csrf_valid(grants(), "", token)


def test_metrics_text_escapes_and_groups() -> None:
    base = QueryableProfileStore()
    base.settings["org-1"] = {}
    base.profiles["org-1_1"] = {"orgId": "org-1", "tier": "gold", "loyaltyStatus": "matched"}
    base.run_summaries["r1"] = {
        "orgId": "org-1",
        "status": "completed",
        "startedAt": 1.0,
        "durationS": 3.5,
        "listed": 1,
        "failedByReason": {'weird"reason': 2},
    }
    samples = org_samples(
        OrgSettings.parse("org-1", {}),
        InMemoryDashboardStore(base),
        nightly_hour=2,
        first_seen=lambda _, oldest: oldest or 0.0,
    )
    text = render(samples).decode()
    assert 'loyalty_customers_by_tier{org="org-1",tier="gold"} 1' in text
    assert 'loyalty_last_run_duration_seconds{org="org-1"} 3.5' in text
    assert 'reason="weird\\"reason"' in text
    assert text.count("# TYPE loyalty_customers_by_tier gauge") == 1


def _discrepant_org(count: int) -> tuple[QueryableProfileStore, InMemoryDashboardStore]:
    base = QueryableProfileStore()
    for cid in range(1, count + 1):
        higher = cid % 3 != 0
        gap = (cid * 37) % 500 + 20
        base.profiles[f"org-1_{cid}"] = {
            "orgId": "org-1",
            "alleavesCustomerId": cid,
            "loyaltyStatus": "alpine_higher" if higher else "calculated_higher",
            "loyaltyDiscrepancy": gap if higher else -gap,
            "tier": "gold" if cid % 2 else "silver",
            "pointsFromOrders": 100,
            "pointsLastCalculated": datetime(2027, 3, 1 + cid % 9, tzinfo=UTC),
        }
    base.profiles["org-1_999"] = {"orgId": "org-1", "alleavesCustomerId": 999}
    return base, InMemoryDashboardStore(base)


def _walk(store: InMemoryDashboardStore, flt: ReviewFilter) -> list[list[int]]:
    """Every page of the list, following its next links (and checking each prev link)."""
    pages: list[list[int]] = []
    cursors: list[str | None] = [None]
    while True:
        token = cursors[-1]
        cursor = PageCursor.decode(token, flt.sort) if token else None
        data = discrepancies("org-1", store, replace(flt, cursor=cursor), now=NOW, reads=READS)
        assert data.page == len(pages) + 1
        assert data.prev == (
            cursors[-2] or PageCursor(flt.sort).encode() if len(cursors) > 1 else None
        )
        pages.append([row.customer_id for row in data.items])
        if data.next is None:
            return pages
        cursors.append(data.next)


def _flat(pages: list[list[int]]) -> list[int]:
    return [cid for page in pages for cid in page]


def test_discrepancies_page_by_keyset_cursor_in_the_lists_order() -> None:
    _, store = _discrepant_org(23)
    everything = discrepancies("org-1", store, ReviewFilter(page_size=100), now=NOW, reads=READS)
    rows = everything.items
    assert everything.total == 23 and everything.next is None
    assert [r.customer_id for r in rows] == [
        r.customer_id for r in sorted(rows, key=lambda r: (-abs(r.discrepancy), r.customer_id))
    ]
    pages = _walk(store, ReviewFilter(page_size=5))
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert _flat(pages) == [r.customer_id for r in rows]
    gold = _walk(store, ReviewFilter(tier="gold", status="alpine_higher", page_size=3))
    assert _flat(gold) == [
        r.customer_id for r in rows if r.tier == "gold" and r.status == "alpine_higher"
    ]


def test_discrepancies_by_age_oldest_first_across_pages() -> None:
    _, store = _discrepant_org(17)
    pages = _walk(store, ReviewFilter(sort="age", page_size=4))
    listed = _flat(pages)
    expected = sorted(
        range(1, 18), key=lambda cid: (datetime(2027, 3, 1 + cid % 9, tzinfo=UTC), cid)
    )
    assert listed == expected


def test_reviewed_discrepancies_merge_into_the_pages_and_the_totals() -> None:
    _, store = _discrepant_org(12)
    for cid in (2, 5, 7):
        change_review("org-1", cid, Move("acknowledged"), by="Ana", store=store, now=NOW)
    resolve = Move("resolved", "fixed", "ok")
    change_review("org-1", 4, resolve, by="Ana", store=store, now=NOW)
    open_pages = _walk(store, ReviewFilter(page_size=3))
    assert sorted(_flat(open_pages)) == [1, 3, 6, 8, 9, 10, 11, 12]
    first = discrepancies("org-1", store, ReviewFilter(page_size=3), now=NOW, reads=READS)
    assert (first.total, first.pages) == (8, 3)
    acked_filter = ReviewFilter(state=ReviewState.ACKNOWLEDGED, page_size=2)
    acked = discrepancies("org-1", store, acked_filter, now=NOW, reads=READS)
    assert acked.total == 3 and len(acked.items) == 2
    every_state = ReviewFilter(state=None, page_size=5)
    assert sorted(_flat(_walk(store, every_state))) == list(range(1, 13))
    assert discrepancies("org-1", store, every_state, now=NOW, reads=READS).total == 12
    # A later sync changes customer 2's gap: it reads open again, in its place by size.
    store.base.profiles["org-1_2"]["loyaltyDiscrepancy"] = 10_000
    top = discrepancies("org-1", store, ReviewFilter(page_size=1), now=NOW, reads=READS)
    assert [r.customer_id for r in top.items] == [2]
    assert store.reviews[("org-1", 2)].state == "open"
    assert store.audit[("org-1", 2)][-1].by == "sync"


def test_no_account_pages_by_customer_id_with_an_aggregation_total() -> None:
    base = QueryableProfileStore()
    for cid in (9, 3, 12, 1, 7, 4, 30):
        base.profiles[f"org-1_{cid}"] = {
            "orgId": "org-1",
            "alleavesCustomerId": cid,
            "loyaltyStatus": "no_alpine_account",
            "pointsFromOrders": cid,
            "loyaltyOrders": {"77": "1.00"},
        }
    base.profiles["org-1_5"] = {"orgId": "org-1", "alleavesCustomerId": 5, "loyaltyStatus": "x"}
    store = InMemoryDashboardStore(base)
    seen: list[int] = []
    cursor = None
    while True:
        data = no_account("org-1", store, cursor=cursor, page_size=3, reads=READS)
        assert data.total == 7 and data.pages == 3
        seen += [row.customer_id for row in data.items]
        if data.next is None:
            break
        cursor = PageCursor.decode(data.next, NO_ACCOUNT_SORT)
    assert seen == [1, 3, 4, 7, 9, 12, 30]
    assert [r.customer_id for r in no_account_rows("org-1", store)] == seen


def test_a_page_cursor_is_checked_when_decoded() -> None:
    cursor = PageCursor("size").next((120, 7)).next((90, 3))
    token = cursor.encode()
    assert PageCursor.decode(token, "size") == cursor
    assert cursor.prev() == PageCursor("size", 2, ((120, 7),))
    nested = base64.urlsafe_b64encode(b"[" * 1400).decode()
    for bad in ("x", token[:-3], "W10", PageCursor("age").next((1, 2)).encode(), nested):
        with pytest.raises(ValueError):
            PageCursor.decode(bad, "size")
    deep = PageCursor("id")
    for n in range(MAX_TRAIL + 5):
        deep = deep.next((n,))
    assert len(deep.trail) == MAX_TRAIL and deep.page == MAX_TRAIL + 6
    assert PageCursor.decode(deep.encode(), "id") == deep
    back = deep
    while (earlier := back.prev()) is not None:
        back = earlier
    assert back.page == 7  # as far back as the trail goes; the first page is linked apart


class SlowCounts(InMemoryDashboardStore):
    """A store whose aggregation queries each take a while, as Firestore's do."""

    def count_profiles(self, org_id: str, equals: Mapping[str, str] | None = None) -> int:
        time.sleep(0.1)
        return super().count_profiles(org_id, equals)

    def sum_profiles(self, org_id: str, field: str) -> int:
        time.sleep(0.1)
        return super().sum_profiles(org_id, field)


T = TypeVar("T")


class CountingPool(ThreadPoolExecutor):
    """The app's executor, counting the reads handed to it."""

    submitted = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_the_overviews_reads_go_side_by_side_on_the_apps_executor() -> None:
    """Before any run the overview sends twelve aggregation queries, all on the executor it is
    given: it waits for the slowest, not for their sum."""
    base = QueryableProfileStore()
    base.profiles["org-1_1"] = {"orgId": "org-1", "tier": "gold", "loyaltyStatus": "matched"}
    org = OrgSettings.parse("org-1", {})
    with CountingPool(max_workers=16) as reads:
        started = time.perf_counter()
        shown = overview(org, SlowCounts(base), now=NOW, nightly_hour=2, reads=reads)
        elapsed = time.perf_counter() - started
    assert reads.submitted == 12  # four tiers, five statuses, the total, two sums
    assert shown.customers == 1 and shown.counts_as_of is None
    assert {t.id: t.count for t in shown.tiers}["gold"] == 1
    assert elapsed < 0.6, elapsed  # twelve reads of 0.1 s each, side by side


def test_a_phone_searched_without_a_phone_hash_key_is_answered_with_why() -> None:
    store = InMemoryDashboardStore(QueryableProfileStore())
    found = find_customers("org-1", "+1 555 123 4567", store, phone_key=None)
    assert found.items == []
    assert found.hint is not None and "LOYALTY_PHONE_HASH_KEY" in found.hint
    assert find_customers("org-1", "Ana Reyes", store, phone_key=None).hint is None
    assert find_customers("org-1", "555 1234", store, phone_key=None).hint is None  # no phone
