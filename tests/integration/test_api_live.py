"""The API on real parts: Redis, a Celery worker process, the sandbox and the Firestore emulator.

A sync triggered over HTTP is run by the worker and followed to its summary over HTTP; a signed
webhook makes the worker sync that customer; the points look-up reads the profiles the worker
wrote and Alpine IQ's live balances from the sandbox.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from celery.result import AsyncResult

from loyalty_worker.adapters.alpine import AlpineIQClient
from loyalty_worker.adapters.firestore import FirestoreProfileStore
from loyalty_worker.adapters.http import RetryPolicy
from loyalty_worker.adapters.publisher import TaskPublisher, broker_app
from loyalty_worker.api.app import ApiServices, create_app
from loyalty_worker.api.auth import fingerprint
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.api.wiring import AlpineClients
from loyalty_worker.config import Settings
from loyalty_worker.domain.phone import normalize_phone, phone_hash
from loyalty_worker.domain.run import RunStatus
from loyalty_worker.services.lookup.points import check_points
from loyalty_worker.services.lookup.webhooks import sign
from tests.fixtures.pipeline import PHONE_HASH_KEY, Stack, wait_for

with warnings.catch_warnings():
    # Starlette's test client names an anyio alias that anyio 4.16 deprecates (at import only).
    warnings.filterwarnings("ignore", "The anyio.abc.BlockingPortal alias", DeprecationWarning)
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

TOKEN = "live-test-Vb7Nq2Xw9Lk4Tr6"
WEBHOOK_SECRET = "whsec-live-Rt6Yu1Io8Pa3"
BASE = "http://127.0.0.1"


class LiveApi:
    def __init__(self, client: TestClient, queries: FirestoreProfileStore) -> None:
        self.client = client
        self.queries = queries

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}, **kw)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.client.post(path, json=body, headers={"Authorization": f"Bearer {TOKEN}"})

    def follow(self, run_id: str, *, timeout_s: float = 180.0) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            response = self.get(f"/api/loyalty/runs/{run_id}")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body if RunStatus.of(body["status"]).ended else None

        result: dict[str, Any] = wait_for(finished, timeout_s=timeout_s, poll_s=0.5)
        return result


@pytest.fixture(scope="module")
def live(stack: Stack) -> Iterator[LiveApi]:
    settings = ApiSettings(
        tokens={TOKEN: ["org-1"]},
        webhook_secrets={"org-1": WEBHOOK_SECRET},
        webhook_dedupe_window_s=1,
    )
    client = redis.Redis.from_url(stack.redis_url)
    queries = FirestoreProfileStore(stack.firestore)
    alpine = AlpineClients(Settings(alpine_base_url=stack.sandbox.alpine_url), settings)
    services = ApiServices(
        store=queries,
        tracker=stack.tracker,
        enqueuer=TaskPublisher(broker_app(stack.redis_url)),
        redis=client,
        alpine_for=alpine,
        phone_key=PHONE_HASH_KEY.encode(),
    )
    # A host the app trusts by default (``api.edge``).
    with TestClient(create_app(services, settings), base_url=BASE) as http:
        yield LiveApi(http, queries)
    alpine.close()


@pytest.fixture(scope="module")
def synced(live: LiveApi, stack: Stack) -> dict[str, Any]:
    """org-1 synced once through the API; the run's final status."""
    response = live.post("/api/loyalty/sync", {"orgId": "org-1"})
    assert response.status_code == 202, response.text
    return live.follow(response.json()["runId"])


def test_a_sync_posted_over_http_runs_to_its_summary(synced: dict[str, Any], stack: Stack) -> None:
    assert synced["status"] == "completed", synced
    assert synced["listed"] == len(stack.org("org-1")["customers"]) == 300
    assert synced["done"] == 300
    assert synced["summary"]["listed"] == 300
    assert synced["summary"]["failed"] == 0


def test_a_customer_sync_posted_over_http(
    live: LiveApi, synced: dict[str, Any], stack: Stack
) -> None:
    customer = stack.org("org-1")["customers"][0]["id_customer"]
    response = live.post("/api/loyalty/sync", {"orgId": "org-1", "customerId": customer})
    assert response.status_code == 202
    result = AsyncResult(response.json()["taskId"], app=stack.celery).get(timeout=120)
    assert result["success"] is True, result
    assert result["customerId"] == customer


