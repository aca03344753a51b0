"""Customers' contact details on the dashboard, in headless Chromium against the real stack:
names on the customer page and in search, and the enrollment list (sorts, filters, pages, the
CSV for the marketing tool and its audit)."""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from loyalty_worker.adapters.firestore import CONTACTS
from tests.browser.conftest import (
    Dashboard,
    axe_violations,
    email_of,
    gone,
    screenshot,
    sign_in,
    wait,
)

PAGE = 4  # rows a page, so that every list has a few pages


@pytest.fixture(scope="module")
def synced(dashboard: Dashboard) -> Dashboard:
    """org-1 synced once by the worker: its contacts written, with the sync's fields."""
    final = dashboard.stack.run("org-1")
    assert final.status == "completed", final
    return dashboard


def contacts(synced: Dashboard) -> list[dict[str, Any]]:
    query = synced.stack.firestore.collection(CONTACTS).where(
        filter=FieldFilter("orgId", "==", "org-1")
    )
    return [s.to_dict() or {} for s in query.stream()]


def expected(
    synced: Dashboard, *, sort: str, reach: str = "usable", tier: str | None = None
) -> list[int]:
    field = "pointsFromOrders" if sort == "points" else "lastOrderDay"
    rows = [
        c
        for c in contacts(synced)
        if c.get("loyaltyStatus") == "no_alpine_account"
        and c.get("reach") == reach
        and (tier is None or c.get("tier") == tier)
    ]
    rows.sort(key=lambda c: (-c[field], c["customerId"]))
    return [c["customerId"] for c in rows]


def press(driver: WebDriver, element_id: str) -> None:
    """Press a button or link and wait for the page it answers with, loaded whole."""
    element = driver.find_element(By.ID, element_id)
    element.click()
    wait(driver).until(gone(element))
    wait(driver).until(lambda d: d.execute_script("return document.readyState") == "complete")


def shown_ids(driver: WebDriver) -> list[int]:
    cells = driver.find_elements(By.CSS_SELECTOR, "#enrollment tbody tr td:first-child a")
    return [int(cell.text) for cell in cells]


def every_page(driver: WebDriver) -> list[int]:
    """The ids of every page, pressing Next until there is none."""
    ids = shown_ids(driver)
    while driver.find_elements(By.ID, "next-page"):
        press(driver, "next-page")
        ids += shown_ids(driver)
    return ids


def choose(driver: WebDriver, *, sort: str, reach: str, tier: str) -> None:
    """Pick the filter in the page's form and apply it."""
    Select(driver.find_element(By.ID, "sort")).select_by_value(sort)
    Select(driver.find_element(By.ID, "reach")).select_by_value(reach)
    Select(driver.find_element(By.ID, "tier")).select_by_value(tier)
    press(driver, "apply")


def assert_no_axe_violation(driver: WebDriver) -> None:
    assert axe_violations(driver) == [], driver.current_url


def named(synced: Dashboard) -> list[dict[str, Any]]:
    return [c for c in contacts(synced) if c.get("name")]


def test_the_customer_page_is_titled_with_the_name(synced: Dashboard, driver: WebDriver) -> None:
    contact = named(synced)[0]
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/customers/{contact['customerId']}")
    heading = driver.find_element(By.TAG_NAME, "h1").text
    assert heading.startswith(contact["name"]), heading
    assert f"#{contact['customerId']}" in heading
    assert contact["name"] in driver.title
    assert_no_axe_violation(driver)


def test_search_by_a_name_prefix_in_lower_case_by_email_and_by_id(
    synced: Dashboard, driver: WebDriver
) -> None:
    everyone = named(synced)
    prefixes = Counter(c["nameKey"][:3] for c in everyone)
    # A prefix several customers share: the search lists them all.
    prefix, count = prefixes.most_common(1)[0]
    assert count > 1
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/customers")
    driver.find_element(By.ID, "q").send_keys(prefix.upper()[:1] + prefix[1:])
    press(driver, "find")
    found = driver.find_element(By.TAG_NAME, "table").text
    for contact in everyone:
        if contact["nameKey"].startswith(prefix):
            assert contact["name"] in found, (prefix, contact["name"])
    assert_no_axe_violation(driver)

    with_email = next(c for c in everyone if c.get("email"))
    driver.get(f"{synced.url}/dashboard/orgs/org-1/customers")
    driver.find_element(By.ID, "q").send_keys(with_email["email"].upper())
    press(driver, "find")
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith(with_email["name"])

    driver.get(f"{synced.url}/dashboard/orgs/org-1/customers")
    driver.find_element(By.ID, "q").send_keys(str(with_email["customerId"]))
    press(driver, "find")
    assert f"#{with_email['customerId']}" in driver.find_element(By.TAG_NAME, "h1").text


