"""The overview's trends in headless Chromium against the real stack: the empty state before two
runs, then three charts with their tables after real full runs and summaries written for past
days through Firestore, the tables holding the summaries' values, no accessibility violation,
and a phone's width without sideways scrolling."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from google.cloud.firestore_v1.base_query import FieldFilter
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from loyalty_worker.adapters.firestore import RUN_SUMMARIES
from tests.browser.conftest import Dashboard, axe_violations, screenshot, session_of, sign_in

DAY = 86400.0
EMPTY = "Trends appear after two nightly runs"


@dataclass
class Trended:
    dashboard: Dashboard
    before_any_run: str  # the overview's HTML before any run
    after_one_run: str  # ... after the first full run
    counted: list[dict[str, Any]]  # the summaries the trends must show, oldest first
    left_out: list[str]  # run ids the trends must not show
    timezone: str


def _overview_html(dashboard: Dashboard) -> str:
    """The overview as a signed-in person's browser receives it (no script run)."""
    cookies = {"lw_session": session_of(dashboard, "Ana")}
    with httpx.Client(base_url=dashboard.url, timeout=30, cookies=cookies) as http:
        page = http.get("/dashboard/orgs/org-1")
        assert page.status_code == 200, page.status_code
        return page.text


def _org_runs(dashboard: Dashboard) -> dict[str, dict[str, Any]]:
    runs = dashboard.stack.firestore.collection(RUN_SUMMARIES).where(
        filter=FieldFilter("orgId", "==", "org-1")
    )
    return {snapshot.id: snapshot.to_dict() or {} for snapshot in runs.stream()}


def _past(template: dict[str, Any], started: float, **fields: Any) -> dict[str, Any]:
    return {**template, "startedAt": started, "finishedAt": started + 60, **fields}


@pytest.fixture(scope="module")
def trended(dashboard: Dashboard) -> Trended:
    """org-1 before any run, after one, then after two real full runs and summaries written for
    past days: one completed full run 20 days back (counted), and left out a run 100 days
    back, a dry run, a partial run and a failed run."""
    before = _overview_html(dashboard)
    assert dashboard.stack.run("org-1").status == "completed"
    after_one = _overview_html(dashboard)
    assert dashboard.stack.run("org-1").status == "completed"
    real = sorted(_org_runs(dashboard).values(), key=lambda run: float(run["startedAt"]))
    assert len(real) == 2, real
    template = dict(real[-1])
    now = time.time()
    collection = dashboard.stack.firestore.collection(RUN_SUMMARIES)
    past = _past(
        template,
        now - 20 * DAY,
        runId="org-1-past-20d",
        liability={"calculated": 1_234_567, "alpine": 1_200_000},
        tiers={"bronze": 70, "silver": 30, "gold": 15, "platinum": 5},
        synced=120,
        unchanged=0,
        reconciliation={"matched": 108, "alpine_higher": 9, "calculated_higher": 3},
    )
    writes = {
        "org-1-past-20d": past,
        "org-1-past-100d": _past(template, now - 100 * DAY, runId="org-1-past-100d"),
        "org-1-past-dry": _past(template, now - 3 * DAY, runId="org-1-past-dry", dryRun=True),
        "org-1-past-partial": _past(
            template, now - 4 * DAY, runId="org-1-past-partial", partial=True, scope="first 10"
        ),
        "org-1-past-failed": _past(
            template, now - 5 * DAY, runId="org-1-past-failed", status="failed"
        ),
    }
    for run_id, document in writes.items():
        collection.document(run_id).set(document)
    stored = _org_runs(dashboard)
    counted = [{**stored[run_id], "runId": run_id} for run_id in ("org-1-past-20d",)] + [
        {**run, "runId": run_id}
        for run_id, run in sorted(stored.items(), key=lambda item: item[1]["startedAt"])
        if run_id not in writes
    ]
    overview = httpx.get(
        f"{dashboard.url}/api/loyalty/orgs/org-1/overview",
        headers={"Authorization": f"Bearer {dashboard.token}"},
        timeout=30,
    ).json()
    return Trended(
        dashboard=dashboard,
        before_any_run=before,
        after_one_run=after_one,
        counted=counted,
        left_out=[run_id for run_id in writes if run_id != "org-1-past-20d"],
        timezone=overview["timezone"],
    )


def test_before_two_runs_the_overview_says_when_trends_appear(trended: Trended) -> None:
    for page in (trended.before_any_run, trended.after_one_run):
        assert EMPTY in page
        assert 'class="trend-chart"' not in page and 'id="trend-rate-table"' not in page


def _cells(driver: WebDriver, table: str) -> dict[str, list[str]]:
    """A trend table's rows by run id: the row header, then every cell's text."""
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    return {
        str(row.get_attribute("data-run")): [
            cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")
        ]
        for row in rows
    }


def _rate(run: dict[str, Any]) -> tuple[int, int, str]:
    statuses = run["reconciliation"]
    differing = int(statuses.get("alpine_higher", 0)) + int(statuses.get("calculated_higher", 0))
    synced = int(run["synced"]) + int(run["unchanged"])
    return differing, synced, f"{differing / synced * 100:.1f}%"


