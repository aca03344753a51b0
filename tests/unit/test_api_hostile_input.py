"""The API under hostile input: bodies it must not read, callers it must slow down, webhooks it
must not trust, and what it must not tell (issue 11)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Iterator, MutableMapping
from typing import Any

import fakeredis
import pytest
import redis

from loyalty_worker import cli, logs
from loyalty_worker.api.orgs import OrgDirectory
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.errors import SettingsInvalid, UnknownOrg
from loyalty_worker.services.lookup.webhooks import event_time
from tests.fakes import QueryableProfileStore
from tests.unit.test_api import (
    ADMIN_TOKEN,
    FALLBACK_SECRET,
    NOW,
    ORG1_TOKEN,
    PHONE,
    PHONE_KEY,
    UNKNOWN_TOKEN,
    WEBHOOK_SECRET,
    Api,
    auth,
    build_api,
    order_event,
)

MiB = 1024 * 1024


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name in ("LOYALTY_API_TOKENS", "LOYALTY_API_WEBHOOK_SECRETS"):
        monkeypatch.delenv(name, raising=False)
    with build_api() as built:
        yield built


# --- a raw ASGI request: what was read of the body, chunk by chunk -------------------------


class Sent:
    """One request sent straight to the ASGI app, its body in chunks, its answer recorded."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.read = 0  # chunks the app asked for
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    async def receive(self) -> dict[str, Any]:
        if self.read >= len(self.chunks):
            await asyncio.sleep(3600)  # no more body: the client waits
        self.read += 1
        return {
            "type": "http.request",
            "body": self.chunks[self.read - 1],
            "more_body": self.read < len(self.chunks),
        }

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def send_raw(
    api: Api, path: str, chunks: list[bytes], headers: dict[str, str], method: str = "POST"
) -> Sent:
    """``chunks`` as a streamed body (no Content-Length unless ``headers`` declare one)."""
    sent = Sent(chunks)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        # A trusted Host (``edge``), as every real client sends one.
        "headers": [(b"host", b"127.0.0.1")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    asyncio.run(asyncio.wait_for(api.client.app(scope, sent.receive, sent.send), 10))
    return sent


def padded_sync_body(size: int) -> list[bytes]:
    """A sync request of about ``size`` bytes, in 8 KiB chunks."""
    whole = json.dumps({"orgId": "org-1", "pad": "x" * size}).encode()
    return [whole[i : i + 8192] for i in range(0, len(whole), 8192)]


# --- body cap and the bearer check before any body is read ---------------------------------


def test_an_unauthenticated_huge_body_is_refused_without_being_read(api: Api) -> None:
    chunks = padded_sync_body(4 * MiB)
    sent = send_raw(api, "/api/loyalty/sync", chunks, {"content-type": "application/json"})
    assert sent.status == 401
    assert sent.headers["www-authenticate"].startswith("Bearer")
    assert sent.read == 0
    stranger = send_raw(
        api, "/api/loyalty/sync", chunks, {**auth(UNKNOWN_TOKEN), "content-type": "text/plain"}
    )
    assert (stranger.status, stranger.read) == (401, 0)


def test_a_streamed_body_over_the_cap_is_413_before_the_route_runs(api: Api) -> None:
    chunks = padded_sync_body(1 * MiB)
    sent = send_raw(
        api, "/api/loyalty/sync", chunks, {**auth(ORG1_TOKEN), "content-type": "application/json"}
    )
    assert sent.status == 413
    # counted as it came: reading stopped just past 64 KiB, not at the end of the megabyte
    assert sent.read <= 64 * 1024 // 8192 + 1 < len(chunks)
    assert api.enqueuer.org_runs == [] and api.enqueuer.customer_syncs == []


def test_a_declared_length_over_the_cap_is_413_unread(api: Api) -> None:
    for path, token in (("/api/loyalty/sync", ORG1_TOKEN), ("/webhooks/alleaves", None)):
        headers = {**auth(token), "content-length": str(10 * MiB)}
        sent = send_raw(api, path, [b"{}"], headers)
        assert (sent.status, sent.read) == (413, 0), path


def test_a_streamed_webhook_over_its_cap_is_413(api: Api) -> None:
    chunks = [b"x" * 65536] * 8  # 512 KiB against 256 KiB
    sent = send_raw(api, "/webhooks/alleaves", chunks, {"x-alleaves-org": "org-1"})
    assert sent.status == 413
    assert sent.read < len(chunks)


def test_a_body_under_the_cap_reaches_the_route_whole(api: Api) -> None:
    body = json.dumps({"orgId": "org-1", "customerId": 42}).encode()
    chunks = [body[:5], body[5:12], body[12:]]
    sent = send_raw(
        api, "/api/loyalty/sync", chunks, {**auth(ORG1_TOKEN), "content-type": "application/json"}
    )
    assert sent.status == 202, sent.body
    assert api.enqueuer.customer_syncs[0]["customer_id"] == 42


# --- the per-token rate limit ----------------------------------------------------------------


def test_a_token_over_its_rate_gets_429_with_retry_after() -> None:
    with build_api(rate_limit_per_min=3) as served:
        params = {"orgId": "org-1", "phone": PHONE}
        answers = [served.get("/api/loyalty/points", params=params) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        retry_after = int(answers[-1].headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert "rate limit" in answers[-1].json()["detail"]
        # another token has its own allowance; a refused stranger spends nobody's
        assert (
            served.get("/api/loyalty/points", token=UNKNOWN_TOKEN, params=params).status_code == 401
        )
        assert (
            served.get("/api/loyalty/points", token=ADMIN_TOKEN, params=params).status_code == 200
        )


def test_the_rate_is_shared_by_every_api_process_through_redis() -> None:
    shared = fakeredis.FakeRedis()
    with (
        build_api(shared, rate_limit_per_min=4) as one,
        build_api(shared, rate_limit_per_min=4) as two,
    ):
        statuses = [
            app.get("/api/loyalty/runs/nope").status_code for app in (one, two, one, two, one)
        ]
    assert statuses == [404, 404, 404, 404, 429]


def test_the_rate_limit_with_redis_down_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    from loyalty_worker.adapters.rate_limit import RedisSlidingWindow

    def down(*args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("connection refused")

    with build_api(rate_limit_per_min=10) as served:
        monkeypatch.setattr(RedisSlidingWindow, "try_acquire", down)
        response = served.get("/api/loyalty/points", params={"orgId": "org-1", "phone": PHONE})
    assert response.status_code == 503
    assert response.headers["retry-after"]


def test_a_rate_limit_of_zero_is_off() -> None:
    with build_api(rate_limit_per_min=0) as served:
        statuses = {served.get("/api/loyalty/runs/nope").status_code for _ in range(5)}
    assert statuses == {404}


def test_the_sliding_window_frees_a_slot_as_the_oldest_leaves() -> None:
    from loyalty_worker.adapters.rate_limit import RedisSlidingWindow

    window = RedisSlidingWindow(fakeredis.FakeRedis(), limit=2, window_s=60.0, prefix="t")
    assert window.try_acquire("a") == 0.0
    assert window.try_acquire("a") == 0.0
    wait = window.try_acquire("a")
    assert 59.0 < wait <= 60.0
    assert window.try_acquire("b") == 0.0  # keys do not share slots


# --- runs and docs: nothing told to a stranger -------------------------------------------


def test_docs_and_schema_are_off_by_default(api: Api) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert api.client.get(path).status_code == 404, path
        assert api.get(path, token=ADMIN_TOKEN).status_code == 404, path


def test_docs_and_schema_when_asked_for() -> None:
    with build_api(docs=True) as served:
        assert served.client.get("/openapi.json").json()["info"]["title"] == "Loyalty sync API"
        assert served.client.get("/docs").status_code == 200
        assert served.client.get("/redoc").status_code == 200


def test_docs_setting_reads_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_API_DOCS", "true")
    monkeypatch.setenv("LOYALTY_API_RATE_LIMIT_PER_MIN", "120")
    settings = ApiSettings()
    assert (settings.docs, settings.rate_limit_per_min) == (True, 120)
    monkeypatch.delenv("LOYALTY_API_DOCS")
    assert ApiSettings().docs is False


# --- webhooks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp", ["nan", "NaN", "inf", "-Infinity", " nan ", "1e999", -1, 0, 1e300, "9" * 80]
)
def test_webhook_timestamps_that_are_no_time_are_refused(api: Api, timestamp: Any) -> None:
    event = order_event()
    event["timestamp"] = timestamp
    response = api.webhook(event)
    assert response.status_code == 401
    assert "timestamp" in response.json()["detail"]
    assert api.enqueuer.customer_syncs == []


def test_webhook_huge_integer_timestamp_is_401_not_500(api: Api) -> None:
    body = json.dumps(order_event()).replace(str(NOW), "1" + "0" * 400).encode()
    assert b"1000000000000000" in body
    response = api.webhook(body)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, 10**400, "0001-01-01T00:00:00+14:00", "x" * 100]
)
def test_event_time_is_finite_and_bounded(value: Any) -> None:
    assert event_time(value) is None


@pytest.mark.parametrize("customer", ["\u00b2", "9" * 5000, True, {"id": 42}])
def test_webhook_customer_that_is_no_id_is_acknowledged_not_500(api: Api, customer: Any) -> None:
    event = order_event(42)
    event["data"]["id_customer"] = customer
    response = api.webhook(event)
    assert response.status_code == 202
    assert response.json() == {
        "enqueued": False,
        "reason": "event 'order.created' names no customer to sync",
    }
    assert api.enqueuer.customer_syncs == []


def test_webhook_event_of_another_location_is_refused(api: Api) -> None:
    api.store.settings["org-1"]["alleaves"]["locationId"] = 7
    other = order_event(42)
    other["data"]["id_location"] = 8
    response = api.webhook(other)
    assert response.status_code == 401
    assert api.enqueuer.customer_syncs == []
    same = order_event(42, order_id=9002)
    same["data"]["id_location"] = "7"
    assert api.webhook(same).status_code == 202


def test_webhook_org_without_a_location_accepts_any(api: Api) -> None:
    event = order_event(42)
    event["data"]["id_location"] = 8
    assert api.webhook(event).status_code == 202


def test_two_orgs_may_not_share_a_fallback_secret() -> None:
    with pytest.raises(ValueError, match="share a webhook secret") as caught:
        ApiSettings(webhook_secrets={"org-2": FALLBACK_SECRET, "org-3": FALLBACK_SECRET})
    assert FALLBACK_SECRET not in str(caught.value)


class CountingStore(QueryableProfileStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get_settings_document(self, org_id: str) -> dict[str, Any]:
        self.reads.append(org_id)
        return super().get_settings_document(org_id)


def test_webhooks_for_an_unknown_org_cost_one_read(api: Api) -> None:
    reads: list[str] = []
    original = api.store.get_settings_document

    def counted(org_id: str) -> dict[str, Any]:
        reads.append(org_id)
        return original(org_id)

    api.store.get_settings_document = counted  # type: ignore[method-assign]
    for n in range(5):
        assert api.webhook(order_event(order_id=n), org="org-9").status_code == 401
    assert reads == ["org-9"]


def test_unknown_and_invalid_orgs_are_cached_briefly_and_boundedly() -> None:
    store = CountingStore()
    store.settings["bad"] = {"pointsPerDollar": -1}
    now = [0.0]
    directory = OrgDirectory(store, missing_ttl_s=15.0, max_entries=3, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(UnknownOrg):
            directory.get("nope")
        with pytest.raises(SettingsInvalid):
            directory.get("bad")
    assert store.reads == ["nope", "bad"]
    now[0] = 16.0  # past the short time to live: read again (the org may exist by now)
    with pytest.raises(UnknownOrg):
        directory.get("nope")
    assert store.reads == ["nope", "bad", "nope"]
    for org in ("a", "b", "c", "d"):  # made-up ids push the oldest out
        with pytest.raises(UnknownOrg):
            directory.get(org)
    assert len(directory._cache) == 3


def test_webhook_for_an_org_with_invalid_settings_is_the_401_of_a_bad_signature(
    api: Api,
) -> None:
    api.store.settings["org-3"] = {
        "pointsPerDollar": -1,
        "alleaves": {"username": "u", "password": "p", "pin": "1", "webhookSecret": WEBHOOK_SECRET},
    }
    invalid = api.webhook(order_event(), org="org-3")
    bad_signature = api.webhook(order_event(), signature="0" * 64)
    assert invalid.status_code == bad_signature.status_code == 401
    assert invalid.json() == bad_signature.json() == {"detail": "signature does not match"}
    assert invalid.headers["www-authenticate"] == bad_signature.headers["www-authenticate"]
    assert "pointsPerDollar" not in invalid.text


# --- the API process's logs ----------------------------------------------------------------


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Whatever the command does to the root and httpx loggers is undone."""
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    handlers, level, httpx_level = list(root.handlers), root.level, httpx_logger.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
        else:
            handler.filters = [
                f for f in handler.filters if not isinstance(f, logs.RedactingFilter)
            ]
    root.setLevel(level)
    httpx_logger.setLevel(httpx_level)


def test_the_api_process_logs_redacted_and_without_httpx_request_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], root_logging: None
) -> None:
    import uvicorn

    from loyalty_worker.api import wiring

    monkeypatch.setenv("LOYALTY_API_TOKENS", json.dumps({ORG1_TOKEN: ["org-1"]}))
    monkeypatch.setenv("LOYALTY_API_WEBHOOK_SECRETS", json.dumps({"org-2": FALLBACK_SECRET}))
    monkeypatch.setenv("LOYALTY_PHONE_HASH_KEY", PHONE_KEY)
    monkeypatch.setattr(wiring, "build_app", lambda settings, api_settings: object())
    lookup = "https://lab.alpineiq.com/api/v2/loyalty/lookup/5551234567"

    def serve(app: Any, **kwargs: Any) -> None:
        # what the running app would log: httpx's request line, and lines that hold secrets
        logging.getLogger("httpx").info('HTTP Request: GET %s "HTTP/1.1 200 OK"', lookup)
        logging.getLogger("loyalty_worker.adapters.alpine").warning("look-up failed: %s", lookup)
        logging.getLogger("uvicorn.error").warning("bad header: Bearer %s", ORG1_TOKEN)
        logging.getLogger("loyalty_worker.api").warning("secrets %s %s", FALLBACK_SECRET, PHONE_KEY)

    monkeypatch.setattr(uvicorn, "run", serve)
    from loyalty_worker.api.settings import get_api_settings
    from loyalty_worker.config import get_settings

    get_api_settings.cache_clear()
    get_settings.cache_clear()
    try:
        assert cli.main(["api", "--port", "0"]) == 0
    finally:
        get_api_settings.cache_clear()
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "look-up failed" in err  # the process does log, to stderr
    assert "HTTP Request" not in err
    assert "5551234567" not in err and "***-***-4567" in err
    assert ORG1_TOKEN not in err and FALLBACK_SECRET not in err and PHONE_KEY not in err


def test_an_orgs_credentials_are_masked_in_logs_once_the_api_reads_them(api: Api) -> None:
    key = "alpine-key-Xy7Wv3Ut9Sr1Qp"
    api.store.settings["org-1"]["alpine"]["apiKey"] = key
    assert api.get("/api/loyalty/points", params={"orgId": "org-1", "phone": PHONE}).is_success
    assert logs.redact(f"GET /v2/wallet X-APIKEY={key} {WEBHOOK_SECRET}") == (
        "GET /v2/wallet X-APIKEY=*** ***"
    )
