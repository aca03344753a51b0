"""The runs' chunks waiting their turn, in Redis: a fair share of the workers for each run going.

Each run's waiting chunks (org, dry run and key: what their message names) are a list
(``loyalty:fair:pending:{runId}``); the runs with any are a sorted set scored by a virtual time
(``loyalty:fair:turns``), and each run's chunks out (released, not yet done) are counted
(``loyalty:fair:running``). Releasing takes the run with the fewest chunks out for its weight
(of equals, the lowest virtual time: round-robin), pops its next chunk and moves the run on by
``1 / weight``. So a run of weight 2 holds two chunks for another's one, and a run that starts
while another holds every worker gets the next releases until it holds its share, instead of
every other one: it has its share of the workers within one chunk's time. A run that starts
waiting joins at the virtual time of the last chunk released, with no credit for the time it
was absent. A chunk whose worker died is never counted done: its run holds one chunk too many
until it ends, and only while other runs wait.

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
_RUNNING = "loyalty:fair:running"
_CLOCK = "loyalty:fair:clock"
_PENDING = "loyalty:fair:pending:"

# KEYS: turns, weights, clock, pending list. ARGV: run, weight, ttl, front (1/0), keys...
# Chunks put back at the front keep the run's weight as it was.
_OFFER = """
local run = ARGV[1]
if ARGV[4] == '1' then
  for i = #ARGV, 5, -1 do redis.call('LPUSH', KEYS[4], ARGV[i]) end
else
  for i = 5, #ARGV do redis.call('RPUSH', KEYS[4], ARGV[i]) end
end
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[3]))
if ARGV[4] ~= '1' then redis.call('HSET', KEYS[2], run, ARGV[2]) end
if not redis.call('ZSCORE', KEYS[1], run) then
  redis.call('ZADD', KEYS[1], tonumber(redis.call('GET', KEYS[3]) or '0'), run)
end
return 1
"""

# KEYS: turns, weights, clock, the broker's batch queue, running. ARGV: depth, pending prefix.
# Returns run, entry, run, entry, ... in the order released. The pending lists' keys are built here
# from the run ids (one Redis, as every key of the project's runs). The run released to is the one
# with the fewest chunks out (released, not yet done) for its weight; of equals, the one whose
# turn it is (the lowest virtual time).
_RELEASE = """
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[4])
local out = {}
while room > 0 do
  local runs = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  if #runs == 0 then break end
  local run, turn, share = nil, nil, nil
  for i = 1, #runs, 2 do
    local weight = tonumber(redis.call('HGET', KEYS[2], runs[i]) or '1')
    local out_now = tonumber(redis.call('HGET', KEYS[5], runs[i]) or '0')
    local s = (out_now + 1) / weight
    if share == nil or s < share then run, turn, share = runs[i], tonumber(runs[i + 1]), s end
  end
  local pending = ARGV[2] .. run
  local key = redis.call('LPOP', pending)
  if key then
    out[#out + 1] = run
    out[#out + 1] = key
    room = room - 1
    redis.call('SET', KEYS[3], turn)
    redis.call('HINCRBY', KEYS[5], run, 1)
  end
  if redis.call('LLEN', pending) == 0 then
    redis.call('ZREM', KEYS[1], run)
    redis.call('HDEL', KEYS[2], run)
  else
    local weight = tonumber(redis.call('HGET', KEYS[2], run) or '1')
    redis.call('ZADD', KEYS[1], turn + 1 / weight, run)
  end
end
return out
"""


# KEYS: running. ARGV: run. A chunk sent again (a retry, the watchdog's) ends too: the count
# never goes below 0.
_DONE = """
local left = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if left <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""


class RedisFairShare:
    """``ports.run.FairShare`` in Redis, beside the broker's queues (same server)."""

    def __init__(self, client: redis.Redis, *, batch_queue: str, ttl_s: int) -> None:
        self._redis = client
        self._batch_queue = batch_queue
        self._ttl_s = ttl_s
        self._offer = client.register_script(_OFFER)
        self._release = client.register_script(_RELEASE)
        self._done = client.register_script(_DONE)

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
                keys=[_TURNS, _WEIGHTS, _CLOCK, _PENDING + run_id],
                args=[run_id, repr(float(weight)), self._ttl_s, "1" if front else "0", *entries],
            )

    def release(self, depth: int) -> list[ChunkRef]:
        """The chunks whose turn it is, as many as fill the batch queue to ``depth``."""
        with _transient("release"):
            flat = cast(
                list[bytes],
                self._release(
                    keys=[_TURNS, _WEIGHTS, _CLOCK, self._batch_queue, _RUNNING],
                    args=[depth, _PENDING],
                ),
            )
        released = []
        for run, entry in zip(flat[::2], flat[1::2], strict=True):
            org_id, dry_run, key = json.loads(entry)
            released.append(ChunkRef(str(org_id), run.decode(), bool(dry_run), str(key)))
        return released

    def done(self, run_id: str) -> None:
        """A chunk of the run is done: one fewer out."""
        with _transient("done"):
            self._done(keys=[_RUNNING], args=[run_id])

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
