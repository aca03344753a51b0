"""A batch run's live state in Redis: the org's run lock, progress and per-customer results.

Why not a Celery chord: a chord over 100,000 header tasks on Redis keeps every member's result
and is known to hang or blow memory. Instead each sync task stores its small result in one hash
per run, keyed by customer, and a Lua script tells exactly one caller, the one that completes the
set, to fire the summary. Keying by customer makes a redelivered task (``acks_late`` after a
killed worker) overwrite its own entry instead of counting twice.

Results come in and go out as ``SyncResult``; Redis holds their camelCase JSON (``to_dict``). The
run's record is a hash of text fields, read as a typed ``RunRecord`` (``run_record``).
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import cast

import redis

from loyalty_worker.domain.results import SyncResult
from loyalty_worker.domain.run import (
    AlertOutcome,
    PlanReport,
    RunRecord,
    RunStatus,
    RunSummaryDocument,
    run_kind,
)
from loyalty_worker.ports.run import WorkPayload

# KEYS: results, failed, meta. ARGV: (customer key, result JSON, failed flag "1"/"0") repeated.
# Returns 1 to exactly one caller: the one whose results complete the listed set. A result that
# comes after the run was closed (a late redelivery) is dropped: the summary is written. A
# failure never replaces a success of the same run: the customer's profile was written (a
# duplicate that failed late, e.g. once its phone was no longer kept, changes nothing).
_RECORD = """
if redis.call('HEXISTS', KEYS[3], 'finishedAt') == 1 then return 0 end
for i = 1, #ARGV, 3 do
  if ARGV[i + 2] == '1' then
    if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0
        or redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 1 then
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
      redis.call('SADD', KEYS[2], ARGV[i])
    end
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    redis.call('SREM', KEYS[2], ARGV[i])
  end
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[3], 'lastResultAt', tonumber(t[1]) + tonumber(t[2]) / 1000000)
local listed = redis.call('HGET', KEYS[3], 'listed')
if not listed then return 0 end
if redis.call('HLEN', KEYS[1]) >= tonumber(listed) then
  if redis.call('HSETNX', KEYS[3], 'fired', '1') == 1 then return 1 end
end
return 0
"""

# KEYS: the org's lock. ARGV: run id, ttl. Take the lock, or refresh it for the run that holds it
# (a resumed planner re-takes its own run's lock); the other holder's run id when taken.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return false
"""

# KEYS: meta, the org's lock. ARGV: run id, lock ttl, the planner's token ("" for other tasks).
# A task of an open run is alive: stamp it, and keep (or take back) the org's lock for the run;
# the planner's beat counts as one only once it holds the planning (its token recorded).
_BEAT = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'finishedAt') == 1 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('HSET', KEYS[1], 'lastBeatAt', now)
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'planner') == ARGV[3] then
  redis.call('HSET', KEYS[1], 'plannerBeatAt', now)
end
local holder = redis.call('GET', KEYS[2])
if not holder or holder == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', tonumber(ARGV[2]))
end
return 1
"""

# KEYS: meta. ARGV: seconds without a planner beat after which planning is taken over, the
# claiming planner's token. Exactly one planner plans a run at a time; a redelivered or re-sent
# one continues it. A planner's own beat never makes its run busy to itself.
_CLAIM_PLANNER = """
if redis.call('HEXISTS', KEYS[1], 'finishedAt') == 1 then return 'ended' end
if redis.call('HEXISTS', KEYS[1], 'dispatchedAt') == 1 then return 'planned' end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local beat = redis.call('HGET', KEYS[1], 'plannerBeatAt')
local holder = redis.call('HGET', KEYS[1], 'planner')
if beat and holder ~= ARGV[2] and now - tonumber(beat) < tonumber(ARGV[1]) then return 'busy' end
redis.call('HSET', KEYS[1], 'plannerBeatAt', now, 'planStartedAt', now, 'planner', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'planAttempts', 1)
return 'claimed'
"""

# Release the org's lock only if this run still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Progress:
    org_id: str | None
    status: str  # listing | syncing | summarizing | completed | failed | incomplete | unknown
    listed: int | None
    done: int
    failed: int
    summary: RunSummaryDocument | None
    error: str | None
    kind: str = "Full"  # ``domain.run.run_kind``: what kind of run, in words


def _kind_fields(record: RunRecord) -> RunSummaryDocument:
    """What ``run_kind`` reads, from a run's live record (no summary yet)."""
    fields: RunSummaryDocument = {"dryRun": record.dry_run, "since": record.since or "full"}
    if record.selection is not None:
        fields["partial"] = True
        fields["scope"] = record.scope or ""
    return fields


