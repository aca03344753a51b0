"""The shared rate limit: at most N slots of each account per window, a slot held while its
request is in flight and a window after, waiting callers told how long; each org's requests
carry their own account's limit."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
    RateLimitedTransport,
    RedisRateLimiter,
)
from loyalty_worker.bootstrap import Container
from loyalty_worker.config import Settings
from loyalty_worker.org_settings import OrgSettings
from tests.unit.test_alleaves_client import jwt


class Waited(Exception):
    """Raised by a test's sleep: the limiter asked to wait."""


def refuse_to_wait(seconds: float) -> None:
    raise Waited(seconds)


def take(limiter: RedisRateLimiter, limit: RateLimit) -> None:
    """A request answered at once: a slot taken and given back."""
    with limiter.slot(limit, hold_s=10):
        pass


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
        take(first, limit)
    assert waits == []
    take(second, limit)
    assert len(waits) >= 1
    assert 0 < waits[0] <= WINDOW_US / 1e6


def test_a_slot_frees_a_whole_window_after_its_request_was_answered() -> None:
    limiter = RedisRateLimiter(fakeredis.FakeRedis(), sleep=time.sleep)
    limit = RateLimit("alpine:org-1", 1)
    with limiter.slot(limit, hold_s=10):
        time.sleep(0.3)  # a slow request: the window starts at its answer, not at its slot
    answered = time.monotonic()
    with limiter.slot(limit, hold_s=10):
        next_slot = time.monotonic()
    assert next_slot - answered >= WINDOW_US / 1e6 - 0.01  # Redis's µs clock against ours


def scores(client: fakeredis.FakeRedis, key: str) -> list[float]:
    """The log's entries: when each slot leaves the window's start (µs, Redis's clock)."""
    entries: list[tuple[bytes, float]] = client.zrange(key, 0, -1, withscores=True)  # type: ignore[assignment]
    return [score for _, score in entries]


def test_slots_in_flight_count_until_answered_and_then_ask_for_a_window() -> None:
    client = fakeredis.FakeRedis()
    limiter = RedisRateLimiter(client, sleep=refuse_to_wait)
    limit = RateLimit("alpine:org-1", 2)
    key = "loyalty:ratelimit:alpine:org-1"
    with limiter.slot(limit, hold_s=30), limiter.slot(limit, hold_s=30):
        held = scores(client, key)
        assert len(held) == 2
        assert all(score > time.time() * 1e6 + 25e6 for score in held)  # in flight: held
        with pytest.raises(Waited) as waited:
            take(limiter, limit)
        assert waited.value.args == (WINDOW_US / 1e6,)  # none frees before a window
    answered = scores(client, key)
    assert len(answered) == 2
    assert all(score <= time.time() * 1e6 for score in answered)  # counted from the answer
    with pytest.raises(Waited) as waited:
        take(limiter, limit)
    assert 0 < waited.value.args[0] <= WINDOW_US / 1e6


def test_no_second_sees_more_than_the_limit_however_late_requests_leave() -> None:
    """The first requests reach the API half a second after their slots (a loaded machine),
    the next ones at once: a log of slot times would let both groups into one second."""
    limit = RateLimit("alpine:org-1", 4)
    arrivals: list[float] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            late = len(arrivals) < limit.slots and request.url.path == "/first"
        if late:
            time.sleep(0.5)
        with lock:
            arrivals.append(time.time())
        return httpx.Response(200)

    limiter = RedisRateLimiter(fakeredis.FakeRedis(), sleep=time.sleep)
    transport = RateLimitedTransport(httpx.MockTransport(handler), limiter)
    with httpx.Client(transport=transport) as http, ThreadPoolExecutor(4) as pool:

        def call(path: str) -> int:
            request = http.build_request("GET", f"http://x{path}", extensions={EXTENSION: limit})
            return http.send(request).status_code

        paths = ["/first"] * 4 + ["/next"] * 8
        assert list(pool.map(call, paths)) == [200] * 12
    busiest = max(sum(a <= b < a + 1 for b in arrivals) for a in arrivals)
    assert busiest <= limit.slots


