"""A request rate per API account, shared by every worker process through Redis.

Each org calls Alleaves and Alpine IQ with its own credentials, and each provider limits an
account, not the caller: so each org's requests count against a limit of their own. An org's
client puts its ``RateLimit`` (which log, how many requests per second) on every request it
sends, as an httpx request extension; the process's transport sends such a request inside a slot
of that limit, and a request without one (a Discord alert) passes at once.

More workers must never mean more 429s. The slots are a sliding-window log kept in Redis (one
sorted set per API and org, ``loyalty:ratelimit:{api}:{orgId}``), timed by Redis's own clock so
that every process agrees, and a slot is held while its request is in flight and for one window
(a second) after its answer came back. The API received the request somewhere between the slot
and the answer, so a request whose slot was taken after another's was freed reaches the API at
least a second after the other did: at most ``limit`` requests reach it in any second, however
long a loaded machine takes between a slot and the request leaving. (A log of slot times alone
needs a margin for that delay: a 1.25 s window absorbed 250 ms and still flaked on a busy 2-core
machine.) A slot turns over once per latency plus a second: 95% of the limit at 50 ms.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import redis

from loyalty_worker.adapters import metrics

logger = logging.getLogger(__name__)

WINDOW_US = 1_000_000
# The request extension that carries a request's ``RateLimit``.
EXTENSION = "loyalty.rate_limit"
# How long a request without timeouts may hold its slot unanswered (a process that died with the
# request in flight frees it then).
UNBOUNDED_HOLD_S = 120.0

# KEYS: the account's log. ARGV: slots, window (µs), member, hold (µs). A slot taken is scored
# ``now + hold`` (in flight: it counts until answered, see _RELEASE). Returns 0 when a slot was
# taken, else the microseconds until one may free up: when the oldest leaves the window, or, when
# every slot is in flight, a window (none frees sooner than a window after its answer).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
local hold = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + hold, ARGV[3])
  local ttl = math.ceil((hold + window) / 1000) + 1000
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, math.min(tonumber(oldest[2]) + window - now, window))
"""

# KEYS: the account's log. ARGV: member. The request was answered: its slot now counts from now
# (only if still in the log: one held past its hold is gone already).
_RELEASE = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[1])
return 0
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

    @property
    def slots(self) -> int:
        """Slots per window: the limit, rounded down (at least one)."""
        return max(1, math.floor(self.per_second))

    @property
    def window_us(self) -> int:
        """A second, or longer for a limit below one a second (0.5: one slot per 2 s)."""
        return max(WINDOW_US, math.ceil(self.slots / self.per_second * 1_000_000))


class RedisRateLimiter:
    """Gives out slots of each account's per-second limit, waiting while none is free."""

    def __init__(self, client: redis.Redis, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._sleep = sleep

    @contextlib.contextmanager
    def slot(self, limit: RateLimit, *, hold_s: float) -> Iterator[None]:
        """Wait for a slot of ``limit`` and hold it while the block runs (a request in flight,
        for at most ``hold_s``), then for a window more."""
        key = f"loyalty:ratelimit:{limit.key}"
        member = uuid.uuid4().hex
        hold_us = math.ceil(hold_s * 1_000_000)
        while True:
            wait_us = int(
                self._acquire(keys=[key], args=[limit.slots, limit.window_us, member, hold_us])
            )
            if wait_us == 0:
                break
            self._sleep(wait_us / 1_000_000)
            api, _, org = limit.key.partition(":")
            metrics.RATE_LIMIT_WAIT.labels(api, org).inc(wait_us / 1_000_000)
        try:
            yield
        finally:
            try:
                self._release(keys=[key], args=[member])
            except redis.RedisError as exc:
                # The answer is in hand; the slot stays held until its hold ends.
                logger.warning(
                    "rate limit %s: slot not released: %s", limit.key, type(exc).__name__
                )


class RateLimitedTransport(httpx.BaseTransport):
    """Sends each request that carries a ``RateLimit`` inside a slot of it; others as they are."""

    def __init__(self, inner: httpx.BaseTransport, limiter: RedisRateLimiter) -> None:
        self._inner = inner
        self._limiter = limiter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        limit = request.extensions.get(EXTENSION)
        if not isinstance(limit, RateLimit):
            return self._inner.handle_request(request)
        # The response returned holds its headers: the API has received the request.
        with self._limiter.slot(limit, hold_s=_longest_in_flight(request)):
            return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _longest_in_flight(request: httpx.Request) -> float:
    """How long the request may wait for a connection, connect, send and wait for its answer
    before one of its timeouts ends it."""
    timeouts = request.extensions.get("timeout", {})
    phases = [timeouts.get(phase) for phase in ("pool", "connect", "write", "read")]
    if any(not isinstance(seconds, int | float) for seconds in phases):
        return UNBOUNDED_HOLD_S
    return float(sum(phases))


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
                args=[self._limit, self._window_us, uuid.uuid4().hex, 0],
            )
        )
        return wait_us / 1_000_000
