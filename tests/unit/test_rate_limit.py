"""The shared rate limit: at most N slots per sliding window, waiting callers told how long."""

from __future__ import annotations

import time

import fakeredis
import httpx

from loyalty_worker.adapters.rate_limit import WINDOW_US, RedisRateLimiter, request_hook


def test_slots_beyond_the_limit_wait_for_the_window_across_processes() -> None:
    server = fakeredis.FakeServer()  # one Redis shared by two "processes"
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    first = RedisRateLimiter(fakeredis.FakeRedis(server=server), {"alpine": 5}, sleep=sleep)
    second = RedisRateLimiter(fakeredis.FakeRedis(server=server), {"alpine": 5}, sleep=sleep)
    for _ in range(5):
        first.acquire("alpine")
    assert waits == []
    second.acquire("alpine")
    assert len(waits) >= 1
    assert 0 < waits[0] <= WINDOW_US / 1e6


def test_an_api_without_a_limit_never_waits() -> None:
    waits: list[float] = []
    limiter = RedisRateLimiter(fakeredis.FakeRedis(), {"alpine": 1}, sleep=waits.append)
    for _ in range(50):
        limiter.acquire("alleaves")
    assert waits == []


def test_request_hook_picks_the_api_by_base_url() -> None:
    taken: list[str] = []

    class Recorder(RedisRateLimiter):
        def __init__(self) -> None:
            pass

        def acquire(self, api: str) -> None:
            taken.append(api)

    hook = request_hook(Recorder(), {"http://x/alleaves": "alleaves", "http://x/alpine": "alpine"})
    hook(httpx.Request("GET", "http://x/alpine/v2/wallet"))
    hook(httpx.Request("GET", "http://x/alleaves/order"))
    hook(httpx.Request("POST", "http://x/discord/webhooks/1/t"))
    assert taken == ["alpine", "alleaves"]
