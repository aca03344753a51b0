"""Runs on the dashboard, in headless Chromium against the real stack: a dry run started from the
overview previews the customers it would change (largest change first, before → after) and
writes nothing; every run says what kind it is, in the runs table and on its page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions

from tests.browser.conftest import Dashboard, axe_violations, gone, sign_in, wait

DRY = "Dry run (preview: nothing written)"
# How far each of three customers' stored points from orders are moved off the rules' answer.
OFFSETS = (500, 50, 5)


@pytest.fixture(scope="module")
def synced(dashboard: Dashboard) -> Dashboard:
    """org-1 synced once by the worker: every profile is the rules' answer."""
    final = dashboard.stack.run("org-1")
    assert final.status == "completed", final
    return dashboard


@pytest.fixture
def tampered(synced: Dashboard) -> Iterator[list[dict[str, Any]]]:
    """Three customers' stored points from orders (and the first one's tier) moved off what the
    rules give: a dry run must find exactly them. Put back afterwards."""
    stack = synced.stack
    chosen: list[dict[str, Any]] = []
    for customer in stack.org("org-1")["customers"]:
        profile = stack.profile("org-1", customer["id_customer"])
        if profile and profile.get("pointsFromOrders", 0) > 0 and profile.get("tier"):
            chosen.append({"id": customer["id_customer"], **profile})
        if len(chosen) == len(OFFSETS):
            break
    assert len(chosen) == len(OFFSETS)
    customers = stack.firestore.collection("customers")
    for offset, profile in zip(OFFSETS, chosen, strict=True):
        change: dict[str, Any] = {"pointsFromOrders": profile["pointsFromOrders"] + offset}
        if offset == OFFSETS[0]:
            change["tier"] = "legacy"
        customers.document(f"org-1_{profile['id']}").update(change)
    try:
        yield chosen
    finally:
        for profile in chosen:
            customers.document(f"org-1_{profile['id']}").update(
                {"pointsFromOrders": profile["pointsFromOrders"], "tier": profile["tier"]}
            )


def _press(driver: WebDriver, button_id: str) -> str:
    """Press one of the overview's run buttons; the run's id, once its page is loaded."""
    button = driver.find_element(By.ID, button_id)
    button.click()
    wait(driver).until(gone(button))
    wait(driver).until(expected_conditions.presence_of_element_located((By.ID, "run-kind")))
    assert "/runs/" in driver.current_url
    return driver.current_url.split("/runs/")[1].split("?")[0]


def _kind_in_table(driver: WebDriver, dashboard: Dashboard, run_id: str) -> str:
    driver.get(f"{dashboard.url}/dashboard/orgs/org-1")
    for row in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr"):
        if row.find_element(By.CSS_SELECTOR, "td a").text == run_id:
            return str(row.find_element(By.CSS_SELECTOR, "td.run-kind").text)
    raise AssertionError(f"run {run_id} is not in the runs table")


def test_a_dry_run_previews_the_customers_it_would_change_largest_first(
    synced: Dashboard, driver: WebDriver, tampered: list[dict[str, Any]]
) -> None:
    stack = synced.stack
    posted = len(stack.messages())
    sign_in(driver, synced)
    run_id = _press(driver, "run-dry")
    # The page follows the run and shows the preview once it is over.
    wait(driver, 180).until(
        expected_conditions.presence_of_element_located((By.ID, "preview-changes"))
    )
    assert driver.find_element(By.ID, "run-status").text == "completed"
    assert DRY in driver.find_element(By.ID, "run-kind").text
    rows = driver.find_elements(By.CSS_SELECTOR, "#preview-changes tbody tr")
    shown = [
        (
            row.get_attribute("data-customer"),
            row.find_element(By.CSS_SELECTOR, "td.points").text,
            row.find_element(By.CSS_SELECTOR, "td.change").text,
            row.find_element(By.CSS_SELECTOR, "td.tier").text,
        )
        for row in rows
    ]
    wanted = [
        (
            str(p["id"]),
            f"{p['pointsFromOrders'] + offset:,} → {p['pointsFromOrders']:,}",
            f"-{offset}",
            f"{'legacy' if offset == OFFSETS[0] else p['tier']} → {p['tier']}",
        )
        for offset, p in zip(OFFSETS, tampered, strict=True)
    ]
    assert shown == wanted
    assert driver.find_elements(By.ID, "preview-more") == []
    assert axe_violations(driver) == []
    # A preview: nothing written, nobody alerted.
    first = stack.profile("org-1", tampered[0]["id"])
    assert first is not None
    assert first["pointsFromOrders"] == tampered[0]["pointsFromOrders"] + OFFSETS[0]
    assert len(stack.messages()) == posted
    assert _kind_in_table(driver, synced, run_id) == DRY


def test_an_incremental_run_is_labelled_in_the_table_and_on_its_page(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced)
    run_id = _press(driver, "run-incremental")
    wait(driver, 180).until(expected_conditions.presence_of_element_located((By.ID, "summary")))
    assert driver.find_element(By.ID, "run-status").text == "completed"
    kind = driver.find_element(By.ID, "run-kind")
    assert kind.find_element(By.TAG_NAME, "strong").text == "Incremental"
    link = kind.find_element(By.ID, "run-link").get_attribute("href") or ""
    assert link.endswith(f"/dashboard/orgs/org-1/runs/{run_id}")
    assert axe_violations(driver) == []
    assert _kind_in_table(driver, synced, run_id) == "Incremental"
