"""The cap on an org's concurrent single-customer syncs, in Redis (``ports.SyncSlots``).

One sorted set per org: each member a holder, its score the moment its slot expires (Redis'
clock, so workers' clocks need not agree). A Lua script drops expired holders and adds the new
one only below the limit, in one step. Redis errors are left to the caller.
"""

from __future__ import annotations

import redis

# KEYS: the org's set. ARGV: holder, limit, ttl in ms. 1: the slot is the holder's.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if held or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""


class RedisSyncSlots:
    """Per-org slots for single-customer syncs, each freed on release or after its TTL."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._acquire = client.register_script(_ACQUIRE)

    def acquire(self, org_id: str, holder: str, *, limit: int, ttl_s: float) -> bool:
        ttl_ms = max(1, int(ttl_s * 1000))
        return bool(self._acquire(keys=[_key(org_id)], args=[holder, limit, ttl_ms]))

    def release(self, org_id: str, holder: str) -> None:
        self._redis.zrem(_key(org_id), holder)


def _key(org_id: str) -> str:
    return f"loyalty:single-sync:{org_id}"
