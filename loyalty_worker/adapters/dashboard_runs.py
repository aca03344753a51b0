"""The dashboard's run triggers (``ports.RunTriggers``): Redis and the broker.

An org's run in progress is the holder of its run lock (``RunTracker``), or the last run the
dashboard enqueued while that one is still going (``RunStatus.going``): a second press shows it
instead of starting another.
"""

from __future__ import annotations

from typing import cast

import redis

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.domain.run import RunStatus
from loyalty_worker.errors import TransientError

_LAST_KEY = "loyalty:dashboard:lastrun:{}"
_LAST_TTL_S = 24 * 3600


class RedisRunTriggers:
    def __init__(self, client: redis.Redis, tracker: RunTracker) -> None:
        self._redis = client
        self._tracker = tracker

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

    def remember_run(self, org_id: str, run_id: str) -> None:
        try:
            self._redis.set(_LAST_KEY.format(org_id), run_id, ex=_LAST_TTL_S)
        except redis.RedisError as exc:
            raise TransientError("redis", f"record run {run_id}: {type(exc).__name__}") from exc