def test_three_charts_and_tables_hold_the_summaries_values(
    trended: Trended, driver: WebDriver
) -> None:
    sign_in(driver, trended.dashboard)
    section = driver.find_element(By.ID, "trends")
    assert EMPTY not in section.text
    charts = section.find_elements(By.CSS_SELECTOR, "svg.trend-chart")
    assert [chart.get_attribute("id") for chart in charts] == [
        "trend-liability",
        "trend-rate",
        "trend-tiers",
    ]
    for chart in charts:
        assert chart.get_attribute("role") == "img"
        label = chart.get_attribute("aria-label") or ""
        assert label.startswith(("Points liability, 3 runs", "Discrepancy rate, 3 runs")) or (
            label.startswith("Customers by tier, 3 runs")
        ), label
        assert chart.find_element(By.TAG_NAME, "title").get_attribute("textContent") == label
    tz = ZoneInfo(trended.timezone)
    liability = _cells(driver, "trend-liability-table")
    rates = _cells(driver, "trend-rate-table")
    tiers = _cells(driver, "trend-tiers-table")
    expected_ids = [run["runId"] for run in reversed(trended.counted)]  # newest first
    assert list(liability) == expected_ids and list(rates) == expected_ids
    assert list(tiers) == expected_ids
    for run_id in trended.left_out:
        assert run_id not in (section.get_attribute("innerHTML") or "")
    headers = [
        cell.get_attribute("data-tier")
        for cell in driver.find_elements(By.CSS_SELECTOR, "#trend-tiers-table thead th[data-tier]")
    ]
    for run in trended.counted:
        started = datetime.fromtimestamp(float(run["startedAt"]), UTC).astimezone(tz)
        when = started.strftime("%Y-%m-%d %H:%M %Z")
        points = run["liability"]
        assert liability[run["runId"]] == [
            when,
            f"{points['calculated']:,}",
            f"{points['alpine']:,}",
        ]
        differing, synced, rate = _rate(run)
        assert rates[run["runId"]] == [when, f"{differing:,}", f"{synced:,}", rate]
        assert tiers[run["runId"]] == [when] + [
            f"{int(run['tiers'].get(tier, 0)):,}" for tier in headers
        ]
    assert "1,234,567" in liability["org-1-past-20d"]
    driver.execute_script("arguments[0].scrollIntoView()", section)
    screenshot(driver, "overview-trends")


def test_the_json_twin_answers_the_same_runs(trended: Trended) -> None:
    answer = httpx.get(
        f"{trended.dashboard.url}/api/loyalty/orgs/org-1/trends",
        headers={"Authorization": f"Bearer {trended.dashboard.token}"},
        timeout=30,
    )
    assert answer.status_code == 200
    data = answer.json()
    assert data["enough"] is True
    assert [run["runId"] for run in data["runs"]] == [run["runId"] for run in trended.counted]
    for shown, run in zip(data["runs"], trended.counted, strict=True):
        assert shown["liabilityCalculated"] == run["liability"]["calculated"]
        assert shown["liabilityAlpine"] == run["liability"]["alpine"]


def test_axe_finds_no_violation_on_the_overview_with_trends(
    trended: Trended, driver: WebDriver
) -> None:
    sign_in(driver, trended.dashboard)
    assert driver.find_elements(By.CSS_SELECTOR, "svg.trend-chart")
    for width in (1280, 390):
        driver.set_window_size(width, 900)
        driver.get(f"{trended.dashboard.url}/dashboard/orgs/org-1")
        assert axe_violations(driver) == [], width


def test_at_390_px_the_charts_scale_down_and_the_tables_scroll_in_their_box(
    trended: Trended, driver: WebDriver
) -> None:
    sign_in(driver, trended.dashboard)
    driver.set_window_size(390, 844)
    driver.get(f"{trended.dashboard.url}/dashboard/orgs/org-1")
    width = driver.execute_script("return window.innerWidth")
    assert 300 <= width <= 390, width
    page_width = driver.execute_script("return document.documentElement.scrollWidth")
    assert page_width <= width, page_width
    for chart in driver.find_elements(By.CSS_SELECTOR, "svg.trend-chart"):
        drawn = chart.rect
        assert drawn["x"] >= 0 and drawn["x"] + drawn["width"] <= width, drawn
        assert drawn["width"] < 480, drawn  # scaled down from its viewBox width
        assert chart.get_dom_attribute("viewBox") == "0 0 480 200"
    boxes = driver.find_elements(By.CSS_SELECTOR, "#trends .table-box")
    assert len(boxes) == 3
    for box in boxes:
        right = box.rect["x"] + box.rect["width"]
        assert right <= width, box.rect
        overflow = driver.execute_script("return getComputedStyle(arguments[0]).overflowX", box)
        assert overflow == "auto"
    tier_box = boxes[2]
    scroll, client = driver.execute_script(
        "return [arguments[0].scrollWidth, arguments[0].clientWidth]", tier_box
    )
    # Its five columns are wider than the phone: it scrolls inside its box, the page does not.
    assert scroll > client, (scroll, client)
    driver.execute_script("arguments[0].scrollLeft = 40", tier_box)
    assert driver.execute_script("return arguments[0].scrollLeft", tier_box) > 0
    assert driver.execute_script("return window.scrollX") == 0
