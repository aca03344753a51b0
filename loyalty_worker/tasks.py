"""Thin Celery tasks: JSON arguments in, one service call, a service's ``RetryLater`` becomes a
Celery retry (``_retried``, the one place).

Messages carry ids and references: a customer's work goes with its phone masked, the phone its
task must look up kept beside it (``services.run.phones``). Every message this module publishes
names its arguments for display (``argsrepr``/``kwargsrepr``, what Flower shows), and a retry
keeps them.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import partial

from celery import Task

from loyalty_worker import names
from loyalty_worker.adapters.publisher import TaskPublisher
from loyalty_worker.bootstrap import container
from loyalty_worker.celery_app import app
from loyalty_worker.domain.results import SyncResultDocument
from loyalty_worker.domain.run import RunStatus, RunSummaryDocument
from loyalty_worker.names import new_run_id
from loyalty_worker.ports.run import ChunkRef, WorkPayload
from loyalty_worker.services.dashboard.retention import SweptDocument, sweep_expired
from loyalty_worker.services.run.closing import close_run
from loyalty_worker.services.run.context import BatchStartAnswer, RunDispatch
from loyalty_worker.services.run.fair import ChunkTurns
from loyalty_worker.services.run.history_slices import HistorySlice
from loyalty_worker.services.run.jobs import Job, sync_alone, sync_run_chunk
from loyalty_worker.services.run.nightly import start_nightly_runs
from loyalty_worker.services.run.phones import hand_over
from loyalty_worker.services.run.planning import read_run_orders
from loyalty_worker.services.run.start import Asked, start_run
from loyalty_worker.services.run.triggers import enqueue_org_run
from loyalty_worker.services.run.watchdog import Recovery, watch_runs
from loyalty_worker.services.sync.inputs import CustomerWork
from loyalty_worker.services.sync.retries import Attempt, RetryLater

log = logging.getLogger(__name__)

# How long an org's nightly start marker is kept: past any window, any clock change.
NIGHTLY_MARK_TTL_S = 3 * 24 * 3600
SUMMARY_BACKOFF_CAP_S = 30


@contextmanager
def _retried(task: Task) -> Iterator[None]:
    """The one place a service's ``RetryLater`` becomes this task's Celery retry."""
    try:
        yield
    except RetryLater as later:
        request = task.request
        raise task.retry(
            exc=later.error,
            countdown=later.countdown,
            # Celery would show the retry's arguments in full: keep the names it was sent with.
            argsrepr=getattr(request, "argsrepr", None),
            kwargsrepr=getattr(request, "kwargsrepr", None),
        ) from later.error


def _job(task: Task) -> Job:
    """What a customer's job runs with in this task: the process's ports and kept phones, the
    task's try, and the summary sent for a run the job completes."""
    c = container()
    attempt = Attempt(task.request.retries, c.settings.sync_max_retries)
    return Job(c.run_ports(), c.run_phones, attempt, close_run=_summarize)


@app.task(name=names.SYNC_ORG, soft_time_limit=3000, time_limit=3300)
def sync_org(
    org_id: str,
    *,
    run_id: str | None = None,
    dry_run: bool = False,
    since: str | None = None,
    selection: str | None = None,
) -> BatchStartAnswer:
    """Fan out an org's batch in chunks of customers.

    ``since``: an ISO date or ``"last"`` for an incremental run that reads only the orders
    created since then (less an overlap); ``"last"`` with no earlier success runs in full.
    ``selection``: a partial run of only those customers (``domain.selection``: ids, never
    phones).
    Acknowledged late: a planner sent again with its ``run_id`` (redelivered, or re-sent by
    the watchdog) continues that run.
    """
    c = container()
    run_id = run_id or new_run_id(org_id)
    planner = uuid.uuid4().hex  # this execution's: a copy of the message is another planner
    with c.heartbeat.beating(run_id, org_id, planner=planner):
        started = start_run(
            org_id,
            run_id,
            Asked(dry_run=dry_run, since=since, selection=selection),
            last_success=c.tracker.last_success,
            ports=c.run_ports(),
            dispatch=_run_dispatch(org_id, run_id, dry_run),
            planner=planner,
        )
    return started.to_dict()


