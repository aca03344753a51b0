"""The dashboard over working fakes: sign-in and the session cookie, CSRF, and every dashboard
route's 401/403/404/422 and CSRF refusal."""

from __future__ import annotations

import html
import re
import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.api.app import ApiServices, DashboardServices, create_app
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.domain.contact import listed_contact, synced_contact
from loyalty_worker.domain.review import Discrepancy, Move, decide
from loyalty_worker.domain.run import PreviewEntry
from tests.fakes import (
    FakeAlpine,
    InMemoryDashboardStore,
    QueryableProfileStore,
    RecordingEnqueuer,
    RecordingRunTriggers,
    StaticTaskOutcomes,
)
from tests.results import synced
from tests.unit.dashboard_app import (
    ADMIN_TOKEN,
    BASE,
    NOW,
    ORG1_TOKEN,
    Dash,
    bearer,
    profile,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "The anyio.abc.BlockingPortal alias", DeprecationWarning)
    from fastapi.testclient import TestClient

# --- Sign-in, the cookie, sign-out ------------------------------------------------------------


def test_pages_send_a_stranger_to_the_sign_in_page(dash: Dash) -> None:
    answer = dash.client.get("/dashboard/orgs/org-1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/sign-in"


def test_a_forged_cookie_is_no_session(dash: Dash) -> None:
    dash.client.cookies.set("lw_session", "k" * 43)
    answer = dash.client.get("/dashboard/orgs/org-1", follow_redirects=False)
    assert answer.status_code == 303


# --- Pages ------------------------------------------------------------------------------------


def test_overview_shows_tiers_statuses_runs_and_liability(dash: Dash) -> None:
    dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-1").text
    assert 'data-tier="silver"' in page
    assert "<svg" in page
    assert "/dashboard/orgs/org-1/runs/org-1-run-0" in page
    data = dash.client.get("/api/loyalty/orgs/org-1/overview").json()
    assert {t["id"]: t["count"] for t in data["tiers"]} == {
        "bronze": 3,
        "silver": 1,
        "gold": 0,
        "platinum": 0,
    }
    assert data["liability"] == {"calculated": 890, "alpine": 800, "gap": -90}
    assert data["failedCount"] == 1
    assert data["nextNightlyRun"].endswith("MST") or data["nextNightlyRun"].endswith("MDT")
    assert data["runs"][0]["alertSent"] is True
    assert data["night"] is None  # last night's run started (an hour ago) and completed
    assert 'id="night-banner"' not in page


def test_overview_trends_wait_for_two_runs_then_draw_three_charts_and_tables(
    dash: Dash,
) -> None:
    dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-1").text
    assert "Trends appear after two nightly runs" in page and "trend-chart" not in page
    assert dash.client.get("/api/loyalty/orgs/org-1/trends").json()["enough"] is False
    for day, calculated in ((2, 1_500), (1, 12_345)):
        dash.store.run_summaries[f"org-1-full-{day}"] = {
            "orgId": "org-1",
            "status": "completed",
            "startedAt": NOW - day * 86400,
            "synced": 10,
            "unchanged": 30,
            "tiers": {"bronze": 30, "silver": 10},
            "reconciliation": {"matched": 36, "alpine_higher": 3, "calculated_higher": 1},
            "liability": {"calculated": calculated, "alpine": 20_000},
        }
    page = dash.client.get("/dashboard/orgs/org-1").text
    assert "Trends appear after" not in page
    assert page.count('class="trend-chart"') == 3 and page.count('role="img"') >= 3
    for table in ("trend-liability-table", "trend-rate-table", "trend-tiers-table"):
        assert f'id="{table}"' in page
    assert "12,345" in page and "20,000" in page and "10.0%" in page
    data = dash.client.get("/api/loyalty/orgs/org-1/trends").json()
    assert data["enough"] is True
    assert [run["runId"] for run in data["runs"]] == ["org-1-full-2", "org-1-full-1"]
    assert data["runs"][1]["liabilityCalculated"] == 12_345
    assert data["runs"][1]["discrepancyRate"] == 0.1
    assert data["runs"][1]["started"].endswith(("MST", "MDT"))


def test_overview_banner_when_the_last_full_run_failed_and_a_partial_run_is_marked(
    dash: Dash,
) -> None:
    dash.store.run_summaries["org-1-run-1"] = {
        "runId": "org-1-run-1",
        "orgId": "org-1",
        "status": "failed",
        "startedAt": NOW - 1800,
        "error": "auth: Alleaves refused the key",
    }
    dash.store.run_summaries["org-1-run-2"] = {
        "runId": "org-1-run-2",
        "orgId": "org-1",
        "status": "completed",
        "startedAt": NOW - 600,
        "partial": True,
        "scope": "first 10",
        "listed": 10,
        "tiers": {"gold": 10},
        "reconciliation": {"matched": 10},
    }
    dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-1").text
    assert 'id="night-banner"' in page and 'role="alert"' in page
    assert "The last loyalty update did not finish" in page
    assert "/dashboard/orgs/org-1/runs/org-1-run-1" in page
    assert "Partial: first 10" in page
    data = dash.client.get("/api/loyalty/orgs/org-1/overview").json()
    assert data["night"]["problem"] == "not_completed"
    assert data["countsAsOf"] is None  # counted from the profiles, not from the partial run
    assert [r["scope"] for r in data["runs"][:2]] == ["first 10", None]


def test_overview_banner_when_no_run_started_last_night(dash: Dash) -> None:
    dash.store.run_summaries["org-1-run-0"]["startedAt"] = NOW - 2 * 86400
    dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-1").text
    assert "loyalty update did not run" in page and "Full run" in page
    assert 'data-problem="not_started"' in page


def test_run_page_masks_phones(dash: Dash) -> None:
    dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-1/runs/org-1-run-0").text
    assert "5551234567" not in page
    assert "***-***-4567" in page
    assert "Alpine unavailable: 1" in page


def test_a_trigger_while_a_run_is_going_shows_that_run(dash: Dash) -> None:
    csrf = dash.sign_in()
    first = dash.client.post(
        "/dashboard/orgs/org-1/runs", data={"kind": "dry", "csrf": csrf}, follow_redirects=False
    )
    assert first.headers["location"] == "/dashboard/orgs/org-1/runs/org-1-run-1"
    assert dash.enqueuer.org_runs == [
        {
            "org_id": "org-1",
            "run_id": "org-1-run-1",
            "dry_run": True,
            "since": None,
            "expires_s": None,
        }
    ]
    assert dash.tracker.progress("org-1-run-1").status == "queued"
    dash.triggers.going["org-1"] = "org-1-run-0"
    again = dash.client.post(
        "/api/loyalty/orgs/org-1/runs",
        json={"kind": "incremental"},
        headers={"X-CSRF-Token": csrf},
    )
    assert again.status_code == 202
    assert again.json() == {
        "runId": "org-1-run-0",
        "started": False,
        "pageUrl": "/dashboard/orgs/org-1/runs/org-1-run-0",
    }
    assert len(dash.enqueuer.org_runs) == 1


def test_acknowledged_discrepancy_leaves_the_open_list_and_is_audited(dash: Dash) -> None:
    csrf = dash.sign_in()
    listed = dash.client.get("/api/loyalty/orgs/org-1/discrepancies").json()
    assert [d["customerId"] for d in listed["items"]] == [2, 3]  # largest first
    answer = dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/2/review",
        data={"to": "acknowledged", "csrf": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    listed = dash.client.get("/api/loyalty/orgs/org-1/discrepancies").json()
    assert [d["customerId"] for d in listed["items"]] == [3]
    acked = dash.client.get("/api/loyalty/orgs/org-1/discrepancies?state=acknowledged").json()
    assert [d["customerId"] for d in acked["items"]] == [2]
    assert dash.dash.audit[("org-1", 2)][0].by == "rita@example.com (uid-rita)"
    assert dash.dash.audit[("org-1", 2)][0].from_state == "open"
    assert "loyaltyReview" not in str(dash.store.profiles["org-1_2"])


def test_resolving_needs_an_outcome_and_a_comment(dash: Dash) -> None:
    headers = bearer(ORG1_TOKEN)
    url = "/api/loyalty/orgs/org-1/discrepancies/2/review"
    refused = dash.client.post(url, json={"to": "resolved", "outcome": "expected"}, headers=headers)
    assert refused.status_code == 409
    done = dash.client.post(
        url,
        json={"to": "resolved", "outcome": "expected", "comment": "accrual lag"},
        headers=headers,
    )
    assert done.status_code == 200
    assert done.json()["state"] == "resolved"


def test_a_review_reopens_when_the_discrepancy_changes_and_closes_when_sources_agree(
    dash: Dash,
) -> None:
    headers = bearer(ORG1_TOKEN)
    url = "/api/loyalty/orgs/org-1/discrepancies/{}/review"
    dash.client.post(url.format(2), json={"to": "acknowledged"}, headers=headers)
    dash.client.post(url.format(3), json={"to": "acknowledged"}, headers=headers)
    dash.store.profiles["org-1_2"]["loyaltyDiscrepancy"] = 180  # a later sync changed it
    dash.store.profiles["org-1_3"].update(loyaltyStatus="matched", loyaltyDiscrepancy=0)
    listed = dash.client.get("/api/loyalty/orgs/org-1/discrepancies", headers=headers).json()
    assert [d["customerId"] for d in listed["items"]] == [2]
    assert dash.dash.reviews[("org-1", 2)].state == "open"  # its row was read: stored
    # Customer 3's row is in no list any more: its review is stored once the list of the
    # state it was stored in is read.
    acked = dash.client.get(
        "/api/loyalty/orgs/org-1/discrepancies?state=acknowledged", headers=headers
    ).json()
    assert acked["items"] == [] and acked["total"] == 0
    assert dash.dash.reviews[("org-1", 3)].state == "resolved"
    assert dash.dash.reviews[("org-1", 3)].outcome == "matched"
    assert dash.dash.audit[("org-1", 3)][-1].by == "sync"


def test_discrepancies_csv_follows_the_filter(dash: Dash) -> None:
    answer = dash.client.get(
        "/api/loyalty/orgs/org-1/discrepancies.csv?status=calculated_higher",
        headers=bearer(ORG1_TOKEN),
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    lines = answer.text.strip().splitlines()
    assert lines[0].startswith("customerId,status")
    assert len(lines) == 2 and lines[1].startswith("3,calculated_higher")


def test_a_filter_menu_left_at_any_sends_it_empty_and_means_any(dash: Dash) -> None:
    # The page's form sends every menu: "any" as an empty value, with only Review changed.
    whole = dash.client.get(
        "/api/loyalty/orgs/org-1/discrepancies.csv?state=all", headers=bearer(ORG1_TOKEN)
    )
    empty = dash.client.get(
        "/api/loyalty/orgs/org-1/discrepancies.csv?status=&tier=&state=all&sort=size",
        headers=bearer(ORG1_TOKEN),
    )
    assert empty.status_code == 200, empty.text
    assert empty.text == whole.text
    dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-1/discrepancies?status=&tier=&state=all")
    assert page.status_code == 200
    assert 'id="discrepancies"' in page.text


def test_the_enrollment_page_shows_contacts_in_full_and_the_machine_csv_masks(
    dash: Dash,
) -> None:
    # A profile holds no phone: the masked CSV takes it from the latest kept sync result.
    dash.store.profiles["org-1_5"] = profile(
        5, loyaltyStatus="no_alpine_account", pointsFromAlpine=None, pointsFromOrders=20
    )
    kept = replace(synced(5, inputs="digest"), phone="5559876543")
    dash.tracker.remember([kept])
    _ana_reyes_without_an_account(dash)
    dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-1/no-account").text
    assert "Ana Reyes" in page and "(707) 708-6718" in page and "ana@example.com" in page
    csv_text = dash.client.get("/api/loyalty/orgs/org-1/no-account.csv").text
    assert csv_text.splitlines()[1:] == [
        "4,***-***-4321,100,9002,bronze",
        "5,***-***-6543,20,9002,bronze",
    ]
    assert "9876543" not in page + csv_text


def _ana_reyes_without_an_account(dash: Dash) -> None:
    """Customer 5's contact, as a full run lists and a sync fills it: no Alpine IQ account."""
    dash.store.contacts["org-1_5"] = {
        **listed_contact(
            "org-1",
            5,
            name="Ana Reyes",
            last_name="Reyes",
            email="ana@example.com",
            phone="707-708-6718",
            run_id="r",
            at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        **synced_contact(
            "org-1",
            5,
            points_from_orders=20,
            loyalty_status="no_alpine_account",
            tier="bronze",
            last_order=None,
            orders_known=True,
        ),
    }


def test_enrollment_json_and_csv_are_for_a_signed_in_person_and_exports_are_audited(
    dash: Dash,
) -> None:
    _ana_reyes_without_an_account(dash)
    by_token = dash.client.get("/api/loyalty/orgs/org-1/enrollment", headers=bearer(ORG1_TOKEN))
    assert by_token.status_code == 403
    assert "6718" not in by_token.text
    dash.sign_in()
    answer = dash.client.get("/api/loyalty/orgs/org-1/enrollment").json()
    assert [(i["name"], i["phone"], i["email"]) for i in answer["items"]] == [
        ("Ana Reyes", "7077086718", "ana@example.com")
    ]
    exported = dash.client.get("/dashboard/orgs/org-1/no-account/enrollment.csv?tier=bronze")
    assert exported.text.splitlines()[1].startswith("5,Ana Reyes,7077086718,ana@example.com,")
    page = dash.client.get("/dashboard/orgs/org-1/no-account").text
    assert "reach=usable&amp;sort=points&amp;tier=bronze" in page


def test_customer_page_sync_now_and_history(dash: Dash) -> None:
    csrf = dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-1/customers/2").text
    assert "#9001" in page and "60.00" in page
    answer = dash.client.post(
        "/dashboard/orgs/org-1/customers/2/sync", data={"csrf": csrf}, follow_redirects=False
    )
    assert answer.headers["location"] == "/dashboard/orgs/org-1/customers/2?task=task-1"
    assert dash.enqueuer.customer_syncs[0]["customer_id"] == 2
    dash.tasks.outcomes["task-1"] = {
        "state": "SUCCESS",
        "result": {
            "orgId": "org-1",
            "status": "synced",
            "phone": "5551234567",
            "displayed": {"points": 720, "tier": "silver", "tierSource": "alpine_iq"},
            "reconciliation": {"status": "alpine_higher", "discrepancy": 170},
        },
    }
    result = dash.client.get("/api/loyalty/orgs/org-1/tasks/task-1").json()
    assert result["done"] and result["points"] == 720
    assert "phone" not in result
    dash.dash.history["org-1_2"] = [
        {
            "at": "2027-01-10T02:00:00+00:00",
            "runId": "org-1-run-0",
            "before": {"points": 600, "tier": "bronze"},
            "after": {"points": 700, "tier": "silver"},
        }
    ]
    history = dash.client.get("/dashboard/orgs/org-1/customers/2/history").text
    assert "600 → 700" in history and "bronze → silver" in history


def test_find_a_customer_by_id_phone_and_name(dash: Dash) -> None:
    headers = bearer(ORG1_TOKEN)
    by_id = dash.client.get("/api/loyalty/orgs/org-1/customers?q=3", headers=headers).json()
    assert [c["customerId"] for c in by_id["items"]] == [3]
    for typed in ("(555) 123-4567", "555-123-4567", "5551234567", "+1 555 123 4567"):
        by_phone = dash.client.get(
            "/api/loyalty/orgs/org-1/customers", params={"q": typed}, headers=headers
        ).json()
        assert [c["customerId"] for c in by_phone["items"]] == [2], typed
    for name in ("ana reyes", "Reyes", "Ana"):
        by_name = dash.client.get(
            "/api/loyalty/orgs/org-1/customers", params={"q": name}, headers=headers
        ).json()
        assert [(c["customerId"], c["name"]) for c in by_name["items"]] == [(2, "Ana Reyes")]
    nobody = dash.client.get("/api/loyalty/orgs/org-1/customers?q=Bob", headers=headers).json()
    assert nobody["items"] == []


def test_metrics_in_prometheus_text(dash: Dash) -> None:
    assert dash.client.get("/metrics").status_code == 401
    text = dash.client.get("/metrics", headers=bearer(ORG1_TOKEN)).text
    assert 'loyalty_customers_by_tier{org="org-1",tier="bronze"} 3' in text
    assert 'loyalty_last_run_failed{org="org-1",reason="alpine_unavailable"} 1' in text
    assert "# TYPE loyalty_recent_runs gauge" in text
    assert 'org="org-2"' not in text


# --- Every dashboard route: 401, 403, 404, 422, CSRF -------------------------------------------

GETS = [
    "/api/loyalty/orgs/{org}/overview",
    "/api/loyalty/orgs/{org}/trends",
    "/api/loyalty/orgs/{org}/runs/org-1-run-0",
    "/api/loyalty/orgs/{org}/discrepancies",
    "/api/loyalty/orgs/{org}/discrepancies.csv",
    "/api/loyalty/orgs/{org}/no-account",
    "/api/loyalty/orgs/{org}/no-account.csv",
    "/api/loyalty/orgs/{org}/customers?q=2",
    "/api/loyalty/orgs/{org}/customers/2",
    "/api/loyalty/orgs/{org}/customers/2/history",
    "/api/loyalty/orgs/{org}/tasks/task-1",
]
POSTS = [
    ("/api/loyalty/orgs/{org}/runs", {"kind": "full"}),
    ("/api/loyalty/orgs/{org}/discrepancies/2/review", {"to": "acknowledged"}),
    (
        "/api/loyalty/orgs/{org}/discrepancies/bulk-review",
        {"customerIds": [2], "to": "acknowledged"},
    ),
    ("/api/loyalty/orgs/{org}/customers/2/sync", None),
]
PAGES = [
    "/dashboard/orgs/{org}",
    "/dashboard/orgs/{org}/runs/org-1-run-0",
    "/dashboard/orgs/{org}/discrepancies",
    "/dashboard/orgs/{org}/no-account",
    "/dashboard/orgs/{org}/customers",
    "/dashboard/orgs/{org}/customers/2",
    "/dashboard/orgs/{org}/customers/2/history",
]
FORMS = [
    ("/dashboard/orgs/{org}/runs", {"kind": "full"}),
    ("/dashboard/orgs/{org}/discrepancies/2/review", {"to": "acknowledged"}),
    ("/dashboard/orgs/{org}/discrepancies/bulk", {"to": "acknowledged", "customer": "2"}),
    ("/dashboard/orgs/{org}/customers/2/sync", {}),
]


def _call(dash: Dash, method: str, url: str, body: Any, **kw: Any) -> Any:
    if method == "GET":
        return dash.client.get(url, **kw)
    return dash.client.post(url, json=body, **kw)


ROUTES = [("GET", url, None) for url in GETS] + [("POST", url, body) for url, body in POSTS]


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
def test_json_route_refuses_no_token(dash: Dash, method: str, url: str, body: Any) -> None:
    answer = _call(dash, method, url.format(org="org-1"), body)
    assert answer.status_code == 401
    answer = _call(dash, method, url.format(org="org-1"), body, headers=bearer("n" * 24))
    assert answer.status_code == 401


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
def test_json_route_refuses_another_org(dash: Dash, method: str, url: str, body: Any) -> None:
    answer = _call(dash, method, url.format(org="org-2"), body, headers=bearer(ORG1_TOKEN))
    assert answer.status_code == 403


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
def test_json_route_answers_404_for_an_unknown_org(
    dash: Dash, method: str, url: str, body: Any
) -> None:
    answer = _call(dash, method, url.format(org="org-9"), body, headers=bearer(ADMIN_TOKEN))
    assert answer.status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/api/loyalty/orgs/org-1/runs/org-1-run-9",
        "/api/loyalty/orgs/org-1/customers/99",
        "/api/loyalty/orgs/org-1/customers/99/history",
    ],
)
def test_json_route_answers_404_for_an_unknown_thing(dash: Dash, url: str) -> None:
    assert dash.client.get(url, headers=bearer(ORG1_TOKEN)).status_code == 404


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/api/loyalty/orgs/bad org!/overview", None),
        ("GET", "/api/loyalty/orgs/org-1/runs/bad run!", None),
        ("GET", "/api/loyalty/orgs/org-1/discrepancies?sort=name", None),
        ("GET", "/api/loyalty/orgs/org-1/discrepancies.csv?state=closed", None),
        ("GET", "/api/loyalty/orgs/org-1/no-account?cursor=bm90LWEtY3Vyc29y", None),
        ("GET", "/api/loyalty/orgs/org-1/discrepancies?sort=age&cursor=WyJzaXplIiwxLFtdXQ", None),
        ("GET", "/api/loyalty/orgs/org-1/no-account.csv?", "skip"),
        ("GET", "/api/loyalty/orgs/org-1/customers", None),
        ("GET", "/api/loyalty/orgs/org-1/customers/0", None),
        ("GET", "/api/loyalty/orgs/org-1/customers/x/history", None),
        ("GET", "/api/loyalty/orgs/org-1/tasks/bad task!", None),
        ("POST", "/api/loyalty/orgs/org-1/runs", {"kind": "everything"}),
        ("POST", "/api/loyalty/orgs/org-1/discrepancies/2/review", {"to": "closed"}),
        ("POST", "/api/loyalty/orgs/org-1/customers/x/sync", None),
    ],
)
def test_json_route_answers_422_for_invalid_input(
    dash: Dash, method: str, url: str, body: Any
) -> None:
    if body == "skip":  # the CSV of the no-account list takes no input but the org
        url, body = "/api/loyalty/orgs/bad org!/no-account.csv", None
    answer = _call(dash, method, url, body, headers=bearer(ORG1_TOKEN))
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize(("url", "body"), POSTS)
def test_json_change_by_cookie_needs_the_csrf_token(dash: Dash, url: str, body: Any) -> None:
    csrf = dash.sign_in()
    path = url.format(org="org-1")
    refused = dash.client.post(path, json=body)
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    wrong = dash.client.post(path, json=body, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    accepted = dash.client.post(path, json=body, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code in (200, 202), accepted.text


@pytest.mark.parametrize(("url", "form"), FORMS)
def test_form_needs_the_csrf_token(dash: Dash, url: str, form: dict[str, str]) -> None:
    csrf = dash.sign_in()
    path = url.format(org="org-1")
    assert dash.client.post(path, data=form, follow_redirects=False).status_code == 403
    answer = dash.client.post(path, data={**form, "csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303


@pytest.mark.parametrize("url", PAGES)
def test_page_refuses_another_org_and_answers_404_for_an_unknown_one(dash: Dash, url: str) -> None:
    dash.sign_in()
    assert dash.client.get(url.format(org="org-1")).status_code == 200
    assert dash.client.get(url.format(org="org-2")).status_code == 403


def test_dashboard_routes_are_in_the_openapi_schema(dash: Dash) -> None:
    paths = dash.client.get("/openapi.json").json()["paths"]
    for url in [*GETS, *(u for u, _ in POSTS)]:
        path = url.format(org="{orgId}").split("?")[0]
        path = path.replace("org-1-run-0", "{runId}").replace("/2", "/{customerId}")
        path = path.replace("task-1", "{taskId}")
        assert path in paths, path
    assert "/metrics" in paths
    assert not any(p.startswith("/dashboard") for p in paths)


def test_a_page_refusal_is_a_page_and_a_json_refusal_stays_json(dash: Dash) -> None:
    dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-2")
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "you hold no role in org &#39;org-2&#39;" in page.text
    missing = dash.client.get("/dashboard/orgs/org-1/customers/99")
    assert missing.status_code == 404 and "unknown customer 99" in missing.text
    api = dash.client.get("/api/loyalty/orgs/org-2/overview")
    assert api.status_code == 403 and api.json() == {"detail": "you hold no role in org 'org-2'"}
    assert dash.client.get("/nowhere").json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/dashboard/orgs/org-1/discrepancies?sort=name", "sort"),
        ("/dashboard/orgs/org-1/discrepancies?sort=age&cursor=WyJzaXplIiwxLFtdXQ", "cursor"),
        ("/dashboard/orgs/org-1/no-account?cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("/dashboard/orgs/org-1/customers?q=" + "7" * 101, "q"),
        ("/dashboard/orgs/org-1/customers/x", "customerId"),
        ("/dashboard/orgs/org-1/runs/org-1-run-0?already=5", "already"),
    ],
)
def test_a_page_with_a_bad_query_answers_a_page_that_names_what_is_wrong(
    dash: Dash, url: str, field: str
) -> None:
    dash.sign_in()
    page = dash.client.get(url)
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert f"<strong>{field}</strong>" in page.text
    assert f'href="{url.split("?")[0]}"' in page.text  # the page without its query
    assert "7" * 101 not in page.text and "bm90LWEtY3Vyc29y" not in page.text
    json_twin = dash.client.get(url.replace("/dashboard/orgs", "/api/loyalty/orgs"))
    if json_twin.status_code == 422:  # the JSON twin, where one exists, stays JSON
        assert json_twin.json()["detail"][0]["field"] == field


def test_a_bad_form_answers_a_page_without_a_retry_link(dash: Dash) -> None:
    csrf = dash.sign_in()
    page = dash.client.post("/dashboard/orgs/org-1/runs", data={"kind": "all", "csrf": csrf})
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "<strong>kind</strong>" in page.text and 'id="retry"' not in page.text


def test_the_guard_takes_the_cookie_only_without_an_authorization_header(dash: Dash) -> None:
    dash.sign_in()
    url = "/api/loyalty/orgs/org-1/overview"
    assert dash.client.get(url).status_code == 200
    # A wrong bearer token is refused even with a valid session beside it.
    assert dash.client.get(url, headers=bearer("w" * 24)).status_code == 401
    dash.client.cookies.set("lw_session", "forged.0000")
    assert dash.client.get(url).status_code == 401


def test_the_overview_names_the_org_as_its_latest_run_learned_it(dash: Dash) -> None:
    dash.sign_in()
    before = dash.client.get("/api/loyalty/orgs/org-1/overview").json()
    assert before["orgName"] == "org-1"  # no run has named it yet
    dash.store.run_summaries["org-1-run-0"]["orgName"] = "Green Leaf & Co"
    page = dash.client.get("/dashboard/orgs/org-1").text
    assert "<h1>Green Leaf &amp; Co <small>org-1 · " in page
    assert "<title>Green Leaf &amp; Co · " in page
    assert dash.client.get("/api/loyalty/orgs/org-1/overview").json()["orgName"] == (
        "Green Leaf & Co"
    )


def test_a_dry_run_page_is_a_preview_of_what_would_change(dash: Dash) -> None:
    dash.store.run_summaries["org-1-dry"] = {
        **dash.store.run_summaries["org-1-run-0"],
        "dryRun": True,
        "synced": 3,
        "tierChangeCount": 1,
    }
    dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-1/runs/org-1-dry").text
    assert 'id="preview"' in page
    assert "<strong>3</strong> of 4 customers would change" in page
    assert "Would change" in page


def test_the_read_threads_stop_with_the_app() -> None:
    store = QueryableProfileStore()
    redis = fakeredis.FakeRedis()
    services = ApiServices(
        store=store,
        tracker=RunTracker(redis),
        enqueuer=RecordingEnqueuer(),
        redis=redis,
        alpine_for=lambda org: FakeAlpine({}),
    )
    dashboard = DashboardServices(
        store=InMemoryDashboardStore(store),
        tasks=StaticTaskOutcomes(),
        triggers=RecordingRunTriggers(),
    )
    with TestClient(create_app(services, ApiSettings(tokens={}), dashboard), base_url=BASE):
        assert dashboard.reads.submit(sum, [1, 2]).result() == 3
    with pytest.raises(RuntimeError):  # shut down: the app stopped
        dashboard.reads.submit(sum, [1, 2])


def test_a_dry_run_page_lists_the_customers_it_would_change_largest_first(dash: Dash) -> None:
    changes: list[PreviewEntry] = [
        {
            "customerId": 3,
            "pointsBefore": 900,
            "pointsAfter": 1400,
            "tierBefore": "silver",
            "tierAfter": "gold",
        },
        {
            "customerId": 5,
            "pointsBefore": None,
            "pointsAfter": 80,
            "tierBefore": None,
            "tierAfter": "gold",
        },
    ]
    dash.store.run_summaries["org-1-dry"] = {
        **dash.store.run_summaries["org-1-run-0"],
        "dryRun": True,
        "since": "full",
        "previewChanges": changes,
        "previewChangeCount": 7,
    }
    dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-1/runs/org-1-dry").text
    assert "Kind: <strong>Dry run (preview: nothing written)</strong>" in page
    assert "a preview posts no alert" in page and 'id="run-link"' not in page
    assert page.index('data-customer="3"') < page.index('data-customer="5"')
    assert "900 → 1,400" in page and "+500" in page and "silver → gold" in page
    assert "none → 80" in page and "— → gold" in page
    assert "… and 5 more" in page
    data = dash.client.get("/api/loyalty/orgs/org-1/runs/org-1-dry").json()
    assert data["kind"] == "Dry run (preview: nothing written)"
    assert [c["customerId"] for c in data["preview"]] == [3, 5]
    assert data["previewCount"] == 7


def test_runs_are_labelled_in_words_in_the_table_and_on_their_page(dash: Dash) -> None:
    base = dash.store.run_summaries["org-1-run-0"]
    dash.store.run_summaries["org-1-inc"] = {**base, "since": "2026-11-01", "startedAt": NOW - 60}
    dash.sign_in()
    table = dash.client.get("/dashboard/orgs/org-1").text
    assert '<td class="run-kind">Incremental</td>' in table
    assert '<td class="run-kind">Full</td>' in table  # org-1-run-0: no ``since``, a full run
    page = dash.client.get("/dashboard/orgs/org-1/runs/org-1-inc").text
    assert "Kind: <strong>Incremental</strong>" in page
    link = 'href="http://127.0.0.1:8000/dashboard/orgs/org-1/runs/org-1-inc"'
    assert link in page  # what its alert links to


# --- Undo, bulk and the banner ----------------------------------------------------------------


def _moved_clock(dash: Dash, seconds: float) -> None:
    """The app's clock seam: the dashboard's time moved on by ``seconds``."""
    services: DashboardServices = dash.client.app.state.dashboard  # type: ignore[attr-defined]
    services.clock = lambda: NOW + seconds


def test_a_form_goes_back_with_a_banner_whose_undo_restores_the_review(dash: Dash) -> None:
    csrf = dash.sign_in()
    back = "/dashboard/orgs/org-1/discrepancies?state=all&sort=size"
    answer = dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/2/review",
        data={
            "to": "resolved",
            "outcome": "expected",
            "comment": "lag",
            "csrf": csrf,
            "back": back,
        },
        follow_redirects=False,
    )
    location = answer.headers["location"]
    assert location == back + "&done=2.000001"
    page = dash.client.get(location).text
    assert "Resolved 2 as expected" in page and 'id="banner-undo"' in page
    # Times in the org's zone (America/Denver), the absolute one in <time datetime>.
    assert 'Undo works until <time datetime="2027-01-15T08:10:00+00:00"' in page
    assert "2027-01-15 01:10 MST</time>" in page
    undone = dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/undo",
        data={"change": "2.000001", "back": location, "csrf": csrf},
        follow_redirects=False,
    )
    assert undone.headers["location"] == back + "&done=2.000002"
    assert "Undid the change of 2: open again" in dash.client.get(undone.headers["location"]).text
    assert dash.dash.reviews[("org-1", 2)].state == "open"
    assert [(a.to_state, a.undoes) for a in dash.dash.audit[("org-1", 2)]] == [
        ("resolved", None),
        ("open", "000001"),
    ]


def _toggled(dash: Dash, customer_id: int, times: int, *, last_at: datetime) -> None:
    """The customer's review acknowledged and re-opened, ``times`` changes in all, a second
    apart, the last at ``last_at``."""
    seen = Discrepancy(status="alpine_higher", amount=150, tier="silver")
    review = None
    for n in range(times):
        at = last_at - timedelta(seconds=times - 1 - n)
        move = Move("acknowledged" if n % 2 == 0 else "open")
        change = decide(review, seen, move, by="Ana", at=at)
        dash.dash.write_review("org-1", customer_id, change)
        review = change.review


def _audit_ids(page: str) -> list[str]:
    return re.findall(r'<tr id="audit-([0-9]+)"', page)


def _link(page: str, link_id: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" id="{link_id}"', page)
    return html.unescape(found.group(1)) if found else None


def test_a_review_changed_400_times_shows_its_audit_a_page_at_a_time(dash: Dash) -> None:
    dash.sign_in()
    now = datetime.fromtimestamp(NOW, UTC)
    _toggled(dash, 2, 400, last_at=now - timedelta(minutes=1))
    page = dash.client.get("/dashboard/orgs/org-1/customers/2/history").text
    # one page of the audit, newest first: its size bounded whatever the audit's length
    assert _audit_ids(page) == [f"{n:06d}" for n in range(400, 380, -1)]
    audit_part = page[page.index('id="review-audit"') : page.index("</main>")]
    assert len(audit_part) < 12_000
    assert page.count('class="audit-undo"') == 1  # on the newest entry, a minute old
    assert _link(page, "audit-newer") is None and _link(page, "audit-newest") is None
    # Older links reach the first entry, each page read with a small limit
    shown, pages = _audit_ids(page), 1
    while (older := _link(page, "audit-older")) is not None:
        assert older.endswith("#review-audit")
        page = dash.client.get(older).text
        shown += _audit_ids(page)
        pages += 1
    assert shown == [f"{n:06d}" for n in range(400, 0, -1)]
    assert pages == 20
    assert 'class="audit-undo"' not in page  # the newest entry is not on this page
    assert max(dash.dash.audit_limits) <= 21
    # and Newer links lead back to the newest
    newer = _link(page, "audit-newer")
    assert newer is not None and _link(page, "audit-newest") == (
        "/dashboard/orgs/org-1/customers/2/history#review-audit"
    )
    page = dash.client.get(newer).text
    assert _audit_ids(page) == [f"{n:06d}" for n in range(40, 20, -1)]
    # a page size asked for is kept by the links
    sized = dash.client.get("/dashboard/orgs/org-1/customers/2/history?pageSize=50").text
    assert len(_audit_ids(sized)) == 50
    older = _link(sized, "audit-older")
    assert older is not None and older.startswith(
        "/dashboard/orgs/org-1/customers/2/history?pageSize=50&cursor="
    )
    assert _audit_ids(dash.client.get(older).text)[0] == "000350"


def test_the_history_json_pages_the_audit_by_cursor(dash: Dash) -> None:
    _toggled(dash, 2, 250, last_at=datetime.fromtimestamp(NOW, UTC))
    url, headers = "/api/loyalty/orgs/org-1/customers/2/history", bearer(ORG1_TOKEN)
    first = dash.client.get(url, headers=headers).json()
    assert (len(first["audit"]), first["pageSize"], first["prev"]) == (20, 20, None)
    assert first["audit"][0]["id"] == "000250" and first["audit"][0]["undoable"]
    ids, pages = [], []
    answer = dash.client.get(f"{url}?pageSize=100", headers=headers).json()
    while True:
        pages.append(answer)
        ids += [a["id"] for a in answer["audit"]]
        if answer["next"] is None:
            break
        answer = dash.client.get(f"{url}?pageSize=100&cursor={answer['next']}", headers=headers)
        answer = answer.json()
    assert ids == [f"{n:06d}" for n in range(250, 0, -1)]
    assert [len(p["audit"]) for p in pages] == [100, 100, 50]
    assert not any(a["undoable"] for p in pages[1:] for a in p["audit"])
    back = dash.client.get(f"{url}?pageSize=100&cursor={pages[2]['prev']}", headers=headers)
    assert [a["id"] for a in back.json()["audit"]] == ids[100:200]
    assert back.json()["prev"] is not None and back.json()["next"] is not None
    for query in ("pageSize=101", "pageSize=0", "cursor=nonsense", "cursor=WyJhdWRpdCJd"):
        assert dash.client.get(f"{url}?{query}", headers=headers).status_code == 422, query
    discrepancies = dash.client.get(
        "/api/loyalty/orgs/org-1/discrepancies?pageSize=1&state=all", headers=headers
    ).json()
    other = discrepancies["next"]  # a cursor of another list
    assert dash.client.get(f"{url}?cursor={other}", headers=headers).status_code == 422


def test_the_history_never_shows_an_audit_entry_older_than_the_retention(dash: Dash) -> None:
    now = datetime.fromtimestamp(NOW, UTC)
    _toggled(dash, 2, 2, last_at=now - timedelta(days=730, minutes=1))  # past two years
    _toggled(dash, 3, 1, last_at=now - timedelta(days=729))
    url = "/api/loyalty/orgs/org-1/customers/{}/history"
    headers = bearer(ORG1_TOKEN)
    assert dash.client.get(url.format(2), headers=headers).json()["audit"] == []
    assert [a["id"] for a in dash.client.get(url.format(3), headers=headers).json()["audit"]] == [
        "000001"
    ]
    services: DashboardServices = dash.client.app.state.dashboard  # type: ignore[attr-defined]
    services.audit_retention = timedelta(days=731)
    assert len(dash.client.get(url.format(2), headers=headers).json()["audit"]) == 2


def test_undo_is_refused_with_a_clear_message_after_ten_minutes(dash: Dash) -> None:
    csrf = dash.sign_in()
    dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/2/review", data={"to": "acknowledged", "csrf": csrf}
    )
    history = dash.client.get("/dashboard/orgs/org-1/customers/2/history").text
    assert 'class="audit-undo"' in history
    # Undo is a change like any other: the session's CSRF token or nothing.
    no_token = dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/undo", data={"change": "2.000001"}
    )
    assert no_token.status_code == 403
    api_no_token = dash.client.post(
        "/api/loyalty/orgs/org-1/discrepancies/undo",
        json={"changes": [{"customerId": 2, "entryId": "000001"}]},
    )
    assert api_no_token.status_code == 403
    assert len(dash.dash.audit[("org-1", 2)]) == 1
    _moved_clock(dash, 601)
    history = dash.client.get("/dashboard/orgs/org-1/customers/2/history").text
    assert 'class="audit-undo"' not in history
    refused = dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/undo", data={"change": "2.000001", "csrf": csrf}
    )
    assert refused.status_code == 409
    assert "can be undone for 10 minutes after it is made" in refused.text
    page = dash.client.get("/dashboard/orgs/org-1/discrepancies?done=2.000001").text
    assert "Undo is not possible any more" in page and 'id="banner-undo"' not in page
    api = dash.client.post(
        "/api/loyalty/orgs/org-1/discrepancies/undo",
        json={"changes": [{"customerId": 2, "entryId": "000001"}]},
        headers=bearer(ORG1_TOKEN),
    )
    assert api.status_code == 409 and "10 minutes" in api.json()["detail"]


