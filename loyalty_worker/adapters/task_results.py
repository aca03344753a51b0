"""What became of an enqueued task, read from Celery's Redis result backend (``TaskOutcomes``).

The worker stores each task's result at ``celery-task-meta-{taskId}`` (JSON, kept for
``result_expires``); reading the key needs no Celery app in the API process. A customer's sync
returns ``SyncResult.to_dict``; ``task_outcome`` reads what a person is shown of it, leaving out
whatever does not hold the type it should.
"""

from __future__ import annotations

import json
from typing import cast

import redis

from loyalty_worker.domain.profile import AdjustmentEntry
from loyalty_worker.errors import TransientError
from loyalty_worker.ports.triggers import Reconciled, Shown, SyncReport, TaskOutcome

_KEY = "celery-task-meta-{}"
# Which org started a Sync Now, kept as long as Celery keeps a result (a day by default).
_OWNER = "loyalty:task-org:{}"
OWNER_TTL_S = 24 * 3600


class RedisTaskOutcomes:
    """``ports.TaskOutcomes`` over the broker's Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def outcome(self, task_id: str) -> TaskOutcome | None:
        try:
            raw = cast(bytes | None, self._redis.get(_KEY.format(task_id)))
        except redis.RedisError as exc:
            raise TransientError("redis", f"read task {task_id}: {type(exc).__name__}") from exc
        if raw is None:
            return None
        meta = json.loads(raw)
        if not isinstance(meta, dict):
            return None
        return task_outcome(str(meta.get("status", "PENDING")), meta.get("result"))

    def claim(self, task_id: str, org_id: str) -> None:
        try:
            self._redis.set(_OWNER.format(task_id), org_id, ex=OWNER_TTL_S)
        except redis.RedisError as exc:
            raise TransientError("redis", f"claim task {task_id}: {type(exc).__name__}") from exc

    def owner(self, task_id: str) -> str | None:
        try:
            raw = cast(bytes | None, self._redis.get(_OWNER.format(task_id)))
        except redis.RedisError as exc:
            raise TransientError("redis", f"read task {task_id}: {type(exc).__name__}") from exc
        return None if raw is None else raw.decode()


def task_outcome(state: str, result: object) -> TaskOutcome:
    """A task's state and its result as Celery keeps it (JSON), typed."""
    if not isinstance(result, dict):
        return TaskOutcome(state)
    displayed, rec = result.get("displayed"), result.get("reconciliation")
    report = SyncReport(
        org_id=_text(result.get("orgId")),
        status=_text(result.get("status")),
        reason=_text(result.get("reason")),
        displayed=None
        if not isinstance(displayed, dict)
        else Shown(
            points=_int(displayed.get("points")),
            tier=_text(displayed.get("tier")),
            tier_source=_text(displayed.get("tierSource")),
        ),
        reconciliation=None
        if not isinstance(rec, dict)
        else Reconciled(status=_text(rec.get("status")), discrepancy=_int(rec.get("discrepancy"))),
        adjustment=_adjustment(result.get("adjustment")),
    )
    return TaskOutcome(state, report)


def _adjustment(value: object) -> AdjustmentEntry | None:
    if not isinstance(value, dict):
        return None
    source, before, after = value.get("source"), _int(value.get("from")), _int(value.get("to"))
    if not isinstance(source, str) or before is None or after is None:
        return None
    return {"source": source, "from": before, "to": after}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
