"""Reviewing discrepancies in headless Chromium against the real stack: the banner after each
change and its Undo, bulk acknowledge, the resolved list's who and when, Undo from a customer's
audit, Undo refused after its 10 minutes (the app's clock moved on, not waited for), Enter that
resolves nothing without an outcome, axe-core on the pages with banners and checkboxes, and the
same flow with JavaScript off."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from loyalty_worker.adapters.dashboard_store import FirestoreDashboardStore
from loyalty_worker.adapters.firestore import FirestoreProfileStore
from loyalty_worker.domain.review import AuditEntry
from loyalty_worker.services.dashboard.formatting import local_time
from tests.browser.conftest import Dashboard, axe_violations, email_of, gone, sign_in, wait

ORG = "org-1"
# Customers a test of this module changed: each test takes rows no other one touched.
TAKEN: set[int] = set()


@pytest.fixture(scope="module")
def synced(dashboard: Dashboard) -> Dashboard:
    """org-1 synced once by the worker, so that it has discrepancies to review."""
    final = dashboard.stack.run(ORG)
    assert final.status == "completed", final
    return dashboard


def _page(driver: WebDriver, dashboard: Dashboard, path: str = "/discrepancies") -> None:
    driver.get(f"{dashboard.url}/dashboard/orgs/{ORG}{path}")


def _fresh_rows(driver: WebDriver, count: int) -> list[WebElement]:
    """``count`` rows of the open list no test of this module changed yet (taken now)."""
    rows = []
    for row in driver.find_elements(By.CSS_SELECTOR, "#discrepancies tbody tr[id^='d-']"):
        customer = _customer(row)
        if customer not in TAKEN:
            rows.append(row)
            TAKEN.add(customer)
        if len(rows) == count:
            return rows
    raise AssertionError(f"the seeded data has {count} open discrepancies left")


def _customer(row: WebElement) -> int:
    return int(str(row.get_attribute("id")).removeprefix("d-"))


def _press(driver: WebDriver, button: WebElement) -> None:
    """Press a button that posts a form, and wait for the page it answers."""
    button.click()
    wait(driver).until(gone(button))


def _resolve(driver: WebDriver, row: WebElement, outcome: str, comment: str) -> None:
    form = row.find_element(By.CSS_SELECTOR, "form.resolve")
    Select(form.find_element(By.NAME, "outcome")).select_by_value(outcome)
    form.find_element(By.NAME, "comment").send_keys(comment)
    _press(driver, form.find_element(By.CSS_SELECTOR, "button[value='resolved']"))


def _banner(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "banner-message").text


def _audit(dashboard: Dashboard, customer: int) -> list[AuditEntry]:
    """The review's audit, oldest first."""
    store = FirestoreDashboardStore(dashboard.stack.firestore)
    return store.list_audit(ORG, customer, limit=100)[::-1]


def _open_ids(driver: WebDriver, dashboard: Dashboard) -> set[int]:
    _page(driver, dashboard, "/discrepancies?pageSize=500")
    rows = driver.find_elements(By.CSS_SELECTOR, "#discrepancies tbody tr[id^='d-']")
    return {_customer(row) for row in rows}


def test_resolve_a_row_then_undo_it_from_the_banner(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    _page(driver, synced)
    (row,) = _fresh_rows(driver, 1)
    customer = _customer(row)
    _resolve(driver, row, "expected", "accrual lag at the register")
    assert _banner(driver).startswith(f"Resolved {customer} as expected — Undo works until")
    assert not driver.find_elements(By.ID, f"d-{customer}")  # it left the open list
    _press(driver, driver.find_element(By.ID, "banner-undo"))
    assert _banner(driver) == f"Undid the change of {customer}: open again"
    assert not driver.find_elements(By.ID, "banner-undo")  # an undo is not undone
    assert "Open" in driver.find_element(By.ID, f"d-{customer}").text  # back on the open list
    _page(driver, synced, f"/customers/{customer}/history")
    rows = driver.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows] == [  # newest first
        "Resolved → Open (undo of change 000001)",
        "Open → Resolved",
    ]


