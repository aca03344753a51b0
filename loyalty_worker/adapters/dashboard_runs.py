"""The dashboard's run triggers (``ports.RunTriggers``): Redis and the broker.

An org's run in progress is the holder of its run lock (``RunTracker``), or the last run the
dashboard enqueued while that one is still going (``RunStatus.going``): a second press shows it
instead of starting another. A run starts as every run does (``services.run.triggers``).
"""

from __future__ import annotations

from typing import cast

import redis

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.domain.run import RunStatus
from loyalty_worker.errors import TransientError
from loyalty_worker.ports.triggers import Enqueuer
from loyalty_worker.services.run.triggers import enqueue_org_run

_LAST_KEY = "loyalty:dashboard:lastrun:{}"
_LAST_TTL_S = 24 * 3600


class RedisRunTriggers:
    def __init__(self, client: redis.Redis, tracker: RunTracker, enqueuer: Enqueuer) -> None:
        self._redis = client
        self._tracker = tracker
        self._enqueuer = enqueuer

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
        """Remember the run as the org's last, then start it the one way every run starts."""
        try:
            self._redis.set(_LAST_KEY.format(org_id), run_id, ex=_LAST_TTL_S)
            enqueue_org_run(
                org_id,
                run_id,
                dry_run=dry_run,
                since=since,
                runs=self._tracker,
                enqueuer=self._enqueuer,
            )
        except redis.RedisError as exc:
            raise TransientError("redis", f"record run {run_id}: {type(exc).__name__}") from exc
