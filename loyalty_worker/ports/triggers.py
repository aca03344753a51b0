"""Work handed to the workers, and what became of it."""

from __future__ import annotations

from typing import Any, Protocol


class Enqueuer(Protocol):
    """Where triggers go: the workers' tasks, by name, through the broker."""

    def sync_org(
        self,
        org_id: str,
        *,
        run_id: str,
        dry_run: bool = False,
        since: str | None = None,
        expires_s: float | None = None,
    ) -> None:
        """Enqueue an org's run under ``run_id`` (``since``: ``"last"`` for an incremental
        run), dropped when no worker took it within ``expires_s``; TransientError when the
        broker is down."""
        ...

    def sync_customer(
        self, org_id: str, customer_id: int, *, dry_run: bool = False, delay_s: float = 0.0
    ) -> str:
        """Enqueue one customer's sync, to start after ``delay_s``; returns the task id."""
        ...


class RunTriggers(Protocol):
    """The dashboard's run buttons: the org's run in progress, or a new one enqueued."""

    def running_run(self, org_id: str) -> str | None:
        """The org's run that is queued or going, if any."""
        ...

    def start_run(self, org_id: str, run_id: str, *, dry_run: bool, since: str | None) -> None:
        """Record ``run_id`` as queued and enqueue it (``since``: ``"last"`` for an
        incremental run); TransientError when the broker is down."""
        ...


class TaskOutcomes(Protocol):
    """What became of an enqueued task (the Celery result backend)."""

    def outcome(self, task_id: str) -> dict[str, Any] | None:
        """``{"state": ..., "result": ...}`` once the backend knows the task; None before."""
        ...
