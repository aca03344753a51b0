"""``RedisOrderSlices`` over fakeredis and a real redis-server: one holder per slice, a claim
only its holder renews or releases, no claim once the orders are in, expiry by Redis' clock."""

from __future__ import annotations

import time

import fakeredis
import pytest
import redis

from loyalty_worker.adapters.order_slices import RedisOrderSlices
from loyalty_worker.errors import TransientError


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.integration)])
def client(request: pytest.FixtureRequest) -> redis.Redis:
    if request.param == "fakeredis":
        return fakeredis.FakeRedis()
    real: redis.Redis = request.getfixturevalue("redis_client")
    return real


def test_one_holder_at_a_time_and_only_it_renews_or_releases(client: redis.Redis) -> None:
    slices = RedisOrderSlices(client)
    assert slices.claim("r1", "a", "one", ttl_s=60)
    assert slices.claim("r1", "a", "one", ttl_s=60)  # its own: held still
    assert not slices.claim("r1", "a", "two", ttl_s=60)
    assert slices.claimed("r1", "a")
    assert not slices.renew("r1", "a", "two", ttl_s=60)
    slices.release("r1", "a", "two")  # not its claim: nothing
    assert slices.claimed("r1", "a")
    assert slices.renew("r1", "a", "one", ttl_s=60)
    slices.release("r1", "a", "one")
    assert not slices.claimed("r1", "a")
    assert slices.claim("r1", "a", "two", ttl_s=60)
    assert slices.claim("r1", "b", "one", ttl_s=60)  # another slice, another claim


def test_a_claim_lapses_unless_renewed(client: redis.Redis) -> None:
    slices = RedisOrderSlices(client)
    assert slices.claim("r1", "a", "dead", ttl_s=0.2)
    time.sleep(0.3)
    assert not slices.claimed("r1", "a")
    assert not slices.renew("r1", "a", "dead", ttl_s=60)
    assert slices.claim("r1", "a", "alive", ttl_s=0.2)
    for _ in range(3):
        time.sleep(0.1)
        assert slices.renew("r1", "a", "alive", ttl_s=0.2)
    assert slices.claimed("r1", "a")


def test_orders_in_end_the_claims_and_are_dropped_when_gathered(client: redis.Redis) -> None:
    slices = RedisOrderSlices(client)
    assert slices.get("r1", "a") is None
    slices.put("r1", "a", b"\x00orders", ttl_s=60)
    assert slices.get("r1", "a") == b"\x00orders"
    assert not slices.claim("r1", "a", "late", ttl_s=60)  # read already
    ttl_ms = client.pttl("loyalty:run:r1:orders:a")
    assert isinstance(ttl_ms, int) and 0 < ttl_ms <= 60_000
    assert slices.claim("r1", "b", "one", ttl_s=60)
    slices.forget("r1", ["a", "b"])
    assert slices.get("r1", "a") is None
    assert not slices.claimed("r1", "b")


def test_redis_out_of_reach_is_a_transient_error() -> None:
    gone = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    slices = RedisOrderSlices(gone)
    with pytest.raises(TransientError, match="order slices"):
        slices.claim("r1", "a", "one", ttl_s=60)
    with pytest.raises(TransientError):
        slices.get("r1", "a")
