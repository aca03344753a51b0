"""The HTTP API over working fakes: every status it promises, and no secret in its logs."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.api.app import ApiServices, DashboardServices, create_app
from loyalty_worker.api.dashboard_state import SignInConfig
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.config import DEFAULT_PUBLIC_URL
from loyalty_worker.domain.models import AlpineProfile
from loyalty_worker.domain.phone import phone_hash
from loyalty_worker.domain.run import RunStatus
from loyalty_worker.errors import TransientError
from loyalty_worker.services.lookup.webhooks import sign
from tests.fake_people import FakeAccounts, FakeMemberStore
from tests.fakes import (
    FakeAlpine,
    InMemoryContactStore,
    InMemoryDashboardStore,
    QueryableProfileStore,
    RecordingEnqueuer,
    RecordingRunTriggers,
    StaticTaskOutcomes,
)
from tests.results import failed, synced

with warnings.catch_warnings():
    # Starlette's test client names an anyio alias that anyio 4.16 deprecates (at import only).
    warnings.filterwarnings("ignore", "The anyio.abc.BlockingPortal alias", DeprecationWarning)
    from fastapi.testclient import TestClient

ORG1_TOKEN = "org1-caller-Q8v2LmZ7xK3pR9tW"
ADMIN_TOKEN = "every-org-H4nB6cY1sD8fJ2gV"
UNKNOWN_TOKEN = "stranger-token-A1b2C3d4E5f6G7"
WEBHOOK_SECRET = "whsec-org1-Zt5Wq8Ne3Rb7Ym1"
FALLBACK_SECRET = "whsec-org2-Kp9Lx4Hv6Jc2Ds0"
PHONE_KEY = "phone-key-Mn3Bv5Cx7Zl9Kj1"
NOW = 1_800_000_000.0
PHONE = "5551234567"
# Where the test client sends its requests: a host the app trusts by default (loopback).
BASE = "http://127.0.0.1"


@dataclass
class Api:
    client: TestClient
    store: QueryableProfileStore
    enqueuer: RecordingEnqueuer
    alpine: FakeAlpine
    tracker: RunTracker
    redis: fakeredis.FakeRedis

    def get(self, path: str, token: str | None = ORG1_TOKEN, **kw: Any) -> Any:
        return self.client.get(path, headers=auth(token), **kw)

    def post(self, path: str, body: Any, token: str | None = ORG1_TOKEN) -> Any:
        return self.client.post(path, json=body, headers=auth(token))

    def webhook(
        self,
        payload: dict[str, Any] | bytes,
        *,
        secret: str = WEBHOOK_SECRET,
        org: str | None = "org-1",
        signature: str | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"content-type": "application/json"}
        headers["x-alleaves-signature"] = (
            sign(body, secret.encode()) if signature is None else signature
        )
        if org is not None:
            headers["x-alleaves-org"] = org
        return self.client.post("/webhooks/alleaves", content=body, headers=headers, params=params)


def auth(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def order_event(
    customer_id: int | None = 42, *, at: float = NOW, order_id: int = 9001
) -> dict[str, Any]:
    data: dict[str, Any] = {"id": order_id, "status": "completed", "subtotal": 40}
    if customer_id is not None:
        data["id_customer"] = customer_id
    return {"event": "order.created", "data": data, "timestamp": at}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name in ("LOYALTY_API_TOKENS", "LOYALTY_API_WEBHOOK_SECRETS"):
        monkeypatch.delenv(name, raising=False)
    with build_api() as built:
        yield built


@contextmanager
def build_api(redis: fakeredis.FakeRedis | None = None, **overrides: Any) -> Iterator[Api]:
    """The app over fakes, started; ``overrides`` change its settings, ``redis`` is shared."""
    api = assemble_api(redis, **overrides)
    with api.client:
        yield api


def assemble_api(
    redis: fakeredis.FakeRedis | None = None,
    *,
    public_url: str = DEFAULT_PUBLIC_URL,
    base_url: str = BASE,
    **overrides: Any,
) -> Api:
    """The app over fakes and a (not yet started) test client at ``base_url`` (a trusted host
    by default); ``overrides`` change its settings."""
    settings = ApiSettings(
        **{
            "tokens": {ORG1_TOKEN: ["org-1"], ADMIN_TOKEN: ["*"]},
            "webhook_secrets": {"org-2": FALLBACK_SECRET},
            "webhook_replay_window_s": 300,
            "webhook_dedupe_window_s": 30,
            **overrides,
        }
    )
    store = QueryableProfileStore()
    store.settings["org-1"] = {
        "alleaves": {"username": "u", "password": "p", "pin": "1", "webhookSecret": WEBHOOK_SECRET},
        "alpine": {"uid": "u1", "apiKey": "k"},
    }
    store.settings["org-2"] = {}
    store.profiles["org-1_42"] = {
        "orgId": "org-1",
        "alleavesCustomerId": 42,
        "points": 475,
        "pointsFromOrders": 450,
        "pointsFromAlpine": 475,
        "tier": "silver",
        "tierSource": "alpine_iq",
        "loyaltyStatus": "within_tolerance",
        "loyaltyReconciled": True,
        "loyaltyDiscrepancy": 25,
        "alpineUserId": "C-42",
        "phoneHash": phone_hash(PHONE, PHONE_KEY.encode()),
        "pointsLastCalculated": "2026-01-30T02:00:00+00:00",
    }
    redis = redis if redis is not None else fakeredis.FakeRedis()
    tracker = RunTracker(redis)
    enqueuer = RecordingEnqueuer()
    alpine = FakeAlpine({PHONE: AlpineProfile(475, "silver", "2026-01-29", contact_id="C-42")})
    services = ApiServices(
        store=store,
        tracker=tracker,
        enqueuer=enqueuer,
        redis=redis,
        alpine_for=lambda org: alpine,
        phone_key=PHONE_KEY.encode(),
        clock=lambda: NOW,
        new_run_id=lambda org_id: f"{org_id}-run-1",
    )
    # The dashboard's routes over fakes of the same documents (tests.dashboard_fakes).
    dashboard = DashboardServices(
        store=InMemoryDashboardStore(store),
        tasks=StaticTaskOutcomes(),
        triggers=RecordingRunTriggers(),
        clock=lambda: NOW,
        contacts=InMemoryContactStore(store.contacts),
        accounts=FakeAccounts(),
        members=FakeMemberStore(),
        sign_in=SignInConfig("demo-api-key", "demo-markitbot", "http://127.0.0.1:9099"),
    )
    app = create_app(services, settings, dashboard, public_url=public_url)
    client = TestClient(app, base_url=base_url)
    return Api(client, store, enqueuer, alpine, tracker, redis)


def fields_of(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [error["field"] for error in response.json()["detail"]]


# --- POST /api/loyalty/sync ---------------------------------------------------------------


def test_org_sync_is_enqueued_and_readable_at_once(api: Api) -> None:
    response = api.post("/api/loyalty/sync", {"orgId": "org-1", "dryRun": True})
    assert response.status_code == 202
    assert response.json() == {"runId": "org-1-run-1", "statusUrl": "/api/loyalty/runs/org-1-run-1"}
    assert response.headers["location"] == "/api/loyalty/runs/org-1-run-1"
    (run,) = api.enqueuer.org_runs
    assert (run["org_id"], run["run_id"], run["dry_run"]) == ("org-1", "org-1-run-1", True)
    status = api.get("/api/loyalty/runs/org-1-run-1")
    assert status.status_code == 200
    assert status.json() == {
        "runId": "org-1-run-1",
        "orgId": "org-1",
        "status": "queued",
        "done": 0,
        "failed": 0,
    }


def test_customer_sync_is_enqueued(api: Api) -> None:
    response = api.post("/api/loyalty/sync", {"orgId": "org-1", "customerId": 42})
    assert response.status_code == 202
    assert response.json() == {"taskId": "task-1"}
    assert api.enqueuer.customer_syncs[0] | {"task_id": None} == {
        "org_id": "org-1",
        "customer_id": 42,
        "dry_run": False,
        "delay_s": 0.0,
        "task_id": None,
    }
    assert api.enqueuer.org_runs == []


def test_missing_token_is_401_with_a_challenge(api: Api) -> None:
    response = api.post("/api/loyalty/sync", {"orgId": "org-1"}, token=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert api.enqueuer.org_runs == []


@pytest.mark.parametrize(
    "header",
    [f"Bearer {UNKNOWN_TOKEN}", f"Bearer {ORG1_TOKEN}x", f"Basic {ORG1_TOKEN}", "Bearer", ""],
)
def test_wrong_token_is_401(api: Api, header: str) -> None:
    response = api.client.post(
        "/api/loyalty/sync", json={"orgId": "org-1"}, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert "www-authenticate" in response.headers
    assert ORG1_TOKEN not in response.text


def test_token_of_another_org_is_403(api: Api) -> None:
    assert api.post("/api/loyalty/sync", {"orgId": "org-2"}).status_code == 403
    # even for an org that does not exist: a caller cannot probe which orgs exist
    assert api.post("/api/loyalty/sync", {"orgId": "org-9"}).status_code == 403
    assert api.enqueuer.org_runs == []


def test_unknown_org_is_404(api: Api) -> None:
    response = api.post("/api/loyalty/sync", {"orgId": "org-9"}, token=ADMIN_TOKEN)
    assert response.status_code == 404
    assert "org-9" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "orgId"),
        ({"orgId": ""}, "orgId"),
        ({"orgId": "org/1"}, "orgId"),
        ({"orgId": "org-1", "customerId": "abc"}, "customerId"),
        ({"orgId": "org-1", "customerId": 0}, "customerId"),
        ({"orgId": "org-1", "dryRun": "yes"}, "dryRun"),
        ({"orgId": "org-1", "customerid": 42}, "customerid"),  # a typo must not sync the org
    ],
)
def test_bad_body_is_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    assert fields_of(api.post("/api/loyalty/sync", body)) == [field]
    assert api.enqueuer.org_runs == [] and api.enqueuer.customer_syncs == []


def test_not_json_is_422(api: Api) -> None:
    response = api.client.post(
        "/api/loyalty/sync",
        content=b"{nope",
        headers={**auth(ORG1_TOKEN), "content-type": "application/json"},
    )
    assert response.status_code == 422


def test_broker_down_is_503_and_the_run_reads_failed(api: Api) -> None:
    api.enqueuer.error = TransientError("broker", "could not enqueue loyalty.sync_org")
    response = api.post("/api/loyalty/sync", {"orgId": "org-1"})
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert api.get("/api/loyalty/runs/org-1-run-1").json()["status"] == "failed"


# --- GET /api/loyalty/runs/{runId} --------------------------------------------------------


def test_run_progress_and_summary(api: Api) -> None:
    api.tracker.start("r-1", "org-1")
    api.tracker.set_listed("r-1", 2)
    api.tracker.record("r-1", {"1": synced(1)})
    assert api.get("/api/loyalty/runs/r-1").json() == {
        "runId": "r-1",
        "orgId": "org-1",
        "status": "syncing",
        "listed": 2,
        "done": 1,
        "failed": 0,
    }
    api.tracker.record("r-1", {"2": failed(2)})
    api.tracker.finish("r-1", RunStatus.COMPLETED, {"runId": "r-1", "listed": 2, "failed": 1})
    body = api.get("/api/loyalty/runs/r-1").json()
    assert (body["status"], body["done"], body["failed"]) == ("completed", 2, 1)
    assert body["summary"] == {"runId": "r-1", "listed": 2, "failed": 1}


def test_run_forgotten_by_redis_is_read_from_its_summary(api: Api) -> None:
    api.store.run_summaries["old-run"] = {
        "runId": "old-run",
        "orgId": "org-1",
        "status": "completed",
        "listed": 5,
        "failed": 0,
    }
    body = api.get("/api/loyalty/runs/old-run").json()
    assert (body["status"], body["listed"], body["done"]) == ("completed", 5, 5)
    assert body["summary"]["runId"] == "old-run"


def test_unknown_run_is_404(api: Api) -> None:
    assert api.get("/api/loyalty/runs/nope").status_code == 404


def test_run_of_another_org_is_the_404_of_no_run(api: Api) -> None:
    api.tracker.start("r-2", "org-2")
    other, missing = api.get("/api/loyalty/runs/r-2"), api.get("/api/loyalty/runs/r-3")
    assert (other.status_code, missing.status_code) == (404, 404)
    assert other.json() == {"detail": "unknown run 'r-2'"}
    assert missing.json() == {"detail": "unknown run 'r-3'"}
    assert other.headers.keys() == missing.headers.keys()
    assert api.get("/api/loyalty/runs/r-2", token=ADMIN_TOKEN).status_code == 200


def test_run_needs_a_token(api: Api) -> None:
    api.tracker.start("r-1", "org-1")
    assert api.get("/api/loyalty/runs/r-1", token=None).status_code == 401
    assert api.get("/api/loyalty/runs/r-1", token=UNKNOWN_TOKEN).status_code == 401


def test_bad_run_id_is_422(api: Api) -> None:
    assert fields_of(api.get("/api/loyalty/runs/%20bad%20")) == ["runId"]


# --- GET /api/loyalty/points --------------------------------------------------------------


def test_points_by_phone(api: Api) -> None:
    response = api.get("/api/loyalty/points", params={"orgId": "org-1", "phone": "(555) 123-4567"})
    assert response.status_code == 200
    body = response.json()
    assert body["calculated"] == {"points": 450, "tier": "bronze", "source": "orders"}
    assert body["alpine"]["points"] == 475 and body["alpine"]["live"] is True
    assert (body["status"], body["reconciled"], body["discrepancy"]) == (
        "within_tolerance",
        True,
        25,
    )
    assert body["phone"] == "***-***-4567"
    assert body["alpineAvailable"] is True
    assert body["customerId"] == 42
    assert PHONE not in response.text


def test_points_with_alpine_down(api: Api) -> None:
    api.alpine.error = TransientError("alpine_iq", "timed out")
    body = api.get("/api/loyalty/points", params={"orgId": "org-1", "phone": PHONE}).json()
    assert body["alpineAvailable"] is False
    assert body["calculated"]["points"] == 450  # found by phoneHash without Alpine IQ
    assert "unavailable" in body["note"]


def test_points_statuses(api: Api) -> None:
    params = {"orgId": "org-1", "phone": PHONE}
    assert api.get("/api/loyalty/points", token=None, params=params).status_code == 401
    assert api.get("/api/loyalty/points", token=UNKNOWN_TOKEN, params=params).status_code == 401
    other = {"orgId": "org-2", "phone": PHONE}
    assert api.get("/api/loyalty/points", params=other).status_code == 403
    unknown = {"orgId": "org-9", "phone": PHONE}
    assert api.get("/api/loyalty/points", token=ADMIN_TOKEN, params=unknown).status_code == 404
    assert fields_of(api.get("/api/loyalty/points", params={"orgId": "org-1"})) == ["phone"]
    assert fields_of(api.get("/api/loyalty/points", params={"phone": PHONE})) == ["orgId"]


def test_points_with_a_bad_phone_is_422_without_echoing_it(api: Api) -> None:
    response = api.get("/api/loyalty/points", params={"orgId": "org-1", "phone": "555-123-45678"})
    assert fields_of(response) == ["phone"]
    assert "12345678" not in response.text
    assert api.alpine.lookups == []


def test_firestore_down_is_503(api: Api) -> None:
    api.store.error = TransientError("firestore", "read settings: ServiceUnavailable")
    response = api.get("/api/loyalty/points", params={"orgId": "org-1", "phone": PHONE})
    assert response.status_code == 503


# --- POST /webhooks/alleaves --------------------------------------------------------------


def test_webhook_enqueues_the_customer_after_the_dedupe_window(api: Api) -> None:
    response = api.webhook(order_event(42))
    assert response.status_code == 202
    assert response.json() == {"enqueued": True, "taskId": "task-1"}
    (sent,) = api.enqueuer.customer_syncs
    assert (sent["org_id"], sent["customer_id"], sent["delay_s"]) == ("org-1", 42, 30.0)


def test_a_burst_of_events_is_one_sync(api: Api) -> None:
    assert api.webhook(order_event(42)).json()["enqueued"] is True
    second = api.webhook(order_event(42, at=NOW + 1, order_id=9002))
    assert second.status_code == 202
    assert second.json()["enqueued"] is False
    assert "already queued" in second.json()["reason"]
    # another customer is not held back
    assert api.webhook(order_event(43, order_id=9003)).json()["enqueued"] is True
    assert [s["customer_id"] for s in api.enqueuer.customer_syncs] == [42, 43]


def test_webhook_missing_signature_is_401(api: Api) -> None:
    response = api.webhook(order_event(), signature="")
    assert response.status_code == 401
    assert "missing" in response.json()["detail"]
    assert api.enqueuer.customer_syncs == []


@pytest.mark.parametrize(
    "signature",
    ["0" * 64, "not-hex", "sha256=" + "f" * 64],
)
def test_webhook_bad_signature_is_401(api: Api, signature: str) -> None:
    assert api.webhook(order_event(), signature=signature).status_code == 401
    assert api.enqueuer.customer_syncs == []


def test_webhook_signed_with_another_secret_is_401(api: Api) -> None:
    assert api.webhook(order_event(), secret=FALLBACK_SECRET).status_code == 401


def test_webhook_signature_over_another_body_is_401(api: Api) -> None:
    body = json.dumps(order_event(42)).encode()
    tampered = json.dumps(order_event(43)).encode()
    signature = sign(body, WEBHOOK_SECRET.encode())
    assert api.webhook(tampered, signature=signature).status_code == 401


def test_webhook_sha256_prefixed_signature_is_accepted(api: Api) -> None:
    body = json.dumps(order_event()).encode()
    signature = "sha256=" + sign(body, WEBHOOK_SECRET.encode()).upper()
    assert api.webhook(body, signature=signature).status_code == 202


@pytest.mark.parametrize(
    "timestamp",
    [NOW - 301, NOW + 301, (NOW - 3600) * 1000, "2020-01-01T00:00:00Z", None, "soon", True],
)
def test_webhook_stale_or_missing_timestamp_is_401(api: Api, timestamp: Any) -> None:
    event = order_event()
    event["timestamp"] = timestamp
    response = api.webhook(event)
    assert response.status_code in (401, 422)
    if timestamp is not None:
        assert response.status_code == 401
    assert api.enqueuer.customer_syncs == []


@pytest.mark.parametrize("timestamp", [NOW - 299, NOW * 1000, "2027-01-15T08:00:00Z"])
def test_webhook_fresh_timestamps_in_any_form(api: Api, timestamp: Any) -> None:
    event = order_event()
    event["timestamp"] = timestamp
    assert api.webhook(event).status_code == 202


def test_webhook_replayed_delivery_is_401(api: Api) -> None:
    body = json.dumps(order_event(42)).encode()
    assert api.webhook(body).status_code == 202
    replay = api.webhook(body)
    assert replay.status_code == 401
    assert "already received" in replay.json()["detail"]
    assert len(api.enqueuer.customer_syncs) == 1


def test_webhook_for_an_unknown_org_is_401(api: Api) -> None:
    assert api.webhook(order_event(), org="org-9").status_code == 401


def test_webhook_org_from_the_query_and_the_fallback_secret(api: Api) -> None:
    response = api.webhook(
        order_event(7), secret=FALLBACK_SECRET, org=None, params={"orgId": "org-2"}
    )
    assert response.status_code == 202
    assert api.enqueuer.customer_syncs[0]["org_id"] == "org-2"


def test_webhook_without_an_org_is_422(api: Api) -> None:
    assert fields_of(api.webhook(order_event(), org=None)) == ["orgId"]
    conflicting = api.webhook(order_event(), params={"orgId": "org-2"})
    assert fields_of(conflicting) == ["x-alleaves-org"]


def test_webhook_events_that_name_no_customer_are_acknowledged(api: Api) -> None:
    anonymous = api.webhook(order_event(0))
    assert anonymous.status_code == 202 and anonymous.json()["enqueued"] is False
    missing = api.webhook(order_event(None, order_id=9004))
    assert missing.json()["enqueued"] is False
    other = api.webhook({"event": "inventory.updated", "data": {"id": 1}, "timestamp": NOW + 2})
    assert other.status_code == 202 and other.json()["enqueued"] is False
    assert api.enqueuer.customer_syncs == []


def test_webhook_customer_event(api: Api) -> None:
    event = {"event": "customer.updated", "data": {"id": 77}, "timestamp": NOW}
    assert api.webhook(event).json()["enqueued"] is True
    assert api.enqueuer.customer_syncs[0]["customer_id"] == 77


def test_webhook_signed_but_not_an_event_is_422(api: Api) -> None:
    assert api.webhook(b"{not json").status_code == 422
    assert fields_of(api.webhook({"data": {}, "timestamp": NOW})) == ["event"]


def test_webhook_broker_down_is_503_and_the_retry_goes_through(api: Api) -> None:
    body = json.dumps(order_event(42)).encode()
    api.enqueuer.error = TransientError("broker", "could not enqueue loyalty.sync_customer")
    assert api.webhook(body).status_code == 503
    api.enqueuer.error = None
    retried = api.webhook(body)  # the sender retries the very same delivery
    assert retried.status_code == 202 and retried.json()["enqueued"] is True


def test_webhook_body_too_large_is_413(api: Api) -> None:
    event = order_event()
    event["data"]["items"] = ["x" * 1000] * 300
    assert api.webhook(event).status_code == 413


def test_webhook_redis_down_is_503(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    def down(*args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("connection refused")

    monkeypatch.setattr(api.redis, "set", down)
    assert api.webhook(order_event()).status_code == 503


# --- secrets, logs and schema -------------------------------------------------------------


def test_no_token_secret_or_phone_reaches_the_logs(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.post("/api/loyalty/sync", {"orgId": "org-1"})
    api.post("/api/loyalty/sync", {"orgId": "org-2"})
    api.post("/api/loyalty/sync", {"orgId": "org-1"}, token=UNKNOWN_TOKEN)
    api.get("/api/loyalty/points", params={"orgId": "org-1", "phone": PHONE})
    api.get("/api/loyalty/points", params={"orgId": "org-1", "phone": "555-123-45678"})
    api.webhook(order_event())
    api.webhook(order_event(), signature="0" * 64)
    # (the test's own HTTP client logs its request URLs: those lines are not the API's)
    records = [r for r in caplog.records if not r.name.startswith("httpx")]
    text = "\n".join(r.getMessage() for r in records)
    assert "refused a request with an unknown bearer token" in text  # the logs did run
    for secret in (ORG1_TOKEN, ADMIN_TOKEN, UNKNOWN_TOKEN, WEBHOOK_SECRET, PHONE_KEY, PHONE):
        assert secret not in text
    assert "12345678" not in text


def test_settings_never_show_secrets() -> None:
    settings = ApiSettings(
        tokens={ORG1_TOKEN: ["org-1"]},
        webhook_secrets={"org-1": WEBHOOK_SECRET},
    )
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    for secret in (ORG1_TOKEN, WEBHOOK_SECRET):
        assert secret not in shown


@pytest.mark.parametrize("token", ["short", "changeme", "a" * 32])
def test_placeholder_tokens_are_refused_at_start(token: str) -> None:
    with pytest.raises(ValueError) as caught:
        ApiSettings(tokens={token: ["org-1"]})
    assert token not in str(caught.value)


def test_openapi_schema_names_and_describes_every_field(api: Api) -> None:
    schema = api.client.app.openapi()  # type: ignore[attr-defined]
    assert {"/api/loyalty/sync", "/api/loyalty/runs/{runId}", "/api/loyalty/points"} <= set(
        schema["paths"]
    )
    assert "/webhooks/alleaves" in schema["paths"]
    components = schema["components"]["schemas"]
    for name in ("SyncRequest", "RunAccepted", "TaskAccepted", "RunStatus", "PointsCheck"):
        for field, spec in components[name]["properties"].items():
            assert spec.get("description"), f"{name}.{field} has no description"
    assert set(components["SyncRequest"]["properties"]) == {"orgId", "customerId", "dryRun"}
    assert components["SyncRequest"]["required"] == ["orgId"]
    assert "bearer" in schema["components"]["securitySchemes"]
