"""Slices of a run's order history shared through Redis (``ports.OrderSlices``).

Per slice two keys: ``loyalty:run:{runId}:orders:{key}:claim`` (its reader, expiring unless
renewed: a reader that died frees it) and ``loyalty:run:{runId}:orders:{key}`` (its orders,
encoded, once read). Claims are taken, renewed and released by Lua scripts that compare the
holder, so a reader whose claim lapsed never renews or drops another's. A Redis error is
transient: the planner tries again or reads the slice itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import redis

from loyalty_worker.errors import TransientError

# KEYS: claim, orders. ARGV: holder, ttl in ms. 1: the holder's (taken now or held already).
_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: claim. ARGV: holder, ttl in ms. 1: renewed.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: claim. ARGV: holder.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

T = TypeVar("T")


class RedisOrderSlices:
    """A run's history slices: one claim and one value per slice."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @staticmethod
    def _keys(run_id: str, key: str) -> tuple[str, str]:
        orders = f"loyalty:run:{run_id}:orders:{key}"
        return f"{orders}:claim", orders

    def claim(self, run_id: str, key: str, holder: str, *, ttl_s: float) -> bool:
        keys = list(self._keys(run_id, key))
        return bool(_transient(run_id, lambda: self._claim(keys=keys, args=[holder, _ms(ttl_s)])))

    def renew(self, run_id: str, key: str, holder: str, *, ttl_s: float) -> bool:
        claim, _ = self._keys(run_id, key)
        return bool(
            _transient(run_id, lambda: self._renew(keys=[claim], args=[holder, _ms(ttl_s)]))
        )

    def release(self, run_id: str, key: str, holder: str) -> None:
        claim, _ = self._keys(run_id, key)
        _transient(run_id, lambda: self._release(keys=[claim], args=[holder]))

    def claimed(self, run_id: str, key: str) -> bool:
        claim, _ = self._keys(run_id, key)
        return bool(_transient(run_id, lambda: self._redis.exists(claim)))

    def put(self, run_id: str, key: str, orders: bytes, *, ttl_s: float) -> None:
        _, value = self._keys(run_id, key)
        _transient(run_id, lambda: self._redis.set(value, orders, px=_ms(ttl_s)))

    def get(self, run_id: str, key: str) -> bytes | None:
        _, value = self._keys(run_id, key)
        found = _transient(run_id, lambda: self._redis.get(value))
        return found if isinstance(found, bytes) else None

    def forget(self, run_id: str, keys: Sequence[str]) -> None:
        if keys:
            names = [name for key in keys for name in self._keys(run_id, key)]
            _transient(run_id, lambda: self._redis.delete(*names))


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _transient(run_id: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except redis.RedisError as exc:
        raise TransientError("redis", f"run {run_id}: order slices: {exc}") from exc