def test_a_slot_held_past_its_hold_frees_as_if_answered_then() -> None:
    limiter = RedisRateLimiter(fakeredis.FakeRedis(), sleep=time.sleep)
    limit = RateLimit("alpine:org-1", 1)
    abandoned = limiter.slot(limit, hold_s=0.05)
    abandoned.__enter__()  # a process that died with its request in flight never gives it back
    started = time.monotonic()
    take(limiter, limit)
    assert time.monotonic() - started < 0.05 + WINDOW_US / 1e6 + 0.5


def test_each_org_counts_in_a_log_of_its_own() -> None:
    client = fakeredis.FakeRedis()
    limiter = RedisRateLimiter(client, sleep=refuse_to_wait)
    org_1, org_2 = RateLimit("alpine:org-1", 3), RateLimit("alpine:org-2", 3)
    for _ in range(3):
        take(limiter, org_1)
    for _ in range(3):
        take(limiter, org_2)  # org-1's full log does not hold org-2 back
    take(limiter, RateLimit("alleaves:org-1", 1))  # nor org-1's other API
    with pytest.raises(Waited):
        take(limiter, org_1)
    with pytest.raises(Waited):
        take(limiter, org_2)
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


@pytest.mark.parametrize(
    ("per_second", "slots", "window_s"),
    [(40, 40, 1.0), (2.5, 2, 1.0), (1, 1, 1.0), (0.5, 1, 2.0), (0.25, 1, 4.0)],
)
def test_a_limit_never_lets_more_than_it_through_in_a_second(
    per_second: float, slots: int, window_s: float
) -> None:
    limit = RateLimit("alpine:org-1", per_second)
    assert (limit.slots, limit.window_us / 1e6) == (slots, window_s)


class Recorder(RedisRateLimiter):
    def __init__(self) -> None:
        self.taken: list[tuple[RateLimit, float]] = []
        self.held = 0

    @contextlib.contextmanager
    def slot(self, limit: RateLimit, *, hold_s: float) -> Iterator[None]:
        self.taken.append((limit, hold_s))
        self.held += 1
        try:
            yield
        finally:
            self.held -= 1


def test_the_transport_sends_a_request_inside_a_slot_of_the_limit_it_carries() -> None:
    recorder = Recorder()
    held_while_sent: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        held_while_sent.append(recorder.held)
        if request.url.path == "/down":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)

    transport = RateLimitedTransport(httpx.MockTransport(handler), recorder)
    limit = RateLimit("alpine:org-1", 5)
    timeouts = httpx.Timeout(10.0, connect=5.0).as_dict()
    with_limit = {EXTENSION: limit, "timeout": timeouts}
    transport.handle_request(httpx.Request("GET", "http://x/alpine", extensions=with_limit))
    with pytest.raises(httpx.ConnectError):
        transport.handle_request(httpx.Request("GET", "http://x/down", extensions=with_limit))
    transport.handle_request(httpx.Request("POST", "http://x/discord/webhooks/1/t"))
    # Held while sent, given back even when the request failed; the hold bounded by the
    # request's own timeouts (pool, connect, write, read); a request without a limit passes.
    assert held_while_sent == [1, 1, 0]
    assert recorder.held == 0
    assert recorder.taken == [(limit, 35.0), (limit, 35.0)]


def test_each_client_sends_its_accounts_limit_with_every_request_and_retry() -> None:
    recorder = Recorder()
    answers = iter([429, 200, 200, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/alleaves/auth":
            return httpx.Response(200, json={"token": jwt({"exp": 4_000_000_000})})
        if request.url.path == "/alleaves/order":
            return httpx.Response(200, json=[])
        return httpx.Response(next(answers), headers={"Retry-After": "0"}, json={"data": {}})

    http = httpx.Client(transport=RateLimitedTransport(httpx.MockTransport(handler), recorder))
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
    taken = [limit for limit, _ in recorder.taken]
    assert taken == [alpine_1, alpine_1, alpine_2, alleaves_1, alleaves_1]


def test_the_process_client_sends_through_the_limiter() -> None:
    container = Container(Settings())
    assert isinstance(container.http._transport, RateLimitedTransport)


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
