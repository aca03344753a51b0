"""The customer panel in a real browser: a new order, Sync Now, and the panel, its order list
and the history tell what changed without a reload; and the same with JavaScript off."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions

from loyalty_worker.domain.points import floor_points
from tests.browser.conftest import Dashboard, axe_violations, gone, screenshot, sign_in, wait

NEW_SUBTOTAL = Decimal("300")


@pytest.fixture(scope="module")
def synced(dashboard: Dashboard) -> Dashboard:
    """org-1 synced once by the worker, so that every customer has a profile and a ledger."""
    final = dashboard.stack.run("org-1")
    assert final.status == "completed", final
    return dashboard


def _customers_with_alpine(dashboard: Dashboard) -> list[tuple[int, dict[str, Any]]]:
    """org-1's customers without the equity bonus who have an Alpine IQ balance and counted
    orders: adding an order moves their points from orders and their discrepancy."""
    stack = dashboard.stack
    found = []
    for customer in stack.org("org-1")["customers"]:
        cid = customer["id_customer"]
        profile = stack.profile("org-1", cid) if isinstance(cid, int) and cid > 0 else None
        if (
            profile
            and profile.get("equityStatus") is not True
            and "pointsFromAlpine" in profile
            and profile.get("loyaltyOrders")
        ):
            found.append((cid, profile))
    assert len(found) >= 2, "the dataset has too few customers with an Alpine IQ account"
    return found


def _add_order(dashboard: Dashboard, customer_id: int, order_id: int) -> str:
    """A completed $300 order of the customer, created now, in the sandbox's Alleaves."""
    org = dashboard.stack.org("org-1")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    order = {
        **copy.deepcopy(org["orders"][0]),
        "id_order": order_id,
        "id_customer": customer_id,
        "status": "completed",
        "subtotal": str(NEW_SUBTOTAL),
        "discount": None,
        "refunded_amount": None,
        "date_created": now,
        "date_updated": now,
    }
    counts = dashboard.stack.sandbox.upsert_orders("org-1", [order])
    assert counts == {"created": 1, "updated": 0}
    return now


def _signed(value: int) -> str:
    """The discrepancy as the panel shows it: its sign, thousands separators, ⚠ when not 0."""
    if value == 0:
        return "0"
    return f"⚠ {'+' if value > 0 else '−'}{abs(value):,}"


def test_sync_now_updates_the_panel_orders_and_history_without_a_reload(
    synced: Dashboard, driver: WebDriver
) -> None:
    settings = synced.stack.org("org-1")["settings"]
    added_points = floor_points(NEW_SUBTOTAL * Decimal(str(settings["pointsPerDollar"])))
    customer, profile = _customers_with_alpine(synced)[0]
    before_orders = int(profile["pointsFromOrders"])
    alpine = int(profile["pointsFromAlpine"])
    after_orders = before_orders + added_points
    order_id = 98_000_001
    created = _add_order(synced, customer, order_id)

    sign_in(driver, synced)
    page = f"{synced.url}/dashboard/orgs/org-1/customers/{customer}"
    driver.get(page)
    assert driver.find_element(By.ID, "from-orders").text == f"{before_orders:,}"
    assert driver.find_elements(By.ID, f"order-{order_id}") == []
    last_synced = driver.find_element(By.CSS_SELECTOR, "#last-synced time")
    assert last_synced.text.endswith("ago") or last_synced.text == "just now"
    assert last_synced.get_attribute("title") == driver.find_element(By.ID, "last-verified").text
    assert str(last_synced.get_attribute("datetime")).startswith("20")
    assert axe_violations(driver) == []

    driver.execute_script("window.notReloaded = true;")
    driver.find_element(By.ID, "sync-now").click()
    wait(driver, 60).until(
        expected_conditions.text_to_be_present_in_element(
            (By.ID, "from-orders"), f"{after_orders:,}"
        )
    )
    assert driver.execute_script("return window.notReloaded === true;")
    assert "task=" in driver.current_url
    wait(driver, 30).until(
        expected_conditions.text_to_be_present_in_element((By.ID, "sync-state"), "done")
    )
    assert driver.find_element(By.ID, "points").text == f"{alpine:,}"
    assert driver.find_element(By.ID, "alpine").text == f"{alpine:,}"
    discrepancy = driver.find_element(By.ID, "discrepancy").text
    assert discrepancy.startswith(_signed(alpine - after_orders)), discrepancy
    if alpine != after_orders:
        side = "Alpine IQ" if alpine > after_orders else "orders"
        assert f"{side} higher by {abs(alpine - after_orders):,}" in discrepancy
    row = driver.find_element(By.ID, f"order-{order_id}")
    assert f"#{order_id}" in row.text and "300.00" in row.text and f"{added_points:,}" in row.text
    stamp = row.find_element(By.TAG_NAME, "time")
    assert stamp.get_attribute("datetime") == created.replace(".000Z", "Z")
    zone = ZoneInfo(settings["timezone"])
    shown_day = datetime.fromisoformat(created).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    assert stamp.text.startswith(shown_day)
    first_row = driver.find_element(By.CSS_SELECTOR, "#orders tbody tr")
    assert first_row.get_attribute("id") == f"order-{order_id}"  # newest first
    verified = driver.find_element(By.ID, "last-verified").text[:16]
    assert verified >= driver.find_element(By.ID, "last-changed").text[:16]
    assert driver.find_element(By.CSS_SELECTOR, "#last-synced time").text == "just now"
    assert driver.execute_script("return window.notReloaded === true;")
    assert axe_violations(driver) == []
    screenshot(driver, "customer-panel")

    history = driver.find_element(By.ID, "view-history")
    history.click()
    wait(driver).until(gone(history))
    newest = driver.find_element(By.CSS_SELECTOR, "#history tbody tr.entry")
    assert f"Points from orders {before_orders:,} → {after_orders:,}" in newest.text
    assert f"added #{order_id}" in newest.text
    assert shown_day in newest.text
    assert "Alpine IQ balance" not in newest.text  # unchanged fields are left out
    assert axe_violations(driver) == []


@pytest.mark.parametrize("driver", [False], indirect=True, ids=["no-javascript"])
def test_sync_now_with_javascript_off_shows_the_task_state(
    synced: Dashboard, driver: WebDriver
) -> None:
    customer = _customers_with_alpine(synced)[1][0]
    _add_order(synced, customer, 98_000_002)
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/customers/{customer}")
    before = driver.execute_cdp_cmd("Page.getNavigationHistory", {})["entries"]
    button = driver.find_element(By.ID, "sync-now")
    button.click()
    wait(driver).until(gone(button))
    # the form posted and the browser followed the redirect: a page of its own (the script,
    # which would post it in the background, did not run)
    after = driver.execute_cdp_cmd("Page.getNavigationHistory", {})["entries"]
    assert len(after) == len(before) + 1
    assert f"/customers/{customer}?task=" in driver.current_url
    state = driver.find_element(By.ID, "sync-state").text
    assert state in ("running…", "done"), state
    if state == "running…":
        assert "task=" in str(driver.find_element(By.ID, "sync-refresh").get_attribute("href"))

    def refreshed_done(browser: WebDriver) -> bool:
        if browser.find_element(By.ID, "sync-state").text == "done":
            return True
        link = browser.find_element(By.ID, "sync-refresh")
        link.click()
        wait(browser).until(gone(link))
        return False

    wait(driver, 60).until(refreshed_done)
    assert driver.find_elements(By.ID, "order-98000002")
    assert "points" in driver.find_element(By.ID, "sync-detail").text
