"""The shared rate limit: at most N slots per sliding window of each account, waiting callers
told how long; each org's requests carry their own account's limit."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import fakeredis
import httpx
import pytest

from loyalty_worker.adapters.alleaves import AlleavesAccount, AlleavesClient
from loyalty_worker.adapters.alpine import AlpineIQClient
from loyalty_worker.adapters.http import RetryPolicy
from loyalty_worker.adapters.rate_limit import (
    EXTENSION,
    WINDOW_US,
    RateLimit,
    RedisRateLimiter,
    request_hook,
)
from loyalty_worker.bootstrap import Container
from loyalty_worker.config import Settings
from loyalty_worker.org_settings import OrgSettings
from tests.unit.test_alleaves_client import jwt


class Waited(Exception):
    """Raised by a test's sleep: the limiter asked to wait."""


def refuse_to_wait(seconds: float) -> None:
    raise Waited(seconds)


def test_slots_beyond_the_limit_wait_for_the_window_across_processes() -> None:
    server = fakeredis.FakeServer()  # one Redis shared by two "processes"
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    limit = RateLimit("alpine:org-1", 5)
    first = RedisRateLimiter(fakeredis.FakeRedis(server=server), sleep=sleep)
    second = RedisRateLimiter(fakeredis.FakeRedis(server=server), sleep=sleep)
    for _ in range(5):
        first.acquire(limit)
    assert waits == []
    second.acquire(limit)
    assert len(waits) >= 1
    assert 0 < waits[0] <= WINDOW_US / 1e6


def test_each_org_counts_in_a_log_of_its_own() -> None:
    client = fakeredis.FakeRedis()
    limiter = RedisRateLimiter(client, sleep=refuse_to_wait)
    org_1, org_2 = RateLimit("alpine:org-1", 3), RateLimit("alpine:org-2", 3)
    for _ in range(3):
        limiter.acquire(org_1)
    for _ in range(3):
        limiter.acquire(org_2)  # org-1's full log does not hold org-2 back
    limiter.acquire(RateLimit("alleaves:org-1", 1))  # nor org-1's other API
    with pytest.raises(Waited):
        limiter.acquire(org_1)
    with pytest.raises(Waited):
        limiter.acquire(org_2)
    keys: list[bytes] = client.keys("loyalty:ratelimit:*")  # type: ignore[assignment]
    assert sorted(keys) == [
        b"loyalty:ratelimit:alleaves:org-1",
        b"loyalty:ratelimit:alpine:org-1",
        b"loyalty:ratelimit:alpine:org-2",
    ]


def test_a_rate_limit_is_a_positive_finite_number() -> None:
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="positive"):
            RateLimit("alpine:org-1", bad)
    assert RateLimit.of_org("alpine", "org-1", None) is None
    assert RateLimit.of_org("alpine", "org-1", 2.5) == RateLimit("alpine:org-1", 2.5)


class Recorder(RedisRateLimiter):
    def __init__(self) -> None:
        self.taken: list[RateLimit] = []

    def acquire(self, limit: RateLimit) -> None:
        self.taken.append(limit)


def test_the_request_hook_takes_a_slot_of_the_limit_the_request_carries() -> None:
    recorder = Recorder()
    hook = request_hook(recorder)
    limit = RateLimit("alpine:org-1", 5)
    hook(httpx.Request("GET", "http://x/alpine/v2/wallet", extensions={EXTENSION: limit}))
    hook(httpx.Request("POST", "http://x/discord/webhooks/1/t"))  # no account: no limit
    assert recorder.taken == [limit]


def test_each_client_sends_its_accounts_limit_with_every_request_and_retry() -> None:
    recorder = Recorder()
    answers = iter([429, 200, 200, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/alleaves/auth":
            return httpx.Response(200, json={"token": jwt({"exp": 4_000_000_000})})
        if request.url.path == "/alleaves/order":
            return httpx.Response(200, json=[])
        return httpx.Response(next(answers), headers={"Retry-After": "0"}, json={"data": {}})

    http = httpx.Client(
        transport=httpx.MockTransport(handler),
        event_hooks={"request": [request_hook(recorder)]},
    )
    retry = RetryPolicy(max_attempts=3, wait=False)
    alpine_1 = RateLimit("alpine:org-1", 5)
    alpine_2 = RateLimit("alpine:org-2", 9)
    alleaves_1 = RateLimit("alleaves:org-1", 4)
    for uid, limit in (("1", alpine_1), ("2", alpine_2)):
        client = AlpineIQClient(
            http, base_url="http://x/alpine", uid=uid, api_key="k", retry=retry, rate_limit=limit
        )
        assert client.rate_limit == limit
        client.wallet_points("5550100001")
    alleaves = AlleavesClient(
        http,
        account=AlleavesAccount(
            base_url="http://x/alleaves",
            username="clerk",
            password="p",
            pin="1",
            rate_limit=alleaves_1,
        ),
        retry=retry,
    )
    list(alleaves.iter_orders(date(2024, 1, 1), date(2024, 1, 14)))
    # org-1's look-up was answered 429 first: its retry took a slot too; the login counts.
    assert recorder.taken == [alpine_1, alpine_1, alpine_2, alleaves_1, alleaves_1]


class OrgStore:
    def __init__(self, documents: dict[str, dict[str, Any]]) -> None:
        self.documents = documents

    def get_org_settings(self, org_id: str) -> OrgSettings:
        return OrgSettings.parse(org_id, self.documents[org_id])


CREDENTIALS = {
    "alleaves": {"username": "u", "password": "p", "pin": "1"},
    "alpine": {"uid": "1", "apiKey": "k"},
}


@pytest.mark.parametrize(
    ("process", "own", "expected"),
    [
        ((None, None), {}, (None, None)),  # nothing set anywhere: no limit, as with one org before
        ((20, 30), {}, (20, 30)),
        ((20, None), {"alleavesRateLimit": 5, "alpineRateLimit": 7}, (5, 7)),
        ((None, None), {"alpineRateLimit": 2.5}, (None, 2.5)),
    ],
)
def test_an_orgs_limit_is_its_own_setting_else_the_process_wide_one(
    monkeypatch: pytest.MonkeyPatch,
    process: tuple[float | None, float | None],
    own: dict[str, float],
    expected: tuple[float | None, float | None],
) -> None:
    container = Container(Settings(alleaves_rate_limit=process[0], alpine_rate_limit=process[1]))
    monkeypatch.setattr(container, "_redis", fakeredis.FakeRedis())
    monkeypatch.setattr(container, "_store", OrgStore({"org-3": {**CREDENTIALS, **own}}))
    clients = container.org("org-3")
    alleaves, alpine = expected
    assert clients.alleaves.rate_limit == RateLimit.of_org("alleaves", "org-3", alleaves)
    assert clients.alpine.rate_limit == RateLimit.of_org("alpine", "org-3", alpine)
