"""Thin Celery tasks: JSON arguments in, one service call, a service's ``RetryLater`` becomes a
Celery retry (``_retried``, the one place).

Messages carry ids and references: a customer's work goes with its phone masked, the phone its
task must look up kept beside it (``services.run_phones``). Every message this module publishes
names its arguments for display (``argsrepr``/``kwargsrepr``, what Flower shows), and a retry
keeps them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

from celery import Task

from loyalty_worker import names
from loyalty_worker.bootstrap import container
from loyalty_worker.celery_app import app
from loyalty_worker.names import new_run_id
from loyalty_worker.services.batch import RunDispatch, close_run
from loyalty_worker.services.customer_inputs import CustomerWork
from loyalty_worker.services.customer_jobs import sync_alone, sync_run_chunk
from loyalty_worker.services.nightly import start_nightly_runs
from loyalty_worker.services.retries import Attempt, RetryLater
from loyalty_worker.services.run_phones import hand_over
from loyalty_worker.services.run_start import start_run
from loyalty_worker.services.watchdog import finalize_overdue_runs

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


@app.task(name=names.SYNC_ORG, acks_late=False, soft_time_limit=3000, time_limit=3300)
def sync_org(
    org_id: str,
    *,
    run_id: str | None = None,
    dry_run: bool = False,
    since: str | None = None,
) -> dict[str, Any]:
    """Fan out an org's batch in chunks of customers.

    ``since``: an ISO date or ``"last"`` for an incremental run that reads only the orders
    created since then (less an overlap); ``"last"`` with no earlier success runs in full.
    """
    c = container()
    run_id = run_id or new_run_id(org_id)
    started = start_run(
        org_id,
        run_id,
        dry_run=dry_run,
        since=since,
        last_success=c.tracker.last_success,
        ports=c.run_ports(),
        dispatch=_run_dispatch(org_id, run_id, dry_run),
    )
    return started.to_dict()


@app.task(name=names.SYNC_CUSTOMER, bind=True, max_retries=None)
def sync_customer(
    self: Task,
    org_id: str,
    customer_id: int | str,
    *,
    run_id: str | None = None,
    dry_run: bool = False,
    work: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Sync one customer; also the public entry point (``send_task`` with org and customer)."""
    c = container()
    with _retried(self):
        return sync_alone(
            org_id,
            customer_id,
            run_id=run_id,
            dry_run=dry_run,
            payload=work,
            ports=c.run_ports(),
            phones=c.run_phones,
            attempt=Attempt(self.request.retries, c.settings.sync_max_retries),
            close_run=_summarize,
        )


@app.task(name=names.SYNC_CHUNK, bind=True, max_retries=None)
def sync_chunk(
    self: Task,
    org_id: str,
    run_id: str,
    works: list[dict[str, Any]],
    *,
    dry_run: bool = False,
) -> dict[str, int]:
    """Sync a batch run's chunk of customers, their changed profiles written in one batch.

    A customer whose Alpine IQ or Firestore read hits a transient error continues as a
    ``loyalty.sync_customer`` of its own (with its own retries), so the chunk never waits on it.
    """
    c = container()
    with _retried(self):
        return sync_run_chunk(
            org_id,
            run_id,
            works,
            dry_run=dry_run,
            ports=c.run_ports(),
            phones=c.run_phones,
            attempt=Attempt(self.request.retries, c.settings.sync_max_retries),
            retry_alone=partial(_retry_alone, org_id, run_id, dry_run),
            close_run=_summarize,
        )


@app.task(name=names.SUMMARIZE_RUN, bind=True, max_retries=5)
def summarize_run(self: Task, run_id: str, *, status: str = "completed") -> dict[str, Any]:
    """Aggregate a run's results into its summary and send the run's one alert."""
    c = container()
    with _retried(self):
        summary = close_run(
            run_id,
            status=status,
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
    every few minutes; ``services.nightly`` decides which orgs are due)."""
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
        sync_org.apply_async((org_id,), {"since": "last"}, expires=600, **_shown((org_id,)))
    return orgs


@app.task(name=names.WATCHDOG, acks_late=False)
def watchdog() -> list[str]:
    """Close runs that made no progress for LOYALTY_RUN_STALL_S as ``incomplete`` (Beat)."""
    c = container()
    closed = finalize_overdue_runs(
        store=c.store,
        ledger=c.tracker,
        notifier_for=lambda org_id: c.org(org_id).notifier,
        now=time.time(),
        stall_s=c.settings.run_stall_s,
    )
    for run_id in closed:
        log.warning("watchdog: run %s closed as incomplete", run_id)
    return closed


# What the services hand on, published as tasks.


def _run_dispatch(org_id: str, run_id: str, dry_run: bool) -> RunDispatch:
    return RunDispatch(
        enqueue=partial(_enqueue_chunk, org_id, run_id, dry_run),
        summarize=partial(_summarize, run_id),
    )


def _shown(args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> dict[str, str]:
    """A message's ``argsrepr``/``kwargsrepr``: how Flower and the worker's log show it."""
    return {"argsrepr": repr(args), "kwargsrepr": repr(kwargs or {})}


def _enqueue_chunk(org_id: str, run_id: str, dry_run: bool, works: list[CustomerWork]) -> None:
    payloads = hand_over(run_id, works, phones=container().run_phones)
    kwargs = {"dry_run": dry_run}
    sync_chunk.apply_async(
        (org_id, run_id, payloads),
        kwargs,
        ignore_result=True,
        **_shown((org_id, run_id, f"<{len(works)} customers>"), kwargs),
    )


def _retry_alone(org_id: str, run_id: str, dry_run: bool, work: CustomerWork) -> None:
    # The run kept this customer's phone when its chunk was sent: the payload is phone-less.
    customer_id = work.customer.customer_id
    kwargs = {"run_id": run_id, "dry_run": dry_run}
    sync_customer.apply_async(
        (org_id, customer_id),
        {**kwargs, "work": work.to_payload()},
        countdown=1,
        ignore_result=True,
        **_shown((org_id, customer_id), {**kwargs, "work": f"<customer {customer_id}>"}),
    )


def _summarize(run_id: str, status: str = "completed") -> None:
    summarize_run.apply_async(
        (run_id,), {"status": status}, **_shown((run_id,), {"status": status})
    )


def _start_nightly(org_id: str) -> None:
    sync_org.apply_async((org_id,), expires=3600, **_shown((org_id,)))
