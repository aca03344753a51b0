"""Work handed to the workers, and what became of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from loyalty_worker.domain.profile import AdjustmentEntry


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
        selection: str | None = None,
    ) -> None:
        """Enqueue an org's run under ``run_id`` (``since``: ``"last"`` for an incremental
        run; ``selection``: a partial run's customers, ``CustomerSelection.encode``),
        dropped when no worker took it within ``expires_s``; TransientError when the broker
        is down."""
        ...

    def sync_customer(
        self, org_id: str, customer_id: int, *, dry_run: bool = False, delay_s: float = 0.0
    ) -> str:
        """Enqueue one customer's sync, to start after ``delay_s``; returns the task id."""
        ...


class RunTriggers(Protocol):
    """The dashboard's run buttons: the org's run in progress, so that a second press names it
    instead of starting another."""

    def running_run(self, org_id: str) -> str | None:
        """The org's run that is queued or going, if any."""
        ...

    def remember_run(self, org_id: str, run_id: str) -> None:
        """Keep ``run_id`` as the org's latest run started from the dashboard (it reads as
        going until it ends); TransientError when that cannot be kept."""
        ...


@dataclass(frozen=True, slots=True)
class Shown:
    """The balance a customer's sync left on the profile."""

    points: int | None
    tier: str | None
    tier_source: str | None


@dataclass(frozen=True, slots=True)
class Reconciled:
    """How a customer's sync reconciled the two balances."""

    status: str | None
    discrepancy: int | None


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a customer's sync returned (``SyncResult.to_dict``), as far as a person is shown
    it: each part None when the result lacks it."""

    org_id: str | None = None
    status: str | None = None
    reason: str | None = None
    displayed: Shown | None = None
    reconciliation: Reconciled | None = None
    adjustment: AdjustmentEntry | None = None


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """A task as the result backend knows it: Celery's state (``PENDING``, ``SUCCESS``,
    ``FAILURE``...) and, when it returned (or failed with) a mapping, what it says."""

    state: str
    report: SyncReport | None = None


class TaskOutcomes(Protocol):
    """What became of an enqueued task (the Celery result backend)."""

    def outcome(self, task_id: str) -> TaskOutcome | None:
        """The task's outcome once the backend knows the task; None before."""
        ...

    def claim(self, task_id: str, org_id: str) -> None:
        """Remember that a person of ``org_id`` started the task (its result is theirs)."""
        ...

    def owner(self, task_id: str) -> str | None:
        """The org that started the task, while remembered; None for any other task."""
        ...
