"""People in headless Chromium against the real stack and Firebase's Auth emulator: signing in
with a Markitbot account through the page's Firebase SDK, each role's controls (a reviewer
reviews, an admin also starts runs and syncs and manages people, a viewer reads with contacts
masked), a wrong password refused on the page, and the People page's every control pressed
(grant, a grant refused, revoke, end a person's sessions), with JavaScript on and off."""

from __future__ import annotations

import re

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select

from tests.browser.conftest import (
    JS_ON_AND_OFF,
    Dashboard,
    axe_violations,
    email_of,
    gone,
    session_of,
    sign_in,
    wait,
)

ORG = "org-1"


@pytest.fixture(scope="module")
def synced(dashboard: Dashboard) -> Dashboard:
    """org-1 synced once by the worker: discrepancies to review, customers without Alpine IQ."""
    final = dashboard.stack.run(ORG)
    assert final.status == "completed", final
    return dashboard


def _open(driver: WebDriver, dashboard: Dashboard, path: str = "") -> None:
    driver.get(f"{dashboard.url}/dashboard/orgs/{ORG}{path}")


def _has(driver: WebDriver, css: str) -> bool:
    return bool(driver.find_elements(By.CSS_SELECTOR, css))


def _first_customer(driver: WebDriver, dashboard: Dashboard) -> int:
    _open(driver, dashboard, "/discrepancies?state=all")
    row = driver.find_element(By.CSS_SELECTOR, "#discrepancies tbody tr[id^='d-']")
    return int(str(row.get_attribute("id")).removeprefix("d-"))


def test_a_reviewer_signs_in_with_the_firebase_sdk_and_sees_a_reviewers_controls(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced, "Rey")
    assert driver.find_element(By.ID, "who").text == f"{email_of('Rey')} · reviewer"
    assert not _has(driver, "#run-full") and not _has(driver, "#nav-people")
    customer = _first_customer(driver, synced)
    assert _has(driver, "button.ack") or _has(driver, "form.resolve")
    assert _has(driver, "#bulk")
    _open(driver, synced, f"/customers/{customer}")
    assert not _has(driver, "#sync-now") and _has(driver, "#view-history")
    _open(driver, synced, "/no-account")
    assert not _has(driver, "#enrollment-csv")
    assert "***-***-" not in driver.find_element(By.ID, "enrollment").text
    driver.get(f"{synced.url}/dashboard/orgs/{ORG}/people")
    assert "403" in driver.title or "Not allowed" in driver.page_source


def test_an_admin_signs_in_and_sees_an_admins_controls(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced, "Ana")
    assert driver.find_element(By.ID, "who").text == f"{email_of('Ana')} · admin"
    for control in ("#run-full", "#run-incremental", "#run-dry", "#nav-people"):
        assert _has(driver, control), control
    customer = _first_customer(driver, synced)
    _open(driver, synced, f"/customers/{customer}")
    assert _has(driver, "#sync-now")
    _open(driver, synced, "/no-account")
    assert _has(driver, "#enrollment-csv")


@JS_ON_AND_OFF
def test_a_viewer_reads_with_contacts_masked_and_without_controls(
    synced: Dashboard, driver: WebDriver
) -> None:
    sign_in(driver, synced, "Vic")
    assert not _has(driver, "#run-full") and not _has(driver, "#nav-people")
    _first_customer(driver, synced)
    assert not _has(driver, "button.ack") and not _has(driver, "#bulk")
    _open(driver, synced, "/no-account")
    listed = driver.find_element(By.ID, "enrollment").text
    assert "***-***-" in listed and not re.search(r"\(\d{3}\) \d{3}-\d{4}", listed)
    assert not _has(driver, "#enrollment-csv")


def test_a_wrong_password_is_refused_on_the_page(synced: Dashboard, driver: WebDriver) -> None:
    driver.get(f"{synced.url}/dashboard/sign-in")
    assert axe_violations(driver) == []
    driver.find_element(By.ID, "email").send_keys(email_of("Ana"))
    driver.find_element(By.ID, "password").send_keys("not-her-password")
    driver.find_element(By.ID, "sign-in").click()
    shown = wait(driver).until(
        expected_conditions.visibility_of_element_located((By.ID, "js-error"))
    )
    assert "do not match a Markitbot account" in shown.text
    assert driver.current_url.endswith("/dashboard/sign-in")
    assert all(c["name"] != "lw_session" for c in driver.get_cookies())


def _row(driver: WebDriver, email: str) -> str | None:
    for row in driver.find_elements(By.CSS_SELECTOR, "#people tbody tr"):
        if row.find_elements(By.CSS_SELECTOR, "td.email") and (
            row.find_element(By.CSS_SELECTOR, "td.email").text == email
        ):
            return row.find_element(By.CSS_SELECTOR, "td.role").text
    return None


def _press_in_row(driver: WebDriver, email: str, css: str) -> None:
    for row in driver.find_elements(By.CSS_SELECTOR, "#people tbody tr"):
        if row.find_element(By.CSS_SELECTOR, "td.email").text == email:
            button = row.find_element(By.CSS_SELECTOR, css)
            button.click()
            wait(driver).until(gone(button))
            return
    raise AssertionError(f"no row for {email}")


@JS_ON_AND_OFF
def test_the_people_page_grants_refuses_revokes_and_ends_sessions(
    synced: Dashboard, driver: WebDriver
) -> None:
    javascript = getattr(driver, "javascript", True)
    newcomer = f"new-{'js' if javascript else 'nojs'}@example.com"
    synced.project.create_account(newcomer)
    sign_in(driver, synced, "Ana")
    driver.find_element(By.ID, "nav-people").click()
    wait(driver).until(expected_conditions.presence_of_element_located((By.ID, "people")))
    if javascript:  # axe-core runs in the page
        assert axe_violations(driver) == []

    driver.find_element(By.ID, "grant-email").send_keys("nobody-here@example.com")
    Select(driver.find_element(By.ID, "grant-role")).select_by_value("viewer")
    button = driver.find_element(By.ID, "grant-submit")
    button.click()
    wait(driver).until(gone(button))
    assert "no Markitbot account has the e-mail" in driver.find_element(By.ID, "error").text

    driver.find_element(By.ID, "grant-email").send_keys(newcomer)
    Select(driver.find_element(By.ID, "grant-role")).select_by_value("reviewer")
    button = driver.find_element(By.ID, "grant-submit")
    button.click()
    wait(driver).until(gone(button))
    assert driver.find_element(By.ID, "done").text == "Role granted."
    assert _row(driver, newcomer) == "reviewer"

    # Vic is signed in elsewhere; ending his sessions signs that browser out.
    vic = session_of(synced, "Vic")
    with httpx.Client(base_url=synced.url, cookies={"lw_session": vic}) as elsewhere:
        assert elsewhere.get(f"/dashboard/orgs/{ORG}").status_code == 200
        driver.refresh()
        _press_in_row(driver, email_of("Vic"), "button.end-sessions")
        assert "sessions are ended" in driver.find_element(By.ID, "done").text
        ended = elsewhere.get(f"/dashboard/orgs/{ORG}")
        assert ended.status_code == 303 and ended.headers["location"] == "/dashboard/sign-in"

    _press_in_row(driver, newcomer, "button.revoke")
    assert driver.find_element(By.ID, "done").text == "Role revoked."
    assert _row(driver, newcomer) is None
    activity = driver.find_element(By.ID, "activity").text
    assert "Granted a role" in activity and "Revoked a role" in activity
    assert "Ended sessions" in activity
