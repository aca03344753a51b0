"""A request rate per API account, shared by every worker process through Redis.

Each org calls Alleaves and Alpine IQ with its own credentials, and each provider limits an
account, not the caller: so each org's requests count against a limit of their own. An org's
client puts its ``RateLimit`` (which log, how many requests per second) on every request it
sends, as an httpx request extension; the shared client's request hook takes a slot of that limit
before the request leaves, and a request without one (a Discord alert) passes at once.

More workers must never mean more 429s: each slot is taken in a sliding-window log kept in Redis
(one sorted set per API and org, ``loyalty:ratelimit:{api}:{orgId}``), timed by Redis's own
clock so that every process agrees. The window is a quarter second longer than a second: a
request reaches the API some time after it took its slot (thread scheduling, connection set-up,
a loaded machine), so two slots a second apart can land in the same wall-clock second at the
API. With a 1.05 s window the benchmark saw 117 requests in one second against a limit of 100
on a busy 2-core machine; 1.25 s absorbs up to 250 ms between slot and arrival, at the cost of
running at 80% of the limit.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import redis

WINDOW_US = 1_250_000
# The request extension that carries a request's ``RateLimit``.
EXTENSION = "loyalty.rate_limit"

# KEYS: the account's log. ARGV: limit, window (µs), member. Returns 0 when a slot was taken, else
# the microseconds until the oldest entry leaves the window.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """How fast one account may call one API: the log it counts in, and requests per second."""

    key: str  # "{api}:{orgId}": the log is loyalty:ratelimit:{key}
    per_second: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_second) and self.per_second > 0):
            raise ValueError("a rate limit is a positive number of requests per second")

    @classmethod
    def of_org(cls, api: str, org_id: str, per_second: float | None) -> RateLimit | None:
        """The limit of an org's account at ``api``; None (no limit) when ``per_second`` is."""
        return None if per_second is None else cls(f"{api}:{org_id}", per_second)


class RedisRateLimiter:
    """Blocks a caller until its account has a free slot under its per-second limit."""

    def __init__(self, client: redis.Redis, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._acquire = client.register_script(_ACQUIRE)
        self._sleep = sleep

    def acquire(self, limit: RateLimit) -> None:
        """Wait for a slot of ``limit``."""
        member = uuid.uuid4().hex
        while True:
            wait_us = int(
                self._acquire(
                    keys=[f"loyalty:ratelimit:{limit.key}"],
                    args=[limit.per_second, WINDOW_US, member],
                )
            )
            if wait_us == 0:
                return
            self._sleep(wait_us / 1_000_000)


class RedisSlidingWindow:
    """The same sliding-window log, for a caller that answers "later" rather than waiting: the
    API's per-token limit (one log per key, ``limit`` slots per ``window_s``)."""

    def __init__(self, client: redis.Redis, *, limit: int, window_s: float, prefix: str) -> None:
        self._limit = limit
        self._window_us = int(window_s * 1_000_000)
        self._prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)

    def try_acquire(self, key: str) -> float:
        """0.0 when a slot of ``key`` was taken, else the seconds until one frees up."""
        wait_us = int(
            self._acquire(
                keys=[f"{self._prefix}:{key}"],
                args=[self._limit, self._window_us, uuid.uuid4().hex],
            )
        )
        return wait_us / 1_000_000


def request_hook(limiter: RedisRateLimiter) -> Callable[[httpx.Request], None]:
    """An httpx request hook that takes a slot of the limit the request carries, if any."""

    def before_request(request: httpx.Request) -> None:
        limit = request.extensions.get(EXTENSION)
        if isinstance(limit, RateLimit):
            limiter.acquire(limit)

    return before_request
