"""The deadlines of the worker, added up from the settings, and the check that they hold together.

Celery's ``task_time_limit`` is not enforced by the threads pool the worker runs, so every task
bounds its own time: each HTTP call by its timeouts, attempts and retry budget (``adapters.http``),
each Firestore call by its RPC deadline and retry budget (``adapters.firestore``), each listing
by a page cap, and the loops that start new work by a time budget (``services.sync.deadline``). The
worst case of each task is the sum below. A run's liveness is its tasks' heartbeat, so a
running task is never taken for lost however long it takes; the orders that must hold are

    heartbeat × 3 <= re-dispatch delay < visibility timeout < stall timeout
    heartbeat × 3 <= lock TTL
    longest task < visibility timeout

A run whose live tasks beat less often would look idle and have its work sent twice; work
re-sent after Redis's own redelivery would come too late to matter; a task that outlived the
visibility timeout would be handed to a second worker while the first still runs it; a lock
that expired between beats would let a second run of the org start. docs/operations.md ("Deadlines")
shows the same table with the defaults.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from loyalty_worker.config import Settings
from loyalty_worker.services.run.profile_reads import PROFILE_READS

# An Alleaves call may log in first, and after a 401 log in again and call again.
ALLEAVES_SENDS_PER_CALL = 4


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Worst-case seconds of each piece and each task, from one ``Settings``."""

    http_attempt_s: float
    http_call_s: float
    alleaves_call_s: float
    firestore_call_s: float
    profile_block_s: float
    chunk_task_s: float
    retried_customer_task_s: float
    single_sync_task_s: float
    summary_task_s: float
    plan_s: float
    heartbeat_s: float
    redispatch_s: float
    lock_ttl_s: float
    visibility_timeout_s: float
    stall_s: float

    @property
    def longest_task_s(self) -> float:
        """The longest a task acknowledged late (and so redelivered) can run."""
        return max(
            self.chunk_task_s,
            self.retried_customer_task_s,
            self.single_sync_task_s,
            self.summary_task_s,
        )

    def problems(self) -> list[str]:
        """Each way the deadlines are out of order (none: they hold together)."""
        found = []
        if 3 * self.heartbeat_s > self.redispatch_s:
            found.append(
                f"the heartbeat (LOYALTY_HEARTBEAT_S={self.heartbeat_s:g}) must beat three times "
                f"within the re-dispatch delay (LOYALTY_REDISPATCH_S={self.redispatch_s:g}), or "
                "a run whose tasks are alive looks idle and has its work sent twice"
            )
        if 3 * self.heartbeat_s > self.lock_ttl_s:
            found.append(
                f"the heartbeat (LOYALTY_HEARTBEAT_S={self.heartbeat_s:g}) must beat three times "
                f"within the lock's TTL (LOYALTY_RUN_LOCK_TTL_S={self.lock_ttl_s:g}), or a "
                "second run of the org may start while the first is alive"
            )
        if self.redispatch_s >= self.visibility_timeout_s:
            found.append(
                f"the re-dispatch delay ({self.redispatch_s:g} s) must be shorter than the "
                f"visibility timeout (LOYALTY_VISIBILITY_TIMEOUT_S={self.visibility_timeout_s:g})"
                ", or lost work waits for Redis's own redelivery"
            )
        if self.longest_task_s >= self.visibility_timeout_s:
            found.append(
                f"the longest task ({self.longest_task_s:g} s) must end before the visibility "
                f"timeout (LOYALTY_VISIBILITY_TIMEOUT_S={self.visibility_timeout_s:g}), or "
                "Redis hands it to a second worker while the first still runs it"
            )
        if self.visibility_timeout_s >= self.stall_s:
            found.append(
                f"the visibility timeout ({self.visibility_timeout_s:g} s) must be shorter than "
                f"the stall timeout (LOYALTY_RUN_STALL_S={self.stall_s:g}), or a run is closed "
                "as incomplete before a lost task comes back"
            )
        if self.plan_s >= self.stall_s:
            found.append(
                f"a run's planning ({self.plan_s:g} s) must end before the stall timeout "
                f"(LOYALTY_RUN_STALL_S={self.stall_s:g})"
            )
        return found


def deadlines(settings: Settings) -> Deadlines:
    """The worst cases, in seconds, that ``settings`` give (formulas: docs/operations.md)."""
    # One attempt: connect, then the whole response read by connect + read timeout (checked
    # between chunks), plus one read blocked up to the read timeout when that passes.
    attempt = settings.http_connect_timeout_s + 2 * settings.http_timeout_s
    # Attempts, and the waits between them (never past the retry budget).
    http_call = settings.http_max_attempts * attempt + settings.http_max_retry_s
    alleaves_call = ALLEAVES_SENDS_PER_CALL * http_call
    firestore = settings.firestore_timeout_s + settings.firestore_retry_s
    # A block of profiles read ahead by the plan: its attempts and the pauses between them.
    profile_block = PROFILE_READS.longest_s(firestore)
    org_read = firestore  # the org's settings document (cached a minute)
    chunk = (
        org_read
        + settings.task_budget_s  # no new customer is started after it
        + http_call  # the customer in flight: its Alpine IQ look-up
        + firestore  # ... and its profile read
        + 2 * firestore  # the batched write; if refused, the one written alone when it passes
    )
    retried_customer = org_read + http_call + 2 * firestore  # look-up, read, write
    single_sync = (
        org_read
        + settings.task_budget_s  # no new page is started after it
        + alleaves_call  # the pages in flight
        + http_call  # the look-up
        + firestore  # the write
    )
    summary = 2 * org_read + firestore + http_call  # the notifier's org, the summary, Discord
    plan = (
        org_read
        + settings.plan_budget_s  # no new page is started after it
        + max(alleaves_call, http_call, profile_block)  # the reads in flight
        + firestore  # the run registered as running
    )
    return Deadlines(
        http_attempt_s=attempt,
        http_call_s=http_call,
        alleaves_call_s=alleaves_call,
        firestore_call_s=firestore,
        profile_block_s=profile_block,
        chunk_task_s=chunk,
        retried_customer_task_s=retried_customer,
        single_sync_task_s=single_sync,
        summary_task_s=summary,
        plan_s=plan,
        heartbeat_s=settings.heartbeat_s,
        redispatch_s=settings.redispatch_s,
        lock_ttl_s=float(settings.run_lock_ttl_s),
        visibility_timeout_s=float(settings.visibility_timeout_s),
        stall_s=settings.run_stall_s,
    )


class DeadlinesOutOfOrder(ValueError):
    """Settings whose deadlines do not hold together; the message lists every problem."""


def check_deadlines(settings: Settings) -> Deadlines:
    """The deadlines of ``settings``; DeadlinesOutOfOrder when they are out of order."""
    result = deadlines(settings)
    problems = result.problems()
    if problems:
        raise DeadlinesOutOfOrder("deadlines out of order: " + "; ".join(problems))
    return result


def check_at_worker_start(settings: Settings, log: logging.Logger) -> Deadlines:
    """The start-up check: deadlines out of order stop the worker (``SystemExit``, which
    Celery's signal dispatch does not swallow), or with ``LOYALTY_DEADLINE_CHECK=warn`` are
    logged as an error and the worker starts anyway."""
    try:
        return check_deadlines(settings)
    except DeadlinesOutOfOrder as exc:
        if settings.deadline_check == "enforce":
            raise SystemExit(f"loyalty worker not started: {exc}") from exc
        log.error("%s (LOYALTY_DEADLINE_CHECK=warn: starting anyway)", exc)
        return deadlines(settings)
