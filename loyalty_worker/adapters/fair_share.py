"""The runs' chunks waiting their turn, in Redis: a fair share of the workers for each run going.

Each run's waiting chunks (org, dry run and key: what their message names) are a list
(``loyalty:fair:pending:{runId}``); the runs with any are a sorted set scored by the service
each run has had so far: its chunks released, each counting ``1 / weight``
(``loyalty:fair:turns``; kept beside it while the run has nothing waiting, in
``loyalty:fair:served:{runId}``, for as long as its chunks are kept). Releasing takes the run
with the least service and moves it on by ``1 / weight``: runs of equal service take turns
(round-robin), a run of weight 2 has two chunks for another's one, and a run that starts while
others are going has every release until it has had as much as the least served of them. So a
small org's run that starts during a big one's is done within about its time alone, and the big
one is held up by the small one's work and no more; runs that start together (the 02:00 wave)
share the workers equally, and the small ones end first.

Releasing fills the broker's batch queue up to a depth and no further: a run's chunk then waits
behind at most that many chunks of other runs, and the workers always find work while any run
has some. Everything happens in one Lua script, atomic against every other worker's. A closed
run's chunks still waiting are released like any (its kept chunks are gone: nothing is sent) or
expire with their list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import cast

import redis

from loyalty_worker.errors import TransientError
from loyalty_worker.ports.run import ChunkRef

_TURNS = "loyalty:fair:turns"
_WEIGHTS = "loyalty:fair:weights"
_PENDING = "loyalty:fair:pending:"
_SERVED = "loyalty:fair:served:"

# KEYS: turns, weights, pending list, served. ARGV: run, weight, ttl, front (1/0), keys...
# Chunks put back at the front keep the run's weight as it was. A run joins the turns at the
# service it has had (none, when new).
_OFFER = """
local run = ARGV[1]
if ARGV[4] == '1' then
  for i = #ARGV, 5, -1 do redis.call('LPUSH', KEYS[3], ARGV[i]) end
else
  for i = 5, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
end
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]))
if ARGV[4] ~= '1' then redis.call('HSET', KEYS[2], run, ARGV[2]) end
if not redis.call('ZSCORE', KEYS[1], run) then
  redis.call('ZADD', KEYS[1], tonumber(redis.call('GET', KEYS[4]) or '0'), run)
end
return 1
"""

# KEYS: turns, weights, the broker's batch queue. ARGV: depth, pending prefix, served prefix,
# ttl. Returns run, entry, run, entry, ... in the order released. The lists' and counters' keys
# are built here from the run ids (one Redis, as every key of the project's runs). The run
# released to is the least served (of equals, the first by id; it then has had more).
_RELEASE = """
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[3])
local out = {}
while room > 0 do
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #first == 0 then break end
  local run = first[1]
  local pending = ARGV[2] .. run
  local served = ARGV[3] .. run
  local key = redis.call('LPOP', pending)
  local weight = tonumber(redis.call('HGET', KEYS[2], run) or '1')
  local score = tonumber(first[2])
  if key then
    out[#out + 1] = run
    out[#out + 1] = key
    room = room - 1
    score = tonumber(redis.call('INCRBYFLOAT', served, 1 / weight))
    redis.call('EXPIRE', served, tonumber(ARGV[4]))
  end
  if redis.call('LLEN', pending) == 0 then
    redis.call('ZREM', KEYS[1], run)
    redis.call('HDEL', KEYS[2], run)
  else
    redis.call('ZADD', KEYS[1], score, run)
  end
end
return out
"""


class RedisFairShare:
    """``ports.run.FairShare`` in Redis, beside the broker's queues (same server)."""

    def __init__(self, client: redis.Redis, *, batch_queue: str, ttl_s: int) -> None:
        self._redis = client
        self._batch_queue = batch_queue
        self._ttl_s = ttl_s
        self._offer = client.register_script(_OFFER)
        self._release = client.register_script(_RELEASE)

    def offer(
        self, chunks: Sequence[ChunkRef], *, weight: float = 1.0, front: bool = False
    ) -> None:
        """Put chunks of one run in its line (``front``: back at its head, in order)."""
        if not chunks:
            return
        run_id = chunks[0].run_id
        entries = [json.dumps([c.org_id, c.dry_run, c.key], separators=(",", ":")) for c in chunks]
        with _transient("offer"):
            self._offer(
                keys=[_TURNS, _WEIGHTS, _PENDING + run_id, _SERVED + run_id],
                args=[run_id, repr(float(weight)), self._ttl_s, "1" if front else "0", *entries],
            )

    def release(self, depth: int) -> list[ChunkRef]:
        """The chunks whose turn it is, as many as fill the batch queue to ``depth``."""
        with _transient("release"):
            flat = cast(
                list[bytes],
                self._release(
                    keys=[_TURNS, _WEIGHTS, self._batch_queue],
                    args=[depth, _PENDING, _SERVED, self._ttl_s],
                ),
            )
        released = []
        for run, entry in zip(flat[::2], flat[1::2], strict=True):
            org_id, dry_run, key = json.loads(entry)
            released.append(ChunkRef(str(org_id), run.decode(), bool(dry_run), str(key)))
        return released

    def waiting(self) -> int:
        """Chunks waiting their turn, over every run."""
        runs = cast(list[bytes], self._redis.zrange(_TURNS, 0, -1))
        if not runs:
            return 0
        pipe = self._redis.pipeline(transaction=False)
        for run in runs:
            pipe.llen(_PENDING + run.decode())
        return sum(int(n) for n in pipe.execute())


@contextmanager
def _transient(what: str) -> Iterator[None]:
    """Redis failing under a release or an offer: a ``TransientError`` ("redis")."""
    try:
        yield
    except (redis.RedisError, OSError) as exc:
        raise TransientError("redis", f"chunks' turns: {what}: {type(exc).__name__}") from exc
