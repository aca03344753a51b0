"""The dashboard app over working fakes, for the unit tests of its routes (``dash``: a signed-out
client; ``Dash.sign_in`` signs a person in with a role)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.api.app import ApiServices, DashboardServices, create_app
from loyalty_worker.api.dashboard_state import SignInConfig
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.domain.access import Role
from loyalty_worker.domain.phone import phone_hash
from tests.fake_people import FakeAccounts, FakeMemberStore, InMemoryActivityLog, member
from tests.fakes import (
    FakeAlpine,
    InMemoryContactStore,
    InMemoryDashboardStore,
    QueryableProfileStore,
    RecordingEnqueuer,
    RecordingRunTriggers,
    StaticTaskOutcomes,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "The anyio.abc.BlockingPortal alias", DeprecationWarning)
    from fastapi.testclient import TestClient

ORG1_TOKEN = "org1-caller-Q8v2LmZ7xK3pR9tW"
ADMIN_TOKEN = "every-org-H4nB6cY1sD8fJ2gV"
PHONE_KEY = b"phone-key-Mn3Bv5Cx7Zl9Kj1"
NOW = 1_800_000_000.0
BASE = "http://127.0.0.1"


@dataclass
class Dash:
    client: TestClient
    store: QueryableProfileStore
    dash: InMemoryDashboardStore
    tasks: StaticTaskOutcomes
    triggers: RecordingRunTriggers
    enqueuer: RecordingEnqueuer
    tracker: RunTracker
    accounts: FakeAccounts
    members: FakeMemberStore
    activity: InMemoryActivityLog

    def sign_in(self, role: Role = Role.ADMIN, uid: str = "uid-rita", org: str = "org-1") -> str:
        """Sign in as a person holding ``role`` in ``org``, through the form; the session's
        CSRF token (read from a page)."""
        account = self.accounts.add(f"{uid.removeprefix('uid-')}@example.com", uid=uid)
        self.members.put_member(member(org, account, role))
        form = self.client.get("/dashboard/sign-in")
        answer = self.client.post(
            "/dashboard/sign-in",
            data={"idToken": self.accounts.token_for(account), "csrf": csrf_of(form.text)},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        page = self.client.get(f"/dashboard/orgs/{org}")
        assert page.status_code == 200, page.text
        return csrf_of(page.text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([A-Za-z0-9_-]+)"', html)
    assert found, html
    return found.group(1)


def profile(customer_id: int, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "orgId": "org-1",
        "alleavesCustomerId": customer_id,
        "points": 100,
        "pointsFromOrders": 100,
        "pointsFromAlpine": 100,
        "tier": "bronze",
        "tierSource": "alpine_iq",
        "loyaltyStatus": "matched",
        "loyaltyReconciled": True,
        "loyaltyDiscrepancy": 0,
        "loyaltyOrders": {"9001": "60.00", "9002": "40.00"},
        "pointsLastCalculated": "2027-01-10T02:00:00+00:00",
    }
    document.update(fields)
    return document


@pytest.fixture
def dash(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dash]:
    for name in ("LOYALTY_API_TOKENS", "LOYALTY_API_WEBHOOK_SECRETS"):
        monkeypatch.delenv(name, raising=False)
    settings = ApiSettings(
        tokens={ORG1_TOKEN: ["org-1"], ADMIN_TOKEN: ["*"]},
        docs=True,
        # Loopback, and a host of the cookies' tests outside loopback.
        trusted_hosts=["127.0.0.1", "dash.example.com"],
    )
    store = QueryableProfileStore()
    store.settings["org-1"] = {"timezone": "America/Denver"}
    store.settings["org-2"] = {}
    store.profiles["org-1_1"] = profile(1)
    store.profiles["org-1_2"] = profile(
        2,
        tier="silver",
        pointsFromAlpine=700,
        pointsFromOrders=550,
        points=700,
        loyaltyStatus="alpine_higher",
        loyaltyReconciled=False,
        loyaltyDiscrepancy=150,
        phoneHash=phone_hash("5551234567", PHONE_KEY),
        firstName="Ana",
        lastName="Reyes",
    )
    store.profiles["org-1_3"] = profile(
        3,
        pointsFromAlpine=None,
        loyaltyStatus="calculated_higher",
        loyaltyDiscrepancy=-40,
        pointsFromOrders=140,
    )
    store.profiles["org-1_4"] = profile(
        4, loyaltyStatus="no_alpine_account", pointsFromAlpine=None, phone="(555) 010-4321"
    )
    store.run_summaries["org-1-run-0"] = {
        "orgId": "org-1",
        "status": "completed",
        "startedAt": NOW - 3600,
        "durationS": 12.5,
        "listed": 4,
        "synced": 2,
        "unchanged": 1,
        "failed": 1,
        "failedByReason": {"alpine_unavailable": 1},
        "failures": [{"customerId": 5, "reason": "alpine_unavailable", "detail": "x"}],
        "discrepancyRate": 0.5,
        "largestDiscrepancies": [
            {
                "customerId": 2,
                "phone": "5551234567",
                "calculated": 550,
                "alpine": 700,
                "discrepancy": 150,
                "status": "alpine_higher",
            }
        ],
        "tierChanges": [{"customerId": 2, "from": "bronze", "to": "silver"}],
        "tierChangeCount": 1,
        "alert": {"sent": True},
    }
    redis = fakeredis.FakeRedis()
    tracker = RunTracker(redis)
    enqueuer = RecordingEnqueuer()
    services = ApiServices(
        store=store,
        tracker=tracker,
        enqueuer=enqueuer,
        redis=redis,
        alpine_for=lambda org: FakeAlpine({}),
        phone_key=PHONE_KEY,
        clock=lambda: NOW,
        new_run_id=lambda org_id: f"{org_id}-run-1",
    )
    dash_store = InMemoryDashboardStore(store)
    tasks = StaticTaskOutcomes()
    triggers = RecordingRunTriggers()
    accounts, members, activity = FakeAccounts(), FakeMemberStore(), InMemoryActivityLog()
    dashboard = DashboardServices(
        store=dash_store,
        tasks=tasks,
        triggers=triggers,
        nightly_hour=2,
        clock=lambda: NOW,
        contacts=InMemoryContactStore(store.contacts),
        accounts=accounts,
        members=members,
        activity=activity,
        sign_in=SignInConfig("demo-api-key", "demo-markitbot", "http://127.0.0.1:9099"),
    )
    with TestClient(create_app(services, settings, dashboard), base_url=BASE) as client:
        yield Dash(
            client,
            store,
            dash_store,
            tasks,
            triggers,
            enqueuer,
            tracker,
            accounts,
            members,
            activity,
        )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
