"""The dashboard's services and session over fakes: time zones, charts, CSV, reviews, history,
the signed cookie, the metrics text."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
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
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.dashboard import views
from loyalty_worker.services.dashboard.metrics import metrics_text
from loyalty_worker.services.sync.customer import evaluate_customer
from tests.fakes import (
    FakeAlpine,
    InMemoryDashboardStore,
    InMemoryProfileStore,
    QueryableProfileStore,
)

TOKEN = "session-token-Wm3Kd9Qz5Rt1"
OTHER = "session-token-Bx8Np2Lc6Hv4"
NOW = datetime(2027, 3, 14, 12, 0, tzinfo=UTC)


def grants() -> tuple[ApiToken, ...]:
    return (
        ApiToken.model_validate({"token": TOKEN, "orgs": ["org-1"]}),
        ApiToken.model_validate({"token": OTHER, "orgs": ["*"]}),
    )


def test_the_next_nightly_run_is_in_the_orgs_zone_across_a_clock_change() -> None:
    tz = ZoneInfo("America/Los_Angeles")
    # 2027-03-14 is the spring-forward day in the US: 02:00 does not exist that night.
    before = datetime(2027, 3, 14, 8, 0, tzinfo=UTC)  # 00:00 PST
    assert views.next_nightly(before, tz, 2).isoformat().startswith("2027-03-14T02:00")
    after = datetime(2027, 3, 14, 12, 0, tzinfo=UTC)  # 05:00 PDT
    assert views.next_nightly(after, tz, 2).strftime("%Y-%m-%d %H:%M %Z") == "2027-03-15 02:00 PDT"


def test_phones_are_masked_to_their_last_four_digits() -> None:
    assert views.mask_phone("(555) 123-4567") == "***-***-4567"
    assert views.mask_phone(None) == "—"
    assert views.mask_phone("12") == "***-***-****"


def test_csv_cells_never_run_as_formulas() -> None:
    text = views.to_csv([{"a": "=HYPERLINK(1)", "b": -40, "c": None}], ("a", "b", "c"))
    assert text.splitlines() == ["a,b,c", "'=HYPERLINK(1),-40,"]


def test_bars_scale_to_the_largest_value() -> None:
    bars = views.bars([("a", 10), ("b", 5), ("c", 0)], width=300, height=120)
    assert [b.height for b in bars] == [100.0, 50.0, 0.0]
    assert views.bars([]) == []


def test_review_reads_open_again_after_the_discrepancy_changes() -> None:
    profile = {"loyaltyStatus": "alpine_higher", "loyaltyDiscrepancy": 50}
    review = {"state": "acknowledged", "discrepancy": 50, "loyaltyStatus": "alpine_higher"}
    assert views.effective_review(profile, review)["state"] == "acknowledged"
    assert views.effective_review({**profile, "loyaltyDiscrepancy": 70}, review)["state"] == "open"
    agreed = views.effective_review({"loyaltyStatus": "matched"}, review)
    assert (agreed["state"], agreed["outcome"]) == ("resolved", "matched")
    assert views.effective_review({"loyaltyStatus": "matched"}, None)["state"] == "none"


def test_review_moves_are_checked() -> None:
    base = QueryableProfileStore()
    base.profiles["org-1_7"] = {
        "orgId": "org-1",
        "alleavesCustomerId": 7,
        "loyaltyStatus": "calculated_higher",
        "loyaltyDiscrepancy": -90,
    }
    store = InMemoryDashboardStore(base)
    change = views.change_review(
        "org-1", 7, to="acknowledged", by="Ana", store=store, now=NOW, comment="ignored"
    )
    assert (change["state"], change["comment"]) == ("acknowledged", None)
    with pytest.raises(views.ReviewRefused):
        views.change_review("org-1", 7, to="acknowledged", by="Ana", store=store, now=NOW)
    with pytest.raises(views.ReviewRefused):
        views.change_review(
            "org-1", 7, to="resolved", by="Ana", store=store, now=NOW, outcome="matched"
        )
    with pytest.raises(views.NotFound):
        views.change_review("org-1", 8, to="acknowledged", by="Ana", store=store, now=NOW)
    views.change_review(
        "org-1", 7, to="resolved", by="Ana", store=store, now=NOW, outcome="fixed", comment="ok"
    )
    audit = store.audit["org-1_7"]
    assert [(a["from"], a["to"], a["by"]) for a in audit] == [
        ("open", "acknowledged", "Ana"),
        ("acknowledged", "resolved", "Ana"),
    ]
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
    text = metrics_text([OrgSettings.parse("org-1", {})], InMemoryDashboardStore(base))
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


def _walk(store: InMemoryDashboardStore, flt: views.ReviewFilter) -> list[list[int]]:
    """Every page of the list, following its next links (and checking each prev link)."""
    pages: list[list[int]] = []
    cursors: list[str | None] = [None]
    while True:
        token = cursors[-1]
        cursor = views.PageCursor.decode(token, flt.sort) if token else None
        here = views.ReviewFilter(flt.status, flt.tier, flt.state, flt.sort, cursor, flt.page_size)
        data = views.discrepancies("org-1", store, here, now=NOW)
        assert data["page"] == len(pages) + 1
        assert data["prev"] == (
            cursors[-2] or views.PageCursor(flt.sort).encode() if len(cursors) > 1 else None
        )
        pages.append([row["customerId"] for row in data["items"]])
        if data["next"] is None:
            return pages
        cursors.append(data["next"])


def _flat(pages: list[list[int]]) -> list[int]:
    return [cid for page in pages for cid in page]


def test_discrepancies_page_by_keyset_cursor_in_the_lists_order() -> None:
    _, store = _discrepant_org(23)
    everything = views.discrepancies("org-1", store, views.ReviewFilter(page_size=100), now=NOW)
    rows = everything["items"]
    assert everything["total"] == 23 and everything["next"] is None
    assert [r["customerId"] for r in rows] == [
        r["customerId"]
        for r in sorted(rows, key=lambda r: (-abs(r["discrepancy"]), r["customerId"]))
    ]
    pages = _walk(store, views.ReviewFilter(page_size=5))
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert _flat(pages) == [r["customerId"] for r in rows]
    gold = _walk(store, views.ReviewFilter(tier="gold", status="alpine_higher", page_size=3))
    assert _flat(gold) == [
        r["customerId"] for r in rows if r["tier"] == "gold" and r["status"] == "alpine_higher"
    ]


def test_discrepancies_by_age_oldest_first_across_pages() -> None:
    _, store = _discrepant_org(17)
    pages = _walk(store, views.ReviewFilter(sort="age", page_size=4))
    listed = _flat(pages)
    expected = sorted(
        range(1, 18), key=lambda cid: (datetime(2027, 3, 1 + cid % 9, tzinfo=UTC), cid)
    )
    assert listed == expected


def test_reviewed_discrepancies_merge_into_the_pages_and_the_totals() -> None:
    _, store = _discrepant_org(12)
    for cid in (2, 5, 7):
        views.change_review("org-1", cid, to="acknowledged", by="Ana", store=store, now=NOW)
    views.change_review(
        "org-1", 4, to="resolved", by="Ana", store=store, now=NOW, outcome="fixed", comment="ok"
    )
    open_pages = _walk(store, views.ReviewFilter(page_size=3))
    assert sorted(_flat(open_pages)) == [1, 3, 6, 8, 9, 10, 11, 12]
    first = views.discrepancies("org-1", store, views.ReviewFilter(page_size=3), now=NOW)
    assert (first["total"], first["pages"]) == (8, 3)
    acked = views.discrepancies(
        "org-1", store, views.ReviewFilter(state="acknowledged", page_size=2), now=NOW
    )
    assert acked["total"] == 3 and len(acked["items"]) == 2
    assert sorted(_flat(_walk(store, views.ReviewFilter(state=None, page_size=5)))) == list(
        range(1, 13)
    )
    everything = views.discrepancies(
        "org-1", store, views.ReviewFilter(state=None, page_size=5), now=NOW
    )
    assert everything["total"] == 12
    # A later sync changes customer 2's gap: it reads open again, in its place by size.
    store.base.profiles["org-1_2"]["loyaltyDiscrepancy"] = 10_000
    top = views.discrepancies("org-1", store, views.ReviewFilter(page_size=1), now=NOW)
    assert [r["customerId"] for r in top["items"]] == [2]
    assert store.reviews["org-1_2"]["state"] == "open"


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
        data = views.no_account("org-1", store, cursor=cursor, page_size=3)
        assert data["total"] == 7 and data["pages"] == 3
        seen += [row["customerId"] for row in data["items"]]
        if data["next"] is None:
            break
        cursor = views.PageCursor.decode(data["next"], views.NO_ACCOUNT_SORT)
    assert seen == [1, 3, 4, 7, 9, 12, 30]
    assert [r["customerId"] for r in views.no_account_rows("org-1", store)] == seen


def test_a_page_cursor_is_checked_when_decoded() -> None:
    cursor = views.PageCursor("size").next((120, 7)).next((90, 3))
    token = cursor.encode()
    assert views.PageCursor.decode(token, "size") == cursor
    assert cursor.prev() == views.PageCursor("size", 2, ((120, 7),))
    nested = base64.urlsafe_b64encode(b"[" * 1400).decode()
    for bad in ("x", token[:-3], "W10", views.PageCursor("age").next((1, 2)).encode(), nested):
        with pytest.raises(ValueError):
            views.PageCursor.decode(bad, "size")
    deep = views.PageCursor("id")
    for n in range(views.MAX_TRAIL + 5):
        deep = deep.next((n,))
    assert len(deep.trail) == views.MAX_TRAIL and deep.page == views.MAX_TRAIL + 6
    assert views.PageCursor.decode(deep.encode(), "id") == deep
    back = deep
    while (earlier := back.prev()) is not None:
        back = earlier
    assert back.page == 7  # as far back as the trail goes; the first page is linked apart
