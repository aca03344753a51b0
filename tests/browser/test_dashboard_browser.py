"""An admin's day on the dashboard, in headless Chromium against the real stack."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select

from loyalty_worker.adapters.dashboard_store import FirestoreDashboardStore
from loyalty_worker.adapters.firestore import HISTORY
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.services.dashboard.formatting import in_words
from tests.browser.conftest import (
    JS_ON_AND_OFF,
    Dashboard,
    axe_violations,
    gone,
    screenshot,
    sign_in,
    wait,
)
from tests.fixtures.pipeline import Stack


@pytest.fixture(scope="module")
def synced(dashboard: Dashboard) -> Dashboard:
    """org-1 synced once by the worker, so that the pages have profiles, runs and history."""
    final = dashboard.stack.run("org-1")
    assert final.status == "completed", final
    return dashboard


@JS_ON_AND_OFF
def test_sign_in_and_see_the_tiers(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    counts = {
        row.get_attribute("data-tier"): int(row.find_element(By.CSS_SELECTOR, "td").text)
        for row in driver.find_elements(By.CSS_SELECTOR, "#tiers tr")
    }
    assert sum(counts.values()) == 120, counts
    assert driver.find_elements(By.CSS_SELECTOR, "#tier-chart rect")
    assert driver.find_element(By.ID, "who").text == "ana@example.com · admin"
    assert synced.token not in driver.page_source
    assert synced.token not in driver.current_url
    screenshot(driver, "overview")


def test_trigger_a_run_and_watch_it_complete(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    driver.find_element(By.ID, "run-full").click()
    wait(driver).until(expected_conditions.presence_of_element_located((By.ID, "run-status")))
    assert "/runs/" in driver.current_url
    # The page follows the run by itself and shows the summary once it is over.
    wait(driver, 180).until(expected_conditions.presence_of_element_located((By.ID, "summary")))
    assert driver.find_element(By.ID, "run-status").text == "completed"
    assert driver.find_element(By.ID, "run-done").text == "120"
    screenshot(driver, "run")


def test_open_a_run_from_the_overview(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    link = driver.find_element(By.CSS_SELECTOR, "#runs tbody tr td a")
    run_id = link.text
    link.click()
    wait(driver).until(expected_conditions.presence_of_element_located((By.ID, "summary")))
    assert run_id in driver.find_element(By.TAG_NAME, "h1").text
    assert driver.find_elements(By.CSS_SELECTOR, "#largest tbody tr")


@JS_ON_AND_OFF
def test_acknowledge_a_discrepancy_and_see_it_leave_the_open_list(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/discrepancies")
    rows = driver.find_elements(By.CSS_SELECTOR, "#discrepancies tbody tr[id^='d-']")
    assert rows, "the seeded data has discrepancies"
    row_id = rows[0].get_attribute("id")
    screenshot(driver, "discrepancies")
    rows[0].find_element(By.CSS_SELECTOR, "button.ack").click()
    wait(driver).until(gone(rows[0]))  # the list answered is loaded
    assert driver.find_elements(By.ID, "discrepancies")
    assert not driver.find_elements(By.ID, str(row_id))
    driver.get(f"{synced.url}/dashboard/orgs/org-1/discrepancies?state=acknowledged")
    assert driver.find_elements(By.ID, str(row_id))


@JS_ON_AND_OFF
def test_resolving_needs_an_outcome_chosen_enter_alone_resolves_nothing(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/discrepancies")
    row = _rows(driver)[0]
    row_id = str(row.get_attribute("id"))
    form = row.find_element(By.CSS_SELECTOR, "form.resolve")
    form.find_element(By.NAME, "comment").send_keys("checked with the budtender", Keys.ENTER)
    # nothing chosen: the browser keeps the form (no outcome is chosen for the person)
    assert driver.execute_script("return arguments[0].checkValidity()", form) is False
    assert driver.find_element(By.ID, row_id)
    outcome = Select(form.find_element(By.NAME, "outcome"))
    assert outcome.first_selected_option.get_attribute("value") == ""
    outcome.select_by_value("expected")
    form.find_element(By.CSS_SELECTOR, "button[value='resolved']").click()
    wait(driver).until(gone(form))
    assert not driver.find_elements(By.ID, row_id)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/discrepancies?state=resolved")
    assert "expected" in driver.find_element(By.ID, row_id).text


MENUS = ("status", "tier", "state", "sort")


def _menu(driver: WebDriver, name: str) -> Select:
    return Select(driver.find_element(By.CSS_SELECTOR, f"#filter select[name='{name}']"))


def _rows(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#discrepancies tbody tr[id^='d-']")


@JS_ON_AND_OFF
@pytest.mark.parametrize(
    "menus", [(m,) for m in MENUS] + list(itertools.combinations(MENUS, 2)), ids="+".join
)
def test_discrepancy_filters_alone_and_in_pairs_are_applied(
    synced: Dashboard, driver: WebDriver, menus: tuple[str, ...]
) -> None:
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/discrepancies")
    chosen = {}
    for name in menus:  # each menu's last option: never its default
        menu = _menu(driver, name)
        chosen[name] = str(menu.options[-1].get_attribute("value"))
        menu.select_by_value(chosen[name])
    apply = driver.find_element(By.CSS_SELECTOR, "#filter button[type='submit']")
    apply.click()
    wait(driver).until(gone(apply))  # the page answered is loaded
    for name, value in chosen.items():
        assert _menu(driver, name).first_selected_option.get_attribute("value") == value
    rows = _rows(driver)
    for row in rows:  # the cells by their class: the columns move as the page grows
        for name in set(chosen) & {"status", "tier"}:
            shown = in_words(chosen[name]) if name == "status" else chosen[name]
            assert row.find_element(By.CSS_SELECTOR, f"td.{name}").text == shown, row.text
    if chosen.get("sort") == "age":  # oldest first: the most days open at the top
        days = [int(row.find_element(By.CSS_SELECTOR, "td.days").text) for row in rows]
        assert days == sorted(days, reverse=True), days
    else:  # largest gap first
        gaps = [
            abs(int(row.find_element(By.CSS_SELECTOR, "td.gap").text.replace(",", "")))
            for row in rows
        ]
        assert gaps == sorted(gaps, reverse=True), gaps


@JS_ON_AND_OFF
def test_the_pager_goes_to_the_end_and_back_to_the_start(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/discrepancies?state=all&pageSize=4")
    total = int(driver.find_element(By.ID, "total").text.replace(",", ""))
    assert total > 8, "the seeded data has three pages of discrepancies at least"
    pages = [[str(r.get_attribute("id")) for r in _rows(driver)]]
    # a pager that never ends fails the checks below rather than hangs
    while driver.find_elements(By.ID, "next-page") and len(pages) <= total // 4:
        _press(driver, "next-page")
        pages.append([str(r.get_attribute("id")) for r in _rows(driver)])
    seen = [row for page in pages for row in page]
    assert len(seen) == len(set(seen)) == total, pages
    assert all(len(page) == 4 for page in pages[:-1])
    for back in reversed(pages[:-1]):
        _press(driver, "prev-page")
        assert [str(r.get_attribute("id")) for r in _rows(driver)] == back
    assert not driver.find_elements(By.ID, "prev-page")  # the first page
    for _ in range(2):
        _press(driver, "next-page")
    _press(driver, "first-page")  # shown from the third page on
    assert [str(r.get_attribute("id")) for r in _rows(driver)] == pages[0]


def _press(driver: WebDriver, link_id: str) -> None:
    link = driver.find_element(By.ID, link_id)
    link.click()
    wait(driver).until(gone(link))


def test_open_a_customer_sync_now_and_open_its_history(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced)
    customer = synced.stack.org("org-1")["customers"][0]["id_customer"]
    driver.get(f"{synced.url}/dashboard/orgs/org-1/customers")
    driver.find_element(By.ID, "q").send_keys(str(customer))
    driver.find_element(By.ID, "find").click()
    wait(driver).until(expected_conditions.presence_of_element_located((By.ID, "sync-now")))
    assert str(customer) in driver.find_element(By.CSS_SELECTOR, "h1").text
    driver.find_element(By.ID, "sync-now").click()
    wait(driver, 60).until(
        expected_conditions.text_to_be_present_in_element((By.ID, "sync-state"), "done")
    )
    assert "points" in driver.find_element(By.ID, "sync-detail").text
    screenshot(driver, "customer")
    driver.find_element(By.ID, "view-history").click()
    wait(driver).until(expected_conditions.presence_of_element_located((By.ID, "history")))
    entries = driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert entries and "→" in entries[0].text
    assert "No change recorded yet" not in entries[0].text


@JS_ON_AND_OFF
def test_find_a_customer_by_phone_typed_as_people_type_it(
    synced: Dashboard, driver: WebDriver
) -> None:
    customers = synced.stack.org("org-1")["customers"]
    phones = Counter(normalize_phone(c["phone"]) for c in customers)
    customer = next(c for c in customers if (p := normalize_phone(c["phone"])) and phones[p] == 1)
    digits = str(normalize_phone(customer["phone"]))
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    sign_in(driver, synced)
    for typed in (
        f"({area}) {exchange}-{line}",
        f"{area}-{exchange}-{line}",
        digits,
        f"+1 {area} {exchange} {line}",
    ):
        driver.get(f"{synced.url}/dashboard/orgs/org-1/customers")
        driver.find_element(By.ID, "q").send_keys(typed)
        driver.find_element(By.ID, "find").click()
        wait(driver).until(expected_conditions.presence_of_element_located((By.ID, "sync-now")))
        assert str(customer["id_customer"]) in driver.find_element(By.TAG_NAME, "h1").text, typed


@JS_ON_AND_OFF
def test_download_the_no_account_csv(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/no-account")
    total = int(driver.find_element(By.ID, "total").text.replace(",", ""))
    driver.find_element(By.ID, "no-account-csv").click()
    lines = _downloaded_csv(driver).splitlines()
    assert lines[0] == "customerId,phone,pointsFromOrders,lastOrder,tier"
    assert len(lines) == total + 1
    phones = [line.split(",")[1] for line in lines[1:]]
    assert any(phone[-4:].isdigit() for phone in phones), phones  # from the kept results
    assert all(phone.startswith("***-***-") or phone == "—" for phone in phones), phones


@JS_ON_AND_OFF
def test_download_the_discrepancies_csv_of_the_filter_shown(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/discrepancies?state=all&status=alpine_higher")
    total = int(driver.find_element(By.ID, "total").text.replace(",", ""))
    driver.find_element(By.ID, "discrepancies-csv").click()
    lines = _downloaded_csv(driver).splitlines()
    header = lines[0].split(",")
    assert "customerId" in header and "status" in header, header
    assert len(lines) == total + 1
    statuses = {line.split(",")[header.index("status")] for line in lines[1:]}
    assert statuses == {"alpine_higher"}, statuses


def _downloaded_csv(driver: WebDriver) -> str:
    """The text of the CSV the browser downloaded (waited for, up to 20 s)."""
    folder = Path(driver.downloads)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        files = [f for f in folder.glob("*.csv") if f.stat().st_size > 0]
        if files:
            return files[0].read_text(encoding="utf-8").strip()
        time.sleep(0.2)
    raise AssertionError("no CSV downloaded")


def _every_page(dashboard: Dashboard, run_id: str) -> list[str]:
    """Each page a person meets, empty states and error pages included (signed in)."""
    customer = dashboard.stack.org("org-1")["customers"][0]["id_customer"]
    base = "/dashboard/orgs/org-1"
    return [
        base,
        f"{base}/discrepancies",
        f"{base}/discrepancies?review=resolved&tier=platinum",
        f"{base}/no-account",
        f"{base}/customers",
        f"{base}/customers?q=nobody",
        f"{base}/customers/{customer}",
        f"{base}/customers/{customer}/history",
        f"{base}/runs/{run_id}",
        f"{base}/customers/99999999",
        f"{base}/discrepancies?sort=name",
        f"{base}/people",
    ]


# The pages whose phone-sized screenshot the docs show, and its name.
PHONE_SHOTS = {
    "/dashboard/orgs/org-1": "overview-phone",
    "/dashboard/orgs/org-1/discrepancies": "discrepancies-phone",
    "/dashboard/orgs/org-1/no-account": "no-account-phone",
}


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 768)])
def test_every_page_fits_the_screen_and_axe_finds_no_violation(
    synced: Dashboard, driver: WebDriver, width: int, height: int
) -> None:
    driver.set_window_size(width, height)
    driver.get(f"{synced.url}/dashboard/sign-in")
    inner = driver.execute_script("return window.innerWidth")
    assert width - 20 <= inner <= width, inner
    found = {"/dashboard/sign-in": axe_violations(driver)}
    sign_in(driver, synced)
    run_id = driver.find_element(By.CSS_SELECTOR, "#runs tbody tr td a").text
    too_wide: dict[str, int] = {}
    for page in _every_page(synced, run_id):
        driver.get(synced.url + page)
        page_width = driver.execute_script("return document.documentElement.scrollWidth")
        if page_width > inner:
            too_wide[page] = page_width
        sign_out = driver.find_element(By.ID, "sign-out").rect
        assert sign_out["x"] + sign_out["width"] <= inner, (page, sign_out)
        found[page] = axe_violations(driver)
        if width == 390 and page in PHONE_SHOTS:
            screenshot(driver, PHONE_SHOTS[page])
    assert not too_wide, too_wide
    assert not {page: v for page, v in found.items() if v}, found


def test_the_first_tab_offers_to_skip_to_the_content(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    skip = driver.switch_to.active_element
    assert skip.get_attribute("id") == "skip" and skip.is_displayed()
    skip.send_keys(Keys.ENTER)
    assert driver.switch_to.active_element.get_attribute("id") == "main"


@JS_ON_AND_OFF
def test_sign_out_and_be_refused(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    driver.find_element(By.ID, "sign-out").click()
    wait(driver).until(expected_conditions.presence_of_element_located((By.ID, "email")))
    driver.get(f"{synced.url}/dashboard/orgs/org-1")
    assert driver.current_url.endswith("/dashboard/sign-in")
    assert not driver.get_cookies() or all(c["name"] != "lw_session" for c in driver.get_cookies())
    refused = httpx.get(f"{synced.url}/api/loyalty/orgs/org-1/overview")
    assert refused.status_code == 401


def _history_sizes(stack: Stack) -> dict[int, int]:
    customers = stack.firestore.collection("customers")
    return {
        c["id_customer"]: len(
            list(customers.document(f"org-1_{c['id_customer']}").collection(HISTORY).stream())
        )
        for c in stack.org("org-1")["customers"]
    }


def test_history_is_written_on_change_only(synced: Dashboard) -> None:
    stack = synced.stack
    before = _history_sizes(stack)
    assert all(size >= 1 for size in before.values())  # the first sync created every profile
    rerun = stack.run("org-1")
    assert rerun.summary is not None and rerun.summary["synced"] == 0
    assert _history_sizes(stack) == before  # an unchanged rerun: no history entry either
    customer = stack.org("org-1")["customers"][1]["id_customer"]
    profile = stack.firestore.collection("customers").document(f"org-1_{customer}")
    profile.update({"points": -5})
    changed = stack.run("org-1")
    assert changed.summary is not None and changed.summary["synced"] == 1
    after = _history_sizes(stack)
    assert after[customer] == before[customer] + 1
    assert {k: v for k, v in after.items() if k != customer} == {
        k: v for k, v in before.items() if k != customer
    }
    entries = FirestoreDashboardStore(stack.firestore).list_history("org-1", customer, limit=5)
    assert entries[0]["before"]["points"] == -5
    assert entries[0]["after"]["points"] != -5
    assert entries[0]["runId"] == changed.summary["runId"]


def test_a_run_that_did_not_finish_shows_the_banner_until_a_full_run_does(
    synced: Dashboard, driver: WebDriver
) -> None:
    # The org's last full run failed (written as its summary would be), a partial run since.
    runs = synced.stack.firestore.collection("loyalty_sync_runs")
    now = time.time()
    runs.document("org-1-failed-night").set(
        {"runId": "org-1-failed-night", "orgId": "org-1", "status": "failed", "startedAt": now}
    )
    runs.document("org-1-partial-later").set(
        {
            "runId": "org-1-partial-later",
            "orgId": "org-1",
            "status": "completed",
            "startedAt": now + 1,
            "partial": True,
            "scope": "first 10",
            "listed": 10,
        }
    )
    sign_in(driver, synced)
    banner = driver.find_element(By.ID, "night-banner")
    assert "did not finish" in banner.text and "Full run" in banner.text
    assert "Partial: first 10" in driver.find_element(By.ID, "runs").text
    banner.find_element(By.LINK_TEXT, "See the run").click()
    wait(driver).until(expected_conditions.url_contains("/runs/org-1-failed-night"))
    driver.back()
    # The banner's advice, followed: a full run that completes ends it.
    wait(driver).until(expected_conditions.presence_of_element_located((By.ID, "run-full")))
    driver.find_element(By.ID, "run-full").click()
    wait(driver, 180).until(expected_conditions.presence_of_element_located((By.ID, "summary")))
    assert driver.find_element(By.ID, "run-status").text == "completed"
    driver.get(f"{synced.url}/dashboard/orgs/org-1")
    assert not driver.find_elements(By.ID, "night-banner")