def test_the_enrollment_list_sorts_filters_and_pages(synced: Dashboard, driver: WebDriver) -> None:
    tiers = Counter(
        c.get("tier") for c in contacts(synced) if c.get("loyaltyStatus") == "no_alpine_account"
    )
    tier = str(tiers.most_common(1)[0][0])
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/no-account?pageSize={PAGE}")
    for sort, reach, chosen in (
        ("points", "usable", ""),
        ("recent", "usable", ""),
        ("points", "none", ""),
        ("recent", "placeholder", ""),
        ("points", "usable", tier),
        ("recent", "none", tier),
    ):
        choose(driver, sort=sort, reach=reach, tier=chosen)
        want = expected(synced, sort=sort, reach=reach, tier=chosen or None)
        assert int(driver.find_element(By.ID, "listed").text) == len(want)
        assert every_page(driver) == want, (sort, reach, chosen)
    # The rows show who they are and how to reach them, in full.
    choose(driver, sort="points", reach="usable", tier="")
    by_id = {c["customerId"]: c for c in contacts(synced)}
    rows = driver.find_elements(By.CSS_SELECTOR, "#enrollment tbody tr")
    assert rows
    for row, cid in zip(rows, shown_ids(driver), strict=True):
        contact = by_id[cid]
        phone = contact.get("phone")
        if phone:
            assert f"({phone[:3]}) {phone[3:6]}-{phone[6:]}" in row.text
        assert (contact.get("email") or "") in row.text
        assert (contact.get("name") or "") in row.text
        assert "***" not in row.text
    screenshot(driver, "enrollment")
    assert_no_axe_violation(driver)


def test_the_pager_goes_to_the_end_and_back(synced: Dashboard, driver: WebDriver) -> None:
    want = expected(synced, sort="recent")
    assert len(want) > 2 * PAGE
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/no-account?sort=recent&pageSize={PAGE}")
    pages = [shown_ids(driver)]
    while driver.find_elements(By.ID, "next-page"):
        press(driver, "next-page")
        pages.append(shown_ids(driver))
    assert [cid for page in pages for cid in page] == want
    back = [shown_ids(driver)]
    while driver.find_elements(By.ID, "prev-page"):
        press(driver, "prev-page")
        back.append(shown_ids(driver))
    assert back == pages[::-1]


def test_the_csv_holds_full_contacts_and_each_export_is_recorded(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced)
    driver.get(f"{synced.url}/dashboard/orgs/org-1/no-account")
    listed = int(driver.find_element(By.ID, "listed").text)
    driver.find_element(By.ID, "enrollment-csv").click()
    folder = Path(driver.downloads)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    files: list[Path] = []
    while time.monotonic() < deadline and not files:
        files = [f for f in folder.glob("*.csv") if f.stat().st_size > 0]
        time.sleep(0.2)
    assert files, "no CSV downloaded"
    rows = list(csv.DictReader(io.StringIO(files[0].read_text(encoding="utf-8"))))
    assert len(rows) == listed
    by_id = {c["customerId"]: c for c in contacts(synced)}
    for row in rows:
        contact = by_id[int(row["customerId"])]
        assert row["name"] == (contact.get("name") or "")
        assert row["phone"] == (contact.get("phone") or "")
        assert row["email"] == (contact.get("email") or "")
        assert row["phone"] or row["email"]
    driver.get(f"{synced.url}/dashboard/orgs/org-1/no-account")
    latest = driver.find_element(By.CSS_SELECTOR, "#exports tbody tr").text
    assert f"{email_of('Ana')} (" in latest and f" {listed} " in f" {latest} "
    assert_no_axe_violation(driver)