def run_record(run_id: str, fields: Mapping[str, str]) -> RunRecord:
    """A run's record from its hash as Redis holds it: text values, numbers as text, the
    summary, the alert and the unowned order ids as JSON; a field never set is absent."""

    def stamp(name: str) -> float | None:
        value = fields.get(name)
        return None if value is None else float(value)

    recoveries = int(fields.get("recoveries", 0))
    plan = None
    if "ordersSeen" in fields:
        plan = PlanReport(
            orders_seen=int(fields["ordersSeen"]),
            order_pages=int(fields.get("orderPages", 0)),
            orders_since=fields.get("ordersSince", "all"),
            unowned_malformed=int(fields.get("unownedMalformedOrders", 0)),
            unowned_listed=tuple(json.loads(fields.get("unownedMalformedOrderIds", "[]"))),
        )
    return RunRecord(
        run_id=run_id,
        org_id=fields.get("orgId"),
        status=RunStatus.of(fields.get("status")),
        dry_run=fields.get("dryRun") == "1",
        since=fields.get("since"),
        selection=fields.get("selection"),
        scope=fields.get("scope"),
        error=fields.get("error"),
        running_run_id=fields.get("runningRunId"),
        started_at=stamp("startedAt"),
        listed=int(fields["listed"]) if "listed" in fields else None,
        listed_at=stamp("listedAt"),
        plan_attempts=int(fields.get("planAttempts", 0)),
        plan_started_at=stamp("planStartedAt"),
        planner_beat_at=stamp("plannerBeatAt"),
        dispatched_at=stamp("dispatchedAt"),
        last_result_at=stamp("lastResultAt"),
        last_beat_at=stamp("lastBeatAt"),
        recovered_at=stamp("recoveredAt"),
        recoveries=recoveries,
        recovery_log=tuple(fields.get(f"recovery{n}", "") for n in range(1, recoveries + 1)),
        fired=fields.get("fired") == "1",
        plan=plan,
        alert=json.loads(fields["alert"]) if "alert" in fields else None,
        summary=json.loads(fields["summary"]) if "summary" in fields else None,
    )