def test_bulk_select_three_rows_and_acknowledge_them(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    _page(driver, synced)
    rows = _fresh_rows(driver, 3)
    customers = [_customer(row) for row in rows]
    for row in rows:
        row.find_element(By.CSS_SELECTOR, "input.pick").click()
    _press(driver, driver.find_element(By.ID, "bulk-ack"))
    assert _banner(driver).startswith("Acknowledged 3 reviews")
    assert driver.find_element(By.ID, "banner-undo").text == "Undo all 3"
    for customer in customers:
        audit = _audit(synced, customer)
        assert [(a.by.split(" ")[0], a.from_state, a.to_state) for a in audit] == [
            (email_of("Ana"), "open", "acknowledged")
        ]
    _page(driver, synced, "/discrepancies?state=acknowledged&pageSize=500")
    for customer in customers:
        assert driver.find_elements(By.ID, f"d-{customer}")


def test_select_all_on_the_page_ticks_every_row(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    _page(driver, synced, "/discrepancies?pageSize=3")
    boxes = driver.find_elements(By.CSS_SELECTOR, "input.pick")
    assert len(boxes) == 3 and not any(box.is_selected() for box in boxes)
    driver.find_element(By.ID, "select-all").click()
    assert all(box.is_selected() for box in boxes)  # the script ticks them as well


def test_the_resolved_list_shows_outcome_comment_who_and_when(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced, name="Bea")
    _page(driver, synced)
    (row,) = _fresh_rows(driver, 1)
    customer = _customer(row)
    _resolve(driver, row, "false_positive", "staff test account")
    _page(driver, synced, "/discrepancies?state=resolved&pageSize=500")
    shown = driver.find_element(By.ID, f"d-{customer}")
    assert "Resolved (false positive)" in shown.find_element(By.CSS_SELECTOR, "td.review").text
    assert shown.find_element(By.CSS_SELECTOR, "td.comment").text == "staff test account"
    assert shown.find_element(By.CSS_SELECTOR, "td.by").text.startswith(f"{email_of('Bea')} (")
    when = shown.find_element(By.CSS_SELECTOR, "td.at time")
    stamp = str(when.get_attribute("datetime"))
    assert when.get_attribute("title") == stamp  # the absolute time on hover
    zone = FirestoreProfileStore(synced.stack.firestore).get_org_settings(ORG).timezone
    assert when.text == local_time(datetime.fromisoformat(stamp), ZoneInfo(zone))
    assert _audit(synced, customer)[-1].at == stamp


def test_undo_from_the_customers_audit(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    _page(driver, synced)
    (row,) = _fresh_rows(driver, 1)
    customer = _customer(row)
    _press(driver, row.find_element(By.CSS_SELECTOR, "button.ack"))
    _page(driver, synced, f"/customers/{customer}/history")
    undo = driver.find_elements(By.CSS_SELECTOR, "#audit button.audit-undo")
    assert len(undo) == 1  # on the newest entry only
    _press(driver, undo[0])
    assert driver.current_url.split("?")[0].endswith(f"/customers/{customer}/history")
    assert _banner(driver) == f"Undid the change of {customer}: open again"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#audit tbody tr")) == 2
    assert not driver.find_elements(By.CSS_SELECTOR, "#audit button.audit-undo")
    assert [(a.to_state, a.undoes) for a in _audit(synced, customer)] == [
        ("acknowledged", None),
        ("open", "000001"),
    ]
    assert customer in _open_ids(driver, synced)


def test_undo_is_refused_once_ten_minutes_have_passed(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    _page(driver, synced)
    (row,) = _fresh_rows(driver, 1)
    customer = _customer(row)
    _press(driver, row.find_element(By.CSS_SELECTOR, "button.ack"))
    undo = driver.find_element(By.ID, "banner-undo")
    synced.clock.advance(11 * 60)  # the app's clock moves on; nothing waits
    _press(driver, undo)
    assert "can be undone for 10 minutes after it is made" in driver.page_source
    assert driver.find_element(By.TAG_NAME, "h1").text == "Not possible now"
    assert [a.to_state for a in _audit(synced, customer)] == ["acknowledged"]
    _page(driver, synced, f"/customers/{customer}/history")
    assert not driver.find_elements(By.CSS_SELECTOR, "#audit button.audit-undo")


def test_enter_in_the_bulk_comment_resolves_nothing_without_an_outcome(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced)
    _page(driver, synced)
    (row,) = _fresh_rows(driver, 1)
    customer = _customer(row)
    row.find_element(By.CSS_SELECTOR, "input.pick").click()
    outcome = driver.find_element(By.ID, "bulk-outcome")
    driver.execute_script(
        "window.refused = false;"
        "arguments[0].addEventListener('invalid', () => { window.refused = true; });",
        outcome,
    )
    driver.find_element(By.ID, "bulk-comment").send_keys("looked at it", Keys.ENTER)
    # The browser refused the form for its missing outcome (this page is still the one loaded).
    assert driver.execute_script("return window.refused") is True
    assert driver.execute_script("return arguments[0].validity.valueMissing", outcome) is True
    assert _audit(synced, customer) == []
    assert customer in _open_ids(driver, synced)


def test_axe_finds_nothing_on_the_pages_with_banners_and_checkboxes(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced)
    _page(driver, synced)
    (row,) = _fresh_rows(driver, 1)
    customer = _customer(row)
    _resolve(driver, row, "fixed", "points restored")
    found: dict[str, list[str]] = {}
    assert driver.find_elements(By.ID, "banner-undo") and driver.find_elements(
        By.CSS_SELECTOR, "input.pick"
    )
    found["discrepancies with a banner"] = axe_violations(driver)
    _page(driver, synced, "/discrepancies?state=resolved")
    found["resolved"] = axe_violations(driver)
    _page(driver, synced, f"/customers/{customer}/history")
    assert driver.find_elements(By.CSS_SELECTOR, "button.audit-undo")
    found["history with undo"] = axe_violations(driver)
    _press(driver, driver.find_element(By.CSS_SELECTOR, "button.audit-undo"))
    assert driver.find_elements(By.ID, "review-banner")
    found["history with a banner"] = axe_violations(driver)
    assert not any(found.values()), found


@pytest.mark.parametrize("driver", [False], indirect=True, ids=["no-javascript"])
def test_resolve_and_undo_with_javascript_off(synced: Dashboard, driver: WebDriver) -> None:
    sign_in(driver, synced)
    _page(driver, synced, "/discrepancies?pageSize=3")
    driver.find_element(By.ID, "select-all").click()
    # No script ran: "select all" ticked only itself (the server takes the page's rows).
    assert not any(box.is_selected() for box in driver.find_elements(By.CSS_SELECTOR, ".pick"))
    _page(driver, synced)
    (row,) = _fresh_rows(driver, 1)
    customer = _customer(row)
    _resolve(driver, row, "no_action", "within tolerance after review")
    assert _banner(driver).startswith(f"Resolved {customer} as no action needed")
    assert "done=" in driver.current_url  # the redirect carried the change to the banner
    _press(driver, driver.find_element(By.ID, "banner-undo"))
    assert _banner(driver) == f"Undid the change of {customer}: open again"
    assert driver.find_elements(By.ID, f"d-{customer}")
    assert [(a.to_state, a.undoes) for a in _audit(synced, customer)] == [
        ("resolved", None),
        ("open", "000001"),
    ]
