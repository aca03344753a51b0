"""The single-sync semaphore's Lua script on a real redis-server (the unit contract runs it on
fakeredis): the cap, a holder's renewal, release, expiry by Redis' own clock."""

from __future__ import annotations

import time

import pytest
import redis

from loyalty_worker.adapters.sync_slots import RedisSyncSlots

pytestmark = pytest.mark.integration


def test_the_cap_holds_on_a_real_redis(test_redis_url: str) -> None:
    client = redis.Redis.from_url(test_redis_url)
    client.delete("loyalty:single-sync:org-slots")
    slots = RedisSyncSlots(client)
    assert slots.acquire("org-slots", "a", limit=2, ttl_s=60)
    assert slots.acquire("org-slots", "b", limit=2, ttl_s=0.2)
    assert not slots.acquire("org-slots", "c", limit=2, ttl_s=60)
    assert slots.acquire("org-slots", "a", limit=2, ttl_s=60)  # renewal, no second slot
    time.sleep(0.3)  # b never released: its slot expires
    assert slots.acquire("org-slots", "c", limit=2, ttl_s=60)
    slots.release("org-slots", "a")
    assert slots.acquire("org-slots", "d", limit=2, ttl_s=60)
    ttl_ms = client.pttl("loyalty:single-sync:org-slots")
    assert isinstance(ttl_ms, int) and 0 < ttl_ms <= 60_000
    client.delete("loyalty:single-sync:org-slots")
