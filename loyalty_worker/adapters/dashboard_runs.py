"""The dashboard's run triggers (``ports.RunTriggers``): Redis and the broker.

An org's run in progress is the holder of its run lock (``RunTracker``), or the last run the
dashboard enqueued while that one still reads ``queued``/``running``: a second press shows it
instead of starting another.
"""

from __future__ import annotations

from typing import cast

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.domain.run import RunStatus
from loyalty_worker.errors import TransientError
from loyalty_worker.names import RUNS_QUEUE, SYNC_ORG

_LAST_KEY = "loyalty:dashboard:lastrun:{}"
_LAST_TTL_S = 24 * 3600


class RedisRunTriggers:
    def __init__(self, client: redis.Redis, tracker: RunTracker, broker: Celery) -> None:
        self._redis = client
        self._tracker = tracker
        self._broker = broker

    def running_run(self, org_id: str) -> str | None:
        try:
            holder = self._tracker.lock_holder(org_id)
            if holder:
                return holder
            last = cast(bytes | None, self._redis.get(_LAST_KEY.format(org_id)))
        except redis.RedisError as exc:
            raise TransientError("redis", f"read runs of {org_id}: {type(exc).__name__}") from exc
        if last is None:
            return None
        run_id = last.decode()
        return run_id if RunStatus.of(self._tracker.progress(run_id).status).going else None

    def start_run(self, org_id: str, run_id: str, *, dry_run: bool, since: str | None) -> None:
        try:
            self._tracker.start(run_id, org_id, status="queued", dryRun=int(dry_run))
            self._redis.set(_LAST_KEY.format(org_id), run_id, ex=_LAST_TTL_S)
        except redis.RedisError as exc:
            raise TransientError("redis", f"record run {run_id}: {type(exc).__name__}") from exc
        kwargs: dict[str, object] = {"run_id": run_id, "dry_run": dry_run}
        if since is not None:
            kwargs["since"] = since
        try:
            self._broker.send_task(SYNC_ORG, args=[org_id], kwargs=kwargs, queue=RUNS_QUEUE)
        except (OperationalError, redis.RedisError, OSError) as exc:
            self._tracker.update(run_id, status="failed", error="broker unavailable")
            raise TransientError("broker", f"could not enqueue run {run_id}") from exc