@app.task(name=names.READ_ORDERS)
def read_orders(org_id: str, run_id: str, start: str, end: str, index: int, count: int) -> bool:
    """Read slice ``index`` of ``count`` of a run's order history for its planner
    (``services.run.history_slices``); whether this worker read it (False: another reader has it,
    or the planner will)."""
    c = container()
    part = HistorySlice(
        org_id, run_id, date.fromisoformat(start), date.fromisoformat(end), index, count
    )
    with c.heartbeat.beating(run_id, org_id):
        return read_run_orders(part, c.run_ports())


@app.task(name=names.SYNC_CUSTOMER, bind=True, max_retries=None)
def sync_customer(
    self: Task,
    org_id: str,
    customer_id: int | str,
    *,
    run_id: str | None = None,
    dry_run: bool = False,
    work: WorkPayload | None = None,
) -> SyncResultDocument:
    """Sync one customer; also the public entry point (``send_task`` with org and customer)."""
    c = container()
    if run_id is not None:  # a run's customer sent alone left the batch queue: a chunk may follow
        _turns().release_quietly()
    with _retried(self), c.heartbeat.beating(run_id, org_id):
        result = sync_alone(
            org_id, customer_id, run_id=run_id, dry_run=dry_run, payload=work, job=_job(self)
        )
    return result.to_dict()


@app.task(name=names.SYNC_CHUNK, bind=True, max_retries=None)
def sync_chunk(
    self: Task,
    org_id: str,
    run_id: str,
    works: list[WorkPayload],
    *,
    dry_run: bool = False,
    chunk: str | None = None,
) -> dict[str, int]:
    """Sync a batch run's chunk of customers, their changed profiles written in one batch.

    A customer whose Alpine IQ or Firestore read hits a transient error continues as a
    ``loyalty.sync_customer`` of its own (with its own retries), so the chunk never waits on it.
    """
    c = container()
    turns = _turns()
    turns.release_quietly()  # this chunk left the batch queue: the next in turn takes its place
    try:
        with _retried(self), c.heartbeat.beating(run_id, org_id):
            return sync_run_chunk(
                org_id,
                run_id,
                works,
                dry_run=dry_run,
                job=_job(self),
                retry_alone=partial(_retry_alone, org_id, run_id, dry_run),
                chunk=chunk,
            )
    finally:
        # Again as it ends: its customers sent alone may have filled the queue when it started.
        turns.release_quietly()


@app.task(name=names.SUMMARIZE_RUN, bind=True, max_retries=5)
def summarize_run(self: Task, run_id: str, *, status: str = "completed") -> RunSummaryDocument:
    """Aggregate a run's results into its summary and send the run's one alert."""
    c = container()
    with _retried(self):
        summary = close_run(
            run_id,
            status=RunStatus(status),
            ledger=c.tracker,
            store=c.store,
            notifier_for=c.notifier_for,
            attempt=Attempt(self.request.retries, None, cap_s=SUMMARY_BACKOFF_CAP_S),
        )
    c.run_phones.forget(run_id)  # the run is closed: none of its tasks needs a phone now
    return summary


@app.task(name=names.NIGHTLY_TICK, acks_late=False)
def nightly_tick() -> list[str]:
    """Start each enabled org's nightly run once, in its own timezone's night (Beat calls this
    every few minutes; ``services.run.nightly`` decides which orgs are due)."""
    c = container()
    return start_nightly_runs(
        store=c.store,
        now=datetime.now(UTC),
        hour=c.settings.nightly_hour,
        window_h=c.settings.nightly_window_h,
        mark=partial(c.tracker.mark_nightly, ttl_s=NIGHTLY_MARK_TTL_S),
        start=_start_nightly,
    )


@app.task(name=names.INCREMENTAL_TICK, acks_late=False)
def incremental_tick() -> list[str]:
    """Start an incremental run of every enabled org (Beat, when LOYALTY_INCREMENTAL_EVERY_MIN
    is set); an org whose run is still going starts nothing (its run lock)."""
    orgs = container().store.list_org_ids()
    for org_id in orgs:
        _start_run(org_id, since="last", expires_s=INCREMENTAL_EXPIRES_S)
    return orgs


