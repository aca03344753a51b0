"""The dashboard in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium, against the API served by uvicorn over the real stack
(Redis, a Celery worker, the sandbox, the Firestore emulator).

No browser is downloaded: Selenium is pointed at ``/usr/bin/chromedriver`` and
``/usr/bin/chromium`` (``LOYALTY_CHROMIUM``/``LOYALTY_CHROMEDRIVER`` name others). A missing
browser fails the tests; it never skips them. A failed test saves a screenshot under
``test-artifacts/``; with ``LOYALTY_SCREENSHOTS=docs`` the tests also save the docs'
screenshots into ``docs/``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from loyalty_worker.adapters.accounts import FirebaseAccounts
from loyalty_worker.adapters.audit_records import FirestoreActivityLog
from loyalty_worker.adapters.contacts import FirestoreContactStore
from loyalty_worker.adapters.dashboard_runs import RedisRunTriggers
from loyalty_worker.adapters.dashboard_store import FirestoreDashboardStore
from loyalty_worker.adapters.firestore import FirestoreProfileStore
from loyalty_worker.adapters.members import FirestoreMemberStore
from loyalty_worker.adapters.publisher import TaskPublisher, broker_app
from loyalty_worker.adapters.task_results import RedisTaskOutcomes
from loyalty_worker.api.app import ApiServices, DashboardServices, create_app
from loyalty_worker.api.dashboard_state import SignInConfig
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.api.wiring import AlpineClients
from loyalty_worker.auth_emulator import delete_accounts
from loyalty_worker.config import Settings
from loyalty_worker.domain.access import Member, Role
from loyalty_worker.names import DEMO_FIREBASE_PROJECT
from tests.fixtures.auth_emulator import PASSWORD, EmulatedProject
from tests.fixtures.pipeline import PHONE_HASH_KEY, Stack, running_stack

TOKEN = "browser-test-Hq4Wd8Zc2Vn6Jp3"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("LOYALTY_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LOYALTY_CHROMEDRIVER", "/usr/bin/chromedriver")


class MovableClock:
    """The app's clock (``DashboardServices.clock``): the real time, which a test may move on
    (never back, so that stamps keep their order) instead of waiting."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds


# The people of the browser tests (Markitbot accounts in the Auth emulator), by first name:
# their role in org-1. Their e-mail is their name's, lower case, at example.com.
PEOPLE = {"Ana": Role.ADMIN, "Bea": Role.ADMIN, "Rey": Role.REVIEWER, "Vic": Role.VIEWER}


def email_of(name: str) -> str:
    return f"{name.lower()}@example.com"