def test_bulk_select_all_on_the_page_and_undo_them_all(dash: Dash) -> None:
    csrf = dash.sign_in()
    page = dash.client.get("/dashboard/orgs/org-1/discrepancies").text
    assert re.findall(r'name="shown" value="(\d+)"', page) == ["2", "3"]
    assert "Select all on this page" in page
    answer = dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/bulk",
        data={"to": "acknowledged", "all": "true", "shown": ["2", "3"], "csrf": csrf},
    )
    assert "Acknowledged 2 reviews" in answer.text and "Undo all 2" in answer.text
    assert {cid: len(dash.dash.audit[("org-1", cid)]) for cid in (2, 3)} == {2: 1, 3: 1}
    changes = re.findall(r'name="change" value="([0-9.]+)"', answer.text)
    assert changes == ["2.000001", "3.000001"]
    undone = dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/undo",
        data={"change": changes, "csrf": csrf},
    )
    assert "Undid the change of 2 reviews: open again" in undone.text
    assert {dash.dash.reviews[("org-1", cid)].state for cid in (2, 3)} == {"open"}


def test_bulk_and_undo_json_twins_make_the_same_checks(dash: Dash) -> None:
    headers = bearer(ORG1_TOKEN)
    url = "/api/loyalty/orgs/org-1/discrepancies"
    no_comment = {"customerIds": [2, 3], "to": "resolved", "outcome": "fixed"}
    refused = dash.client.post(f"{url}/bulk-review", json=no_comment, headers=headers)
    assert refused.status_code == 409 and "needs a comment" in refused.json()["detail"]
    body = {**no_comment, "comment": "recounted"}
    done = dash.client.post(f"{url}/bulk-review", json=body, headers=headers).json()
    assert [(i["customerId"], i["entryId"], i["state"]) for i in done["items"]] == [
        (2, "000001", "resolved"),
        (3, "000001", "resolved"),
    ]
    resolved = dash.client.get(f"{url}?state=resolved", headers=headers).json()["items"]
    who = done["items"][0]["updatedBy"]  # the token's fingerprint
    assert who and {(r["reviewedBy"], r["reviewedAt"], r["comment"]) for r in resolved} == {
        (who, "2027-01-15T08:00:00+00:00", "recounted")
    }
    assert (
        dash.client.post(
            f"{url}/bulk-review", json={**body, "to": "open"}, headers=headers
        ).status_code
        == 422
    )
    assert (
        dash.client.post(
            f"{url}/bulk-review", json={**body, "customerIds": []}, headers=headers
        ).status_code
        == 422
    )
    first = {"changes": [{"customerId": 2, "entryId": "000001"}]}
    assert (
        dash.client.post(f"{url}/undo", json=first, headers=headers).json()["items"][0]["state"]
        == "open"
    )
    again = dash.client.post(f"{url}/undo", json=first, headers=headers)
    assert again.status_code == 409 and "only the latest change" in again.json()["detail"]
    bad = {"changes": [{"customerId": 2, "entryId": "../x"}]}
    assert dash.client.post(f"{url}/undo", json=bad, headers=headers).status_code == 422
    history = dash.client.get("/api/loyalty/orgs/org-1/customers/2/history", headers=headers)
    audit = history.json()["audit"]
    assert [(a["id"], a["undoes"], a["undoable"]) for a in audit] == [
        ("000002", "000001", False),
        ("000001", None, False),
    ]


def test_the_resolved_list_shows_outcome_comment_who_and_when(dash: Dash) -> None:
    csrf = dash.sign_in()
    dash.client.post(
        "/dashboard/orgs/org-1/discrepancies/3/review",
        data={
            "to": "resolved",
            "outcome": "false_positive",
            "comment": "test account",
            "csrf": csrf,
        },
    )
    page = dash.client.get("/dashboard/orgs/org-1/discrepancies?state=resolved").text
    row = page[page.index('id="d-3"') :]
    row = row[: row.index("</tr>")]
    assert "Resolved (false positive)" in row and "test account" in row
    assert '<td class="by">rita@example.com (uid-rita)</td>' in row
    assert '<time datetime="2027-01-15T08:00:00+00:00"' in row and "2027-01-15 01:00 MST" in row
