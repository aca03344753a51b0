"""What became of an enqueued task, read from Celery's Redis result backend (``TaskOutcomes``).

The worker stores each task's result at ``celery-task-meta-{taskId}`` (JSON, kept for
``result_expires``); reading the key needs no Celery app in the API process.
"""

from __future__ import annotations

import json
from typing import Any, cast

import redis

from loyalty_worker.errors import TransientError

_KEY = "celery-task-meta-{}"


class RedisTaskOutcomes:
    """``ports.TaskOutcomes`` over the broker's Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def outcome(self, task_id: str) -> dict[str, Any] | None:
        try:
            raw = cast(bytes | None, self._redis.get(_KEY.format(task_id)))
        except redis.RedisError as exc:
            raise TransientError("redis", f"read task {task_id}: {type(exc).__name__}") from exc
        if raw is None:
            return None
        meta = json.loads(raw)
        if not isinstance(meta, dict):
            return None
        return {"state": str(meta.get("status", "PENDING")), "result": meta.get("result")}
