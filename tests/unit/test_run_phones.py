"""The run's kept phones: one contract over the Redis adapter and the fake, and the Redis
entry's key and lifetime."""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest
import redis

from loyalty_worker.adapters.run_phones import RedisRunPhones
from loyalty_worker.bootstrap import Container
from loyalty_worker.config import Settings
from loyalty_worker.errors import TransientError
from loyalty_worker.ports.run import RunPhones
from tests.fakes import InMemoryRunPhones

TTL_S = 600


@pytest.fixture(params=["redis", "fake"])
def phones(request: pytest.FixtureRequest) -> Iterator[RunPhones]:
    if request.param == "redis":
        yield RedisRunPhones(fakeredis.FakeRedis(), ttl_s=TTL_S)
    else:
        yield InMemoryRunPhones()


def test_kept_phones_are_read_back_per_run(phones: RunPhones) -> None:
    phones.keep("r1", {1: "5550000001", 2: "5550000002"})
    phones.keep("r1", {3: "5550000003"})  # the next chunk
    phones.keep("r2", {1: "5559999999"})
    assert phones.phones("r1", [1, 3, 4]) == {1: "5550000001", 3: "5550000003"}
    assert phones.phones("r2", [1, 2]) == {1: "5559999999"}
    assert phones.phones("r1", []) == {}
    phones.keep("r1", {})  # nothing to keep: no write


def test_a_forgotten_run_keeps_no_phone(phones: RunPhones) -> None:
    phones.keep("r1", {1: "5550000001"})
    phones.keep("r2", {1: "5550000001"})
    phones.forget("r1")
    assert phones.phones("r1", [1]) == {}
    assert phones.phones("r2", [1]) == {1: "5550000001"}
    phones.forget("r-unknown")


def test_the_redis_entry_is_one_hash_per_run_expiring_after_the_ttl() -> None:
    client = fakeredis.FakeRedis()
    RedisRunPhones(client, ttl_s=TTL_S).keep("r1", {7: "5550000007"})
    assert client.keys("*") == [b"loyalty:run:r1:phones"]
    assert client.hgetall("loyalty:run:r1:phones") == {b"7": b"5550000007"}
    ttl: int = client.ttl("loyalty:run:r1:phones")  # type: ignore[assignment]
    assert 0 < ttl <= TTL_S


def test_the_ttl_outlives_a_run_and_a_redelivered_message() -> None:
    settings = Settings(run_stall_s=7200, visibility_timeout_s=600)
    assert Container(settings).run_phones._ttl_s == 7800


def test_an_unreadable_redis_is_a_transient_error() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    with pytest.raises(TransientError):
        RedisRunPhones(client, ttl_s=TTL_S).phones("r1", [1])