def test_a_signed_webhook_syncs_that_customer(
    live: LiveApi, synced: dict[str, Any], stack: Stack
) -> None:
    customer = stack.org("org-1")["customers"][1]["id_customer"]
    body = json.dumps(
        {
            "event": "order.created",
            "data": {"id": 990001, "id_customer": customer},
            "timestamp": time.time(),
        }
    ).encode()
    response = live.client.post(
        "/webhooks/alleaves",
        content=body,
        headers={
            "content-type": "application/json",
            "x-alleaves-org": "org-1",
            "x-alleaves-signature": sign(body, WEBHOOK_SECRET.encode()),
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["enqueued"] is True
    result = AsyncResult(response.json()["taskId"], app=stack.celery).get(timeout=120)
    assert (result["success"], result["customerId"]) == (True, customer)


def accounts(stack: Stack) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """org-1's customers with a phone: those with an Alpine IQ account, and those without."""
    org = stack.org("org-1")
    with_account = [c for c in org["customers"] if c.get("alpine_user_code")]
    without = [
        c
        for c in org["customers"]
        if not c.get("alpine_user_code") and normalize_phone(c.get("phone"))
    ]
    return with_account, without


def test_points_look_up_agrees_with_the_synced_profile_and_alpine(
    live: LiveApi, synced: dict[str, Any], stack: Stack
) -> None:
    with_account, _ = accounts(stack)
    contacts = {c["contactID"]: c for c in stack.org("org-1")["alpineContacts"]}
    for customer in with_account[:10]:
        profile = stack.profile("org-1", customer["id_customer"])
        assert profile is not None
        response = live.get(
            "/api/loyalty/points", params={"orgId": "org-1", "phone": customer["phone"]}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["customerId"] == customer["id_customer"]
        assert body["alpineAvailable"] is True
        assert body["calculated"]["points"] == profile["pointsFromOrders"]
        assert body["alpine"]["points"] == contacts[customer["alpine_user_code"]]["points"]
        assert body["status"] == profile["loyaltyStatus"]
        assert body["displayed"]["points"] == profile["points"]
        assert body["phone"].endswith(normalize_phone(customer["phone"])[-4:])  # type: ignore[index]


def test_points_without_an_alpine_account_are_found_by_the_synced_phone_hash(
    live: LiveApi, synced: dict[str, Any], stack: Stack
) -> None:
    _, without = accounts(stack)
    for customer in without[:5]:
        phone = normalize_phone(customer["phone"])
        assert phone is not None
        profile = stack.profile("org-1", customer["id_customer"])
        assert profile is not None and profile["phoneHash"] == phone_hash(
            phone, PHONE_HASH_KEY.encode()
        )
        params = {"orgId": "org-1", "phone": customer["phone"]}
        answer = live.get("/api/loyalty/points", params=params).json()
        assert answer["customerId"] == customer["id_customer"]
        assert answer["status"] == "no_alpine_account"
        assert answer["calculated"]["points"] == profile["pointsFromOrders"]
        assert answer["alpine"] is None


def test_points_with_alpine_down_come_from_firestore(
    live: LiveApi, synced: dict[str, Any], stack: Stack
) -> None:
    with_account, _ = accounts(stack)
    customer = with_account[-1]
    phone = normalize_phone(customer["phone"])
    assert phone is not None
    stack.sandbox.set_faults(error_rate=1.0)
    try:
        body = live.get("/api/loyalty/points", params={"orgId": "org-1", "phone": phone}).json()
    finally:
        stack.sandbox.reset_faults()
    assert body["alpineAvailable"] is False
    assert "unavailable" in body["note"]
    assert body["customerId"] == customer["id_customer"]
    assert body["alpine"]["live"] is False


def test_check_points_against_the_sandbox_and_emulator(
    live: LiveApi, synced: dict[str, Any], stack: Stack
) -> None:
    """The service itself over the real clients, with a small latency reading (printed only)."""
    org = stack.org("org-1")
    with_account, _ = accounts(stack)
    with httpx.Client(timeout=10.0) as http:
        alpine = AlpineIQClient(
            http,
            base_url=stack.sandbox.alpine_url,
            uid=org["alpine"]["uid"],
            api_key=org["alpine"]["apiKey"],
            retry=RetryPolicy(max_attempts=2, max_total_s=3.0),
        )
        timings = []
        for customer in with_account[:20]:
            started = time.perf_counter()
            answer = check_points("org-1", customer["phone"], store=live.queries, alpine=alpine)
            timings.append((time.perf_counter() - started) * 1000)
            assert answer.customer_id == customer["id_customer"]
    print(
        f"check_points over the sandbox and emulator: p50 {statistics.median(timings):.1f} ms, "
        f"max {max(timings):.1f} ms ({len(timings)} calls)"
    )


def test_the_check_points_command_prints_what_the_api_answers(
    live: LiveApi, synced: dict[str, Any], stack: Stack
) -> None:
    customer = accounts(stack)[0][0]
    env = {**os.environ, **stack.env, "LOYALTY_PHONE_HASH_KEY": PHONE_HASH_KEY}
    command = [sys.executable, "-m", "loyalty_worker.cli", "check-points", "--org", "org-1"]
    printed = subprocess.run(
        [*command, "--phone", customer["phone"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answered = live.get(
        "/api/loyalty/points", params={"orgId": "org-1", "phone": customer["phone"]}
    )
    assert answered.status_code == 200, answered.text
    assert json.loads(printed.stdout) == answered.json()
    assert json.loads(printed.stdout)["customerId"] == customer["id_customer"]


def test_the_api_refuses_what_it_should_on_real_parts(
    live: LiveApi, synced: dict[str, Any]
) -> None:
    assert live.client.get("/api/loyalty/runs/nope").status_code == 401
    assert live.get("/api/loyalty/runs/nope").status_code == 404
    response = live.post("/api/loyalty/sync", {"orgId": "org-2"})
    assert response.status_code == 403
    assert live.client.get("/openapi.json").status_code == 404  # LOYALTY_API_DOCS is off


def test_the_rate_limit_is_shared_by_two_api_processes_through_real_redis(stack: Stack) -> None:
    token = "live-rate-Mh4Jk6Lp8Nb2Vc5"
    client = redis.Redis.from_url(stack.redis_url)
    client.delete(f"loyalty:api:ratelimit:{fingerprint(token)}")  # a rerun within the minute
    settings = ApiSettings(tokens={token: ["org-1"]}, rate_limit_per_min=3)
    apps = [
        TestClient(
            create_app(
                ApiServices(
                    store=FirestoreProfileStore(stack.firestore),
                    tracker=stack.tracker,
                    enqueuer=TaskPublisher(broker_app(stack.redis_url)),
                    redis=client,
                    alpine_for=lambda org: None,
                ),
                settings,
            ),
            base_url=BASE,
        )
        for _ in range(2)
    ]
    headers = {"Authorization": f"Bearer {token}"}
    answers = [apps[n % 2].get("/api/loyalty/runs/nope", headers=headers) for n in range(4)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