@app.task(name=names.WATCHDOG, acks_late=False)
def watchdog() -> dict[str, list[str]]:
    """Send idle runs' lost work again; close the ones that cannot go on (Beat, every
    LOYALTY_REDISPATCH_S / 2; ``services.run.watchdog``)."""
    c = container()
    _turns().release_quietly()  # whatever a lost releaser left waiting goes on
    return watch_runs(
        store=c.store,
        ledger=c.tracker,
        notifier_for=c.notifier_for,
        recovery=_recovery(),
        now=time.time(),
        stall_s=c.settings.run_stall_s,
    ).to_dict()


@app.task(name=names.SWEEP_AUDIT, acks_late=False)
def sweep_audit() -> SweptDocument:
    """Delete the review audit entries, export records and activity records older than the
    retention (LOYALTY_AUDIT_RETENTION_DAYS; Beat, daily; ``services.dashboard.retention``)."""
    c = container()
    return sweep_expired(
        c.dashboard_store,
        c.contact_store,
        c.activity_log,
        now=datetime.now(UTC),
        retention=c.settings.audit_retention,
    ).to_dict()


# What the services hand on, published as tasks (built at import: it only wraps the app).
publisher = TaskPublisher(app)
# How long a tick's run may wait for a worker: a run started that late is not the tick's.
NIGHTLY_EXPIRES_S = 3600
INCREMENTAL_EXPIRES_S = 600


def _recovery() -> Recovery:
    """How the watchdog sends lost work again, with the settings' delays and attempts."""
    c = container()
    return Recovery(
        replan=_replan,
        resend=publisher.sync_chunk,
        queued=c.queued_messages,
        idle_s=c.settings.redispatch_s,
        attempts=c.settings.recovery_attempts,
        lock_ttl_s=c.settings.run_lock_ttl_s,
    )


def _run_dispatch(org_id: str, run_id: str, dry_run: bool) -> RunDispatch:
    return RunDispatch(
        enqueue=partial(_enqueue_chunk, org_id, run_id, dry_run),
        summarize=partial(_summarize, run_id),
        read_orders=_send_orders_slice,
    )


def _send_orders_slice(part: HistorySlice) -> None:
    # Past the plan's budget its planner has given up: a late copy must not read for nobody.
    publisher.read_orders(
        part.org_id,
        part.run_id,
        part.start,
        part.end,
        part.index,
        part.count,
        expires_s=container().settings.plan_budget_s,
    )


def _enqueue_chunk(org_id: str, run_id: str, dry_run: bool, works: list[CustomerWork]) -> None:
    # Kept until its results are in: the chunk the watchdog sends again should this be lost.
    # It goes to the batch queue when its turn comes, in turn with the other runs' chunks.
    c = container()
    payloads = hand_over(run_id, works, phones=c.run_phones)
    key = str(works[0].customer.customer_id)
    c.tracker.keep_chunk(run_id, key, payloads)
    chunk = ChunkRef(org_id, run_id, dry_run, key)
    _turns().offer(chunk, weight=c.org(org_id).settings.weight)


def _turns() -> ChunkTurns:
    """The runs' chunks taking turns for the batch queue (``services.run.fair``)."""
    c = container()
    return ChunkTurns(
        c.fair_share, c.tracker, send=publisher.sync_chunk, depth=c.settings.batch_queue_depth
    )


def _replan(
    org_id: str, run_id: str, dry_run: bool, since: str | None, selection: str | None
) -> None:
    publisher.sync_org(org_id, run_id=run_id, dry_run=dry_run, since=since, selection=selection)


def _retry_alone(org_id: str, run_id: str, dry_run: bool, work: CustomerWork) -> None:
    # The run kept this customer's phone when its chunk was sent: the payload is phone-less.
    publisher.sync_run_customer(
        org_id, run_id, work.customer.customer_id, work.to_payload(), dry_run=dry_run
    )


def _summarize(run_id: str, status: str = "completed") -> None:
    publisher.summarize_run(run_id, status)


def _start_nightly(org_id: str) -> None:
    _start_run(org_id, expires_s=NIGHTLY_EXPIRES_S)


def _start_run(org_id: str, *, since: str | None = None, expires_s: float) -> None:
    """A tick's run, started as every run is (``enqueue_org_run``): it reads ``queued`` until a
    worker takes it. The run id travels in the message: a redelivered planner continues it."""
    enqueue_org_run(
        org_id,
        new_run_id(org_id),
        since=since,
        expires_s=expires_s,
        runs=container().tracker,
        enqueuer=publisher,
    )
