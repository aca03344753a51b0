"""Chunks take turns across runs: weighted round-robin, the batch queue kept shallow, nothing
lost when a send fails (``adapters.fair_share`` on fakeredis's Lua, ``services.run.fair``)."""

from __future__ import annotations

from collections import Counter

import fakeredis
import pytest

from loyalty_worker import names
from loyalty_worker.adapters.fair_share import RedisFairShare
from loyalty_worker.errors import TransientError
from loyalty_worker.ports.run import ChunkRef, WorkPayload
from loyalty_worker.services.run.fair import ChunkTurns
from tests.fakes import InMemoryRunLedger


def _chunks(org_id: str, run_id: str, count: int) -> list[ChunkRef]:
    return [ChunkRef(org_id, run_id, False, str(1000 + i)) for i in range(count)]


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def fair(client: fakeredis.FakeRedis) -> RedisFairShare:
    return RedisFairShare(client, batch_queue=names.BATCH_QUEUE, ttl_s=600)


def test_a_run_that_starts_while_another_is_going_has_the_releases_until_it_catches_up(
    fair: RedisFairShare,
) -> None:
    fair.offer(_chunks("big", "r-big", 20))
    assert len(fair.release(6)) == 6  # the big run has had 6 chunks
    fair.offer(_chunks("small", "r-small", 10))
    released = [c.org_id for c in fair.release(9)]
    # the small run first, until it has had as many; then in turn
    assert released == ["small"] * 6 + ["big", "small", "big"]


def test_runs_take_turns_one_chunk_each(fair: RedisFairShare) -> None:
    fair.offer(_chunks("big", "r-big", 10))
    fair.offer(_chunks("small", "r-small", 2))
    released = fair.release(6)
    assert [c.org_id for c in released] == ["big", "small", "big", "small", "big", "big"]
    # each run's chunks in the order they were offered
    assert [c.key for c in released if c.org_id == "big"] == ["1000", "1001", "1002", "1003"]
    assert fair.waiting() == 6


def test_a_run_of_weight_two_gets_two_chunks_for_anothers_one(fair: RedisFairShare) -> None:
    fair.offer(_chunks("heavy", "r-h", 30), weight=2.0)
    fair.offer(_chunks("light", "r-l", 30))
    counts = Counter(c.org_id for c in fair.release(30))
    assert counts == {"heavy": 20, "light": 10}


def test_a_run_that_had_nothing_waiting_for_a_while_comes_back_with_the_service_it_had(
    fair: RedisFairShare,
) -> None:
    fair.offer(_chunks("a", "r-a", 4))
    assert len(fair.release(4)) == 4  # all of a's chunks out: it leaves the turns, served 4
    fair.offer(_chunks("b", "r-b", 10))
    assert len(fair.release(2)) == 2
    fair.offer(_chunks("a", "r-a", 5))  # its planner lists more
    # b has had 2 to a's 4: b until they are even, then in turn; no fresh start for a
    assert [c.org_id for c in fair.release(5)] == ["b", "b", "a", "b", "a"]


def test_the_batch_queue_is_filled_to_its_depth_and_no_further(
    fair: RedisFairShare, client: fakeredis.FakeRedis
) -> None:
    fair.offer(_chunks("org", "r1", 10))
    client.rpush(names.BATCH_QUEUE, "m1", "m2", "m3")
    assert len(fair.release(8)) == 5
    client.rpush(names.BATCH_QUEUE, *[f"m{i}" for i in range(5)])
    assert fair.release(8) == []
    assert fair.waiting() == 5


def test_a_run_with_nothing_left_leaves_the_turns(
    fair: RedisFairShare, client: fakeredis.FakeRedis
) -> None:
    fair.offer(_chunks("org", "r1", 2))
    assert len(fair.release(8)) == 2
    assert fair.waiting() == 0
    assert client.zcard("loyalty:fair:turns") == 0


def _payload(customer_id: int) -> list[WorkPayload]:
    return [{"customer": [customer_id, None, None], "orders": []}]


def _turns(
    fair: RedisFairShare,
    ledger: InMemoryRunLedger,
    sent: list[tuple[str, str]],
    client: fakeredis.FakeRedis,
    fail_at: int = -1,
) -> ChunkTurns:
    """Turns whose sends land in the broker's batch queue (or fail at send ``fail_at``)."""

    def send(org_id: str, run_id: str, dry_run: bool, key: str, _: list[WorkPayload]) -> None:
        if len(sent) == fail_at:
            raise TransientError("broker", "refused")
        sent.append((run_id, key))
        client.rpush(names.BATCH_QUEUE, key)

    return ChunkTurns(fair, ledger, send=send, depth=4)


def test_release_sends_kept_chunks_and_passes_over_those_no_longer_kept(
    fair: RedisFairShare, client: fakeredis.FakeRedis
) -> None:
    ledger = InMemoryRunLedger()
    for chunk in _chunks("org", "r1", 6):
        ledger.keep_chunk("r1", chunk.key, _payload(int(chunk.key)))
    ledger.drop_chunk("r1", "1001")  # its results came in (a copy sent before)
    sent: list[tuple[str, str]] = []
    fair.offer(_chunks("org", "r1", 6))
    assert _turns(fair, ledger, sent, client).release() == 4
    assert sent == [("r1", "1000"), ("r1", "1002"), ("r1", "1003"), ("r1", "1004")]


def test_a_send_that_fails_puts_the_rest_back_at_the_head_in_order(
    fair: RedisFairShare, client: fakeredis.FakeRedis
) -> None:
    ledger = InMemoryRunLedger()
    for chunk in _chunks("org", "r1", 5):
        ledger.keep_chunk("r1", chunk.key, _payload(int(chunk.key)))
    fair.offer(_chunks("org", "r1", 5), weight=3.0)
    sent: list[tuple[str, str]] = []
    with pytest.raises(TransientError):
        _turns(fair, ledger, sent, client, fail_at=1).release()
    assert sent == [("r1", "1000")]
    assert fair.waiting() == 4
    client.delete(names.BATCH_QUEUE)  # a worker took the one sent
    _turns(fair, ledger, sent, client).release()
    assert sent[1:] == [("r1", "1001"), ("r1", "1002"), ("r1", "1003"), ("r1", "1004")]