@dataclass
class Dashboard:
    url: str
    stack: Stack
    token: str  # a machine's (the JSON routes by bearer)
    clock: MovableClock
    project: EmulatedProject  # the Auth emulator's project the people's accounts are in


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.path):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def browser_stack(firestore_emulator: str, test_redis_url: str) -> Iterator[Stack]:
    """The real stack with 120 generated customers (seed 11) and one worker."""
    with running_stack(
        firestore_emulator,
        "--customers",
        "120",
        "--seed",
        "11",
        worker_env={"LOYALTY_PHONE_HASH_KEY": PHONE_HASH_KEY},
        redis_url=test_redis_url,
        concurrency=4,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def dashboard(browser_stack: Stack, auth_emulator: str) -> Iterator[Dashboard]:
    """The API (dashboard included) served by uvicorn on a free loopback port; its people
    (``PEOPLE``) are accounts of a project of the module's own in the Auth emulator."""
    stack = browser_stack
    # The browser's SDK signs in to the emulator's own project (it names none): the module's
    # people are made there afresh.
    project = EmulatedProject(auth_emulator, DEMO_FIREBASE_PROJECT)
    delete_accounts(auth_emulator, project_id=project.project_id)
    members = FirestoreMemberStore(stack.firestore)
    for name, role in PEOPLE.items():
        uid = project.create_account(email_of(name))
        members.put_member(Member("org-1", uid, email_of(name), role, "test", datetime.now(UTC)))
    accounts = FirebaseAccounts(project.project_id, timeout_s=10.0)
    # The tests sign in more often than the default ten a minute from one address allows (the
    # default's 429 is tested on its own: tests/unit/test_people_access.py).
    settings = ApiSettings(tokens={TOKEN: ["org-1"]}, sign_in_limit_per_min=10_000)
    client = redis.Redis.from_url(stack.redis_url)
    publisher = TaskPublisher(broker_app(stack.redis_url))
    alpine = AlpineClients(Settings(alpine_base_url=stack.sandbox.alpine_url), settings)
    clock = MovableClock()
    services = ApiServices(
        store=FirestoreProfileStore(stack.firestore),
        tracker=stack.tracker,
        enqueuer=publisher,
        redis=client,
        alpine_for=alpine,
        phone_key=PHONE_HASH_KEY.encode(),
    )
    extra = DashboardServices(
        store=FirestoreDashboardStore(stack.firestore),
        contacts=FirestoreContactStore(stack.firestore),
        tasks=RedisTaskOutcomes(client),
        triggers=RedisRunTriggers(client, stack.tracker),
        clock=clock,
        accounts=accounts,
        members=members,
        sign_in=SignInConfig("demo-api-key", project.project_id, f"http://{auth_emulator}"),
        activity=FirestoreActivityLog(stack.firestore),
    )
    port = _free_port()
    config = uvicorn.Config(
        create_app(services, settings, extra), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dashboard-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the API did not start", pytrace=False)
        time.sleep(0.05)
    try:
        yield Dashboard(f"http://127.0.0.1:{port}", stack, TOKEN, clock, project)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        alpine.close()
        accounts.close()


@pytest.fixture
def driver(request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile; a screenshot is saved when the test fails.

    JavaScript is on unless the test asks otherwise (``@pytest.mark.parametrize("driver",
    [True, False], indirect=True)``: the pages must work without it)."""
    javascript = getattr(request, "param", True)
    for binary in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(binary) is None:
            pytest.fail(
                f"{binary} is missing: apt-get install chromium chromium-driver", pytrace=False
            )
    profile = tempfile.mkdtemp(prefix="loyalty-chromium-")
    downloads = tempfile.mkdtemp(prefix="loyalty-downloads-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
        *([] if javascript else ["--blink-settings=scriptEnabled=false"]),
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": downloads, "download.prompt_for_download": False},
    )
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.implicitly_wait(0)
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads}
    )
    browser.downloads = downloads  # type: ignore[attr-defined]
    browser.javascript = javascript  # type: ignore[attr-defined]
    if not javascript:  # the pages' scripts must not run (Selenium's own still do)
        browser.get("data:text/html,<title>off</title><script>document.title='on'</script>")
        assert browser.title == "off", "Chromium ran a page's script with JavaScript off"
    try:
        yield browser
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(ARTIFACTS / f"{request.node.name}.png"))
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(downloads, ignore_errors=True)


JS_ON_AND_OFF = pytest.mark.parametrize(
    "driver", [True, False], indirect=True, ids=["javascript", "no-javascript"]
)


def screenshot(browser: WebDriver, name: str) -> None:
    """Save one of the docs' screenshots (``docs/``) when ``LOYALTY_SCREENSHOTS=docs``."""
    if os.environ.get("LOYALTY_SCREENSHOTS") == "docs":
        (ROOT / "docs").mkdir(exist_ok=True)
        browser.save_screenshot(str(ROOT / "docs" / f"{name}.png"))


def wait(browser: WebDriver, timeout_s: float = 30.0) -> WebDriverWait[WebDriver]:
    return WebDriverWait(browser, timeout_s, poll_frequency=0.2)


def gone(element: WebElement) -> Callable[[WebDriver], bool]:
    """A wait's condition: the page that held ``element`` is gone (the next one answered).
    Selenium's ``staleness_of``, but Chromium sometimes answers a check of a node of the page
    it just left with an inspector error rather than a stale-element one: that is gone too."""

    def check(_: WebDriver) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False

    return check


def sign_in(browser: WebDriver, dashboard: Dashboard, name: str = "Ana") -> None:
    """Sign in as one of ``PEOPLE`` and land on org-1's overview. With JavaScript on, as a
    person does: the page's Firebase SDK signs in with the e-mail and password (the Auth
    emulator), then posts the ID token. Signing in needs JavaScript: with it off, the same
    exchange is made outside the browser and the session's cookie handed to it."""
    browser.get(f"{dashboard.url}/dashboard/sign-in")
    if getattr(browser, "javascript", True):
        browser.find_element(By.ID, "email").send_keys(email_of(name))
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "sign-in").click()
    else:
        browser.add_cookie(
            {"name": "lw_session", "value": session_of(dashboard, name), "path": "/"}
        )
        browser.get(f"{dashboard.url}/dashboard")
    wait(browser).until(expected_conditions.presence_of_element_located((By.ID, "tiers")))


def session_of(dashboard: Dashboard, name: str) -> str:
    """A session of one of ``PEOPLE``, signed in over HTTP as the page's script does it: the
    ID token of a sign-in at the Auth emulator, posted with the form's CSRF token."""
    with httpx.Client(base_url=dashboard.url, timeout=30) as http:
        form = http.get("/dashboard/sign-in").text
        found = re.search(r'name="csrf" value="([^"]+)"', form)
        assert found is not None, form
        id_token = dashboard.project.sign_in(email_of(name))
        signed = http.post("/dashboard/sign-in", data={"idToken": id_token, "csrf": found.group(1)})
        assert signed.status_code == 303, signed.text[:2000]
        session = http.cookies.get("lw_session")
        assert session, "no session cookie"
        return session


AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(driver: WebDriver) -> list[str]:
    """axe-core's violations of the page in the browser, under its default rules (none off)."""
    assert AXE.exists(), f"{AXE} is missing: make browser installs it"
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    found: list[list[Any]] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => [v.impact, v.id, v.nodes.length])));"
    )
    return [f"{rule} ({impact}, {nodes}x)" for impact, rule, nodes in found]