class RunTracker:
    """Run locks, completion counting and results of batch runs, shared by every worker."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_s: int = 7 * 24 * 3600,
        memo_ttl_s: int = 8 * 24 * 3600,
        results_keep_s: int = 0,
    ) -> None:
        self._redis = client
        self._ttl = ttl_s
        self._memo_ttl = memo_ttl_s
        self._results_keep_s = results_keep_s
        self._record = client.register_script(_RECORD)
        self._release = client.register_script(_RELEASE)
        self._acquire = client.register_script(_ACQUIRE)
        self._beat = client.register_script(_BEAT)
        self._claim_planner = client.register_script(_CLAIM_PLANNER)

    @staticmethod
    def _keys(run_id: str) -> tuple[str, str, str]:
        base = f"loyalty:run:{run_id}"
        return f"{base}:results", f"{base}:failed", f"{base}:meta"

    @staticmethod
    def _chunks_key(run_id: str) -> str:
        return f"loyalty:run:{run_id}:chunks"

    def acquire_lock(self, org_id: str, run_id: str, ttl_s: int) -> str | None:
        """Take (or, for the run that holds it, refresh) the org's run lock for ``ttl_s``;
        the holder's run id when another run has it."""
        holder = self._acquire(keys=[f"loyalty:lock:{org_id}"], args=[run_id, ttl_s])
        return holder.decode() if isinstance(holder, bytes) else None

    def beat(
        self, run_id: str, org_id: str, *, lock_ttl_s: int, planner: str | None = None
    ) -> bool:
        """A task of the run is alive: stamp ``lastBeatAt`` (and ``plannerBeatAt`` for the
        planner whose token holds the planning), keep the org's lock for the run another
        ``lock_ttl_s``; False once the run is closed."""
        keys = [self._keys(run_id)[2], f"loyalty:lock:{org_id}"]
        return bool(self._beat(keys=keys, args=[run_id, lock_ttl_s, planner or ""]))

    def claim_planner(self, run_id: str, *, holder: str, stale_s: float) -> str:
        """Whether this planner plans the run: ``claimed`` (counted in ``planAttempts``,
        stamped in ``planStartedAt``), ``busy`` (another planner beat within ``stale_s``),
        ``planned`` (its work is all sent) or ``ended``."""
        answer = self._claim_planner(keys=[self._keys(run_id)[2]], args=[stale_s, holder])
        return answer.decode() if isinstance(answer, bytes) else str(answer)

    def keep_chunk(self, run_id: str, key: str, payloads: Sequence[WorkPayload]) -> None:
        """Keep a chunk's payloads (compressed) until its results are in: the run's work that
        the watchdog re-sends should its message be lost."""
        data = zlib.compress(json.dumps(list(payloads), separators=(",", ":")).encode(), 1)
        pipe = self._redis.pipeline()
        pipe.hset(self._chunks_key(run_id), mapping={key: data})
        pipe.expire(self._chunks_key(run_id), self._ttl)
        pipe.execute()

    def drop_chunk(self, run_id: str, key: str) -> None:
        """The chunk's results are all in: it is no longer kept."""
        self._redis.hdel(self._chunks_key(run_id), key)

    def kept_chunks(self, run_id: str) -> dict[str, list[WorkPayload]]:
        """Every kept chunk's payloads, by chunk key."""
        raw = cast(dict[bytes, bytes], self._redis.hgetall(self._chunks_key(run_id)))
        return {k.decode(): json.loads(zlib.decompress(v)) for k, v in raw.items()}

    def kept_chunk(self, run_id: str, key: str) -> list[WorkPayload] | None:
        """One kept chunk's payloads; None once its results are in or the run is closed."""
        data = cast(bytes | None, self._redis.hget(self._chunks_key(run_id), key))
        return None if data is None else cast(list[WorkPayload], json.loads(zlib.decompress(data)))

    def has_results(self, run_id: str, keys: Sequence[str]) -> list[bool]:
        """For each customer key, whether the run holds its result."""
        if not keys:
            return []
        found = cast(list[bytes | None], self._redis.hmget(self._keys(run_id)[0], list(keys)))
        return [value is not None for value in found]

    def release_lock(self, org_id: str, run_id: str) -> None:
        self._release(keys=[f"loyalty:lock:{org_id}"], args=[run_id])

    def running_runs(self) -> dict[str, str]:
        """The run holding each org's lock, by org: the runs going (a lock outlives its run's
        last heartbeat by ``run_lock_ttl_s`` at most)."""
        held: dict[str, str] = {}
        for key in self._redis.scan_iter(match="loyalty:lock:*", count=500):
            holder = cast(bytes | None, self._redis.get(key))
            if holder is not None:
                held[key.decode().removeprefix("loyalty:lock:")] = holder.decode()
        return held

    def lock_holder(self, org_id: str) -> str | None:
        holder = cast(bytes | None, self._redis.get(f"loyalty:lock:{org_id}"))
        return holder.decode() if holder is not None else None

    def mark_nightly(self, org_id: str, local_day: date, *, ttl_s: int) -> bool:
        """True once per org and local day: the nightly run's start marker."""
        key = f"loyalty:nightly:{org_id}:{local_day.isoformat()}"
        return bool(self._redis.set(key, "1", nx=True, ex=ttl_s))

    def start(self, run_id: str, org_id: str, **meta: str | int | float) -> None:
        """Open the run's record afresh: results that late tasks left under a record Redis
        lost (a restart without persistence) are dropped, and the run is planned anew."""
        results, failed, meta_key = self._keys(run_id)
        fields = {"orgId": org_id, "status": "listing", "startedAt": time.time(), **meta}
        pipe = self._redis.pipeline()
        pipe.delete(meta_key, results, failed, self._chunks_key(run_id))
        pipe.hset(meta_key, mapping=fields)
        pipe.expire(meta_key, self._ttl)
        pipe.execute()

    def update(self, run_id: str, **fields: str | int | float) -> None:
        self._redis.hset(self._keys(run_id)[2], mapping=fields)

    def set_listed(self, run_id: str, listed: int) -> bool:
        """Record how many results complete the run; True when they are all in already."""
        results, failed, meta = self._keys(run_id)
        pipe = self._redis.pipeline()
        pipe.hset(meta, mapping={"listed": listed, "status": "syncing", "listedAt": time.time()})
        for key in (results, failed):
            pipe.expire(key, self._ttl)
        pipe.execute()
        return listed == 0 or self.record_done_check(run_id)

    def record_done_check(self, run_id: str) -> bool:
        """Fire-once check without a new result (for runs whose results all came in already)."""
        results, _, meta = self._keys(run_id)
        listed = cast(bytes | None, self._redis.hget(meta, "listed"))
        if listed is None or cast(int, self._redis.hlen(results)) < int(listed):
            return False
        return bool(self._redis.hsetnx(meta, "fired", "1"))

    def record(self, run_id: str, results: Mapping[str, SyncResult]) -> bool:
        """Store results by customer key in one round trip; True for exactly one caller: the
        one whose results complete the run."""
        args: list[str] = []
        for key, result in results.items():
            args += [key, json.dumps(result.to_dict()), "0" if result.success else "1"]
        return bool(self._record(keys=list(self._keys(run_id)), args=args))

    def iter_results(self, run_id: str, *, batch: int = 1000) -> Iterator[SyncResult]:
        """Every stored result, streamed in batches (bounded memory for 100,000 customers)."""
        results = self._keys(run_id)[0]
        for _, raw in self._redis.hscan_iter(results, count=batch):
            yield SyncResult.from_dict(json.loads(raw))

    def meta(self, run_id: str) -> dict[str, str]:
        """The run's hash as Redis holds it, for people to inspect (the demo, the chaos
        suite); the services read it as ``run_record``."""
        raw = cast(dict[bytes, bytes], self._redis.hgetall(self._keys(run_id)[2]))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def run_record(self, run_id: str) -> RunRecord:
        """The run's record (``run_record``)."""
        return run_record(run_id, self.meta(run_id))

    def note_plan(self, run_id: str, report: PlanReport) -> None:
        self.update(run_id, **plan_fields(report))

    def keep_alert(self, run_id: str, alert: AlertOutcome) -> None:
        self.update(run_id, alert=json.dumps(alert))

    def progress(self, run_id: str) -> Progress:
        results, failed, meta_key = self._keys(run_id)
        pipe = self._redis.pipeline()
        pipe.hgetall(meta_key)
        pipe.hlen(results)
        pipe.scard(failed)
        raw_meta, done, failures = pipe.execute()
        record = run_record(run_id, {k.decode(): v.decode() for k, v in raw_meta.items()})
        summary = record.summary
        if summary is not None:  # closed: its results are gone, the summary counts them
            done = int(summary.get("listed", 0)) - int(summary.get("missing", 0))
            failures = int(summary.get("failed", 0))
        return Progress(
            org_id=record.org_id,
            status=record.status.value,
            listed=record.listed,
            done=int(done),
            failed=int(failures),
            summary=summary,
            error=record.error,
            kind=run_kind(summary if summary is not None else _kind_fields(record)),
        )

    def claim_summary(self, run_id: str, flag: str = "fired") -> bool:
        """The watchdog's way to fire a run's summary: the same once-only flag as completion
        (another ``flag`` for a run whose fired summary was lost)."""
        return bool(self._redis.hsetnx(self._keys(run_id)[2], flag, "1"))

    @staticmethod
    def _memo_key(org_id: str) -> str:
        return f"loyalty:memo:{org_id}"

    def remember(self, results: Sequence[SyncResult]) -> None:
        """Keep each customer's latest result per org (the incremental runs' memo): a success
        that wrote or confirmed the profile replaces the entry, a failure removes it, a dry run
        leaves it alone. The memo expires ``memo_ttl_s`` after its last change."""
        pipe = self._redis.pipeline(transaction=False)
        orgs: set[str] = set()
        for result in results:
            if result.dry_run:
                continue
            key, customer = self._memo_key(result.org_id), str(result.customer_id)
            if result.success and result.inputs is not None:
                pipe.hset(key, customer, json.dumps(result.to_dict()))
            else:
                pipe.hdel(key, customer)
            orgs.add(result.org_id)
        for org_id in orgs:
            pipe.expire(self._memo_key(org_id), self._memo_ttl)
        if orgs:
            pipe.execute()

    def recall(self, org_id: str, customer_ids: Sequence[int]) -> dict[int, SyncResult]:
        """The memo's latest result of each of ``customer_ids`` that has one."""
        if not customer_ids:
            return {}
        raw = cast(
            list[bytes | None],
            self._redis.hmget(self._memo_key(org_id), [str(cid) for cid in customer_ids]),
        )
        kept: dict[int, SyncResult] = {}
        for cid, value in zip(customer_ids, raw, strict=True):
            if not value:
                continue
            try:
                kept[cid] = SyncResult.from_dict(json.loads(value))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # unreadable: as if nothing were kept (the customer is synced)
        return kept

    def mark_success(self, org_id: str, started_at: float) -> None:
        self._redis.set(f"loyalty:lastsuccess:{org_id}", started_at)

    def last_success(self, org_id: str) -> float | None:
        """When the org's last fully successful run started (epoch seconds), if any."""
        value = cast(bytes | None, self._redis.get(f"loyalty:lastsuccess:{org_id}"))
        return float(value) if value is not None else None

    def finish(self, run_id: str, status: RunStatus, summary: RunSummaryDocument) -> None:
        """Close the run with its summary; its per-customer results go now, or after
        ``results_keep_s``: the summary holds what they add up to (100,000 results are about
        60 MB of Redis)."""
        results, failed, meta = self._keys(run_id)
        pipe = self._redis.pipeline()
        pipe.hset(
            meta,
            mapping={
                "status": status.value,
                "summary": json.dumps(summary),
                "finishedAt": time.time(),
            },
        )
        pipe.delete(self._chunks_key(run_id))
        for key in (results, failed):
            if self._results_keep_s:
                pipe.expire(key, self._results_keep_s)
            else:
                pipe.delete(key)
        pipe.execute()


def plan_fields(report: PlanReport) -> dict[str, str | int]:
    """A plan's report as the run's hash keeps it (``run_record`` reads it back)."""
    return {
        "ordersSeen": report.orders_seen,
        "orderPages": report.order_pages,
        "ordersSince": report.orders_since,
        "unownedMalformedOrders": report.unowned_malformed,
        "unownedMalformedOrderIds": json.dumps(list(report.unowned_listed)),
    }
