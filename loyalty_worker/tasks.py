"""Thin Celery tasks: JSON arguments in, one service call, transient errors become retries."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from celery import Task

from loyalty_worker import names
from loyalty_worker.bootstrap import container
from loyalty_worker.celery_app import app
from loyalty_worker.errors import LoyaltyError, PermanentError, TransientError
from loyalty_worker.names import new_run_id
from loyalty_worker.services.batch import (
    BatchOptions,
    record_results,
    start_batch,
    summarize_batch,
)
from loyalty_worker.services.customer_inputs import CustomerWork
from loyalty_worker.services.lone_customer import find_customer_work
from loyalty_worker.services.results import SyncResult, SyncStatus
from loyalty_worker.services.sync_customer import sync_chunk as sync_many
from loyalty_worker.services.sync_customer import sync_customer as sync_one
from loyalty_worker.services.watchdog import FINAL, finalize_overdue_runs

log = logging.getLogger(__name__)


def _since(value: str | None, tracker_last: float | None) -> date | None:
    """``since`` as a day: an ISO date, ``"last"`` (the last fully successful run), or None."""
    if value is None:
        return None
    if value == "last":
        return None if tracker_last is None else datetime.fromtimestamp(tracker_last, UTC).date()
    return date.fromisoformat(value[:10])


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
    run_id = run_id or new_run_id(org_id)
    c = container()
    try:
        org = c.org(org_id)
    except LoyaltyError as exc:
        c.tracker.start(run_id, org_id, status="failed", error=f"{exc.reason}: {exc}")
        log.error("run %s: org %s: %s", run_id, org_id, exc)
        return {"runId": run_id, "started": False, "message": str(exc)}
    settings = c.settings

    def enqueue(works: list[CustomerWork]) -> None:
        sync_chunk.apply_async(
            (org_id, run_id, [work.to_payload() for work in works]),
            {"dry_run": dry_run},
            ignore_result=True,
        )

    def summarize(status: str) -> None:
        summarize_run.delay(run_id, status=status)

    started = start_batch(
        org=org.settings,
        run_id=run_id,
        dry_run=dry_run,
        alleaves=org.alleaves,
        alpine=org.alpine,
        store=c.store,
        ledger=c.tracker,
        options=BatchOptions(
            history_start=settings.order_history_start,
            window_days=settings.order_window_days,
            parallelism=settings.order_fetch_parallelism,
            lock_ttl_s=settings.run_lock_ttl_s,
            chunk_size=settings.sync_chunk_size,
            overlap_days=settings.incremental_overlap_days,
        ),
        enqueue=enqueue,
        summarize=summarize,
        since=_since(since, c.tracker.last_success(org_id)),
        phone_key=settings.phone_key,
    )
    outcome = "started" if started.started else "not started"
    log.info(
        "run %s: org %s: %s, %d listed",
        run_id,
        org_id,
        outcome,
        started.listed,
        extra={"run_id": run_id, "org_id": org_id, "outcome": outcome},
    )
    return {
        "runId": started.run_id,
        "started": started.started,
        "listed": started.listed,
        "message": started.message,
    }


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
    try:
        org = c.org(org_id)
        customer_work = (
            CustomerWork.from_payload(work)
            if work is not None
            else find_customer_work(
                org_id,
                int(customer_id),
                alleaves=org.alleaves,
                store=c.store,
                history_start=c.settings.order_history_start,
                today=date.today() + timedelta(days=1),
                window_days=c.settings.order_window_days,
                parallelism=c.settings.order_fetch_parallelism,
                overlap_days=c.settings.incremental_overlap_days,
            ).with_phone_hash(c.settings.phone_key)
        )
        result = sync_one(
            org.settings,
            customer_work,
            store=c.store,
            alpine=org.alpine,
            run_id=run_id,
            dry_run=dry_run,
        ).to_dict()
    except TransientError as exc:
        if self.request.retries < c.settings.sync_max_retries:
            countdown = min(2**self.request.retries, 60)
            raise self.retry(exc=exc, countdown=countdown) from exc
        result = _failed(org_id, customer_id, exc, dry_run)
    except PermanentError as exc:
        result = _failed(org_id, customer_id, exc, dry_run)
    log.info(
        "run %s: org %s: customer %s: %s%s",
        run_id,
        org_id,
        customer_id,
        result["status"],
        f" ({result['reason']})" if "reason" in result else "",
        extra={
            "run_id": run_id,
            "org_id": org_id,
            "customer_id": customer_id,
            "outcome": result.get("reason", result["status"]),
        },
    )
    if run_id is None:
        c.tracker.remember([result])
    elif record_results(c.tracker, run_id, [result]):
        summarize_run.delay(run_id)
    return result


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
    customer_works = [CustomerWork.from_payload(work) for work in works]
    try:
        org = c.org(org_id)
        outcome = sync_many(
            org.settings,
            customer_works,
            store=c.store,
            alpine=org.alpine,
            run_id=run_id,
            dry_run=dry_run,
        )
        results = [result.to_dict() for result in outcome.results]
    except TransientError as exc:
        if self.request.retries < c.settings.sync_max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from exc
        results = [_failed(org_id, w.customer.customer_id, exc, dry_run) for w in customer_works]
        outcome = None
    except PermanentError as exc:
        results = [_failed(org_id, w.customer.customer_id, exc, dry_run) for w in customer_works]
        outcome = None
    for work, _ in outcome.retry if outcome is not None else ():
        sync_customer.apply_async(
            (org_id, work.customer.customer_id),
            {"run_id": run_id, "dry_run": dry_run, "work": work.to_payload()},
            countdown=1,
            ignore_result=True,
        )
    counts = {"results": len(results), "retried": len(works) - len(results)}
    failed = sum(1 for result in results if not result["success"])
    log.info(
        "run %s: org %s: chunk of %d: %d done, %d failed, %d retried alone",
        run_id,
        org_id,
        len(works),
        len(results),
        failed,
        counts["retried"],
        extra={"run_id": run_id, "org_id": org_id, "outcome": f"{failed} failed"},
    )
    if results and record_results(c.tracker, run_id, results):
        summarize_run.delay(run_id)
    return counts


def _failed(
    org_id: str, customer_id: int | str, exc: LoyaltyError, dry_run: bool
) -> dict[str, Any]:
    return SyncResult(
        org_id,
        customer_id,
        SyncStatus.FAILED,
        datetime.now(UTC).isoformat(),
        reason=exc.reason,
        detail=str(exc),
        dry_run=dry_run,
    ).to_dict()


@app.task(name=names.SUMMARIZE_RUN, bind=True, max_retries=5)
def summarize_run(self: Task, run_id: str, *, status: str = "completed") -> dict[str, Any]:
    """Aggregate a run's results into its summary and send the run's one alert."""
    c = container()
    meta = c.tracker.meta(run_id)
    if meta.get("status") in FINAL and "summary" in meta:
        # Summarised already: the watchdog closed the run while this message was late.
        return dict(json.loads(meta["summary"]))
    org_id = meta["orgId"]
    try:
        notifier = c.org(org_id).notifier
        return summarize_batch(
            run_id=run_id, ledger=c.tracker, store=c.store, notifier=notifier, status=status
        )
    except TransientError as exc:
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 30)) from exc


@app.task(name=names.NIGHTLY_TICK, acks_late=False)
def nightly_tick() -> list[str]:
    """Start each enabled org's nightly run once, in its own timezone's night.

    Beat calls this every few minutes. An org whose local time is in its nightly window and that
    has not run that local day is started; the per-day marker in Redis (SET NX) makes a second
    Beat, or a late tick, start nothing more.
    """
    c = container()
    started = []
    hour = c.settings.nightly_hour
    for org_id in c.store.list_org_ids():
        try:
            tz = ZoneInfo(c.store.get_org_settings(org_id).timezone)
        except LoyaltyError as exc:
            log.error("nightly: org %s skipped: %s", org_id, exc)
            continue
        local = datetime.now(tz)
        if not hour <= local.hour < hour + c.settings.nightly_window_h:
            continue
        if c.tracker.mark_nightly(org_id, local.date(), ttl_s=3 * 24 * 3600):
            sync_org.apply_async((org_id,), expires=3600)
            started.append(org_id)
    return started


@app.task(name=names.INCREMENTAL_TICK, acks_late=False)
def incremental_tick() -> list[str]:
    """Start an incremental run of every enabled org (Beat, when LOYALTY_INCREMENTAL_EVERY_MIN
    is set); an org whose run is still going starts nothing (its run lock)."""
    orgs = container().store.list_org_ids()
    for org_id in orgs:
        sync_org.apply_async((org_id,), {"since": "last"}, expires=600)
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
