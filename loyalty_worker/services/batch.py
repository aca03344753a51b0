"""A batch run from trigger to summary, independent of Celery.

``start_batch`` takes the org's lock, plans the run and hands each customer's work to
``enqueue``; every finished customer calls ``record_result``; the one that completes the run
gets True and triggers ``summarize_batch``, which writes the summary and sends one alert.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from loyalty_worker.errors import LoyaltyError, TransientError
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports import CustomerSource, LoyaltyLookup, Notifier, ProfileStore, RunLedger
from loyalty_worker.services.customer_inputs import CustomerWork
from loyalty_worker.services.memo import carry_over
from loyalty_worker.services.plan import RunPlan, plan_run
from loyalty_worker.services.results import SyncStatus
from loyalty_worker.services.summary import SummaryBuilder, summary_alert
from loyalty_worker.services.sync_customer import evaluate_customer

log = logging.getLogger(__name__)

# Results the plan settles are recorded this many at a time.
SETTLED_BATCH = 500


@dataclass(frozen=True)
class BatchOptions:
    history_start: date
    window_days: int
    parallelism: int
    lock_ttl_s: int
    chunk_size: int
    plan_attempts: int = 3
    # An incremental run re-reads orders created this many days before its ``since``: orders
    # change (complete, void, refund) for a while after they are created.
    overlap_days: int = 14


@dataclass(frozen=True)
class BatchStart:
    run_id: str
    started: bool
    listed: int = 0
    message: str = ""


def start_batch(
    *,
    org: OrgSettings,
    run_id: str,
    dry_run: bool,
    alleaves: CustomerSource,
    alpine: LoyaltyLookup,
    store: ProfileStore,
    ledger: RunLedger,
    options: BatchOptions,
    enqueue: Callable[[list[CustomerWork]], None],
    summarize: Callable[[str], None],
    today: date | None = None,
    since: date | None = None,
    phone_key: bytes | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchStart:
    """Plan the org's run and enqueue its customers in chunks; at most one run per org at a time.

    With ``since`` (incremental) only the orders created since then, less the overlap, are read,
    and customers the memo shows unchanged are carried over (``services.memo``). A customer
    whose inputs the plan holds in full (profile, Alpine IQ answer) and whose profile would not
    change is settled in the plan: its result is recorded, no task is sent. The rest go to the
    workers with their phone's ``phoneHash`` under ``phone_key``.

    A LoyaltyError while planning (bad credentials, Alleaves down) ends the run at once as
    ``failed``: its summary and its one alert say why.
    """
    org_id = org.org_id
    rules = org.rules()
    holder = ledger.acquire_lock(org_id, run_id, options.lock_ttl_s)
    if holder is not None:
        message = f"org {org_id} already has run {holder} in progress; no second batch started"
        log.warning(message)
        ledger.start(run_id, org_id, status="duplicate", error=message, runningRunId=holder)
        return BatchStart(holder, started=False, message=message)
    ledger.start(run_id, org_id, dryRun=int(dry_run), since=since.isoformat() if since else "full")
    try:
        plan = _plan_with_retries(
            lambda: plan_run(
                org_id,
                alleaves,
                alpine,
                store,
                history_start=options.history_start,
                # One day past today: an order placed this evening in the org's timezone is
                # already dated tomorrow in UTC.
                today=(today or date.today()) + timedelta(days=1),
                window_days=options.window_days,
                parallelism=options.parallelism,
                recent_since=since - timedelta(days=options.overlap_days) if since else None,
                carry_over=lambda plan: carry_over(
                    plan,
                    org_id=org_id,
                    run_id=run_id,
                    ledger=ledger,
                    rules=rules,
                    phone_key=phone_key,
                    dry_run=dry_run,
                    stamp=datetime.now(UTC).isoformat(),
                ),
                sleep=sleep,
            ),
            attempts=options.plan_attempts,
            sleep=sleep,
        )
    except LoyaltyError as exc:
        log.error("run %s: org %s could not start: %s", run_id, org_id, exc)
        ledger.update(run_id, error=f"{exc.reason}: {exc}", listed=0)
        summarize("failed")
        return BatchStart(run_id, started=False, message=str(exc))
    try:
        ledger.update(
            run_id,
            ordersSeen=plan.history.orders_seen,
            orderPages=plan.history.pages_fetched,
            ordersSince=plan.recent_since.isoformat() if plan.recent_since else "all",
        )
        now = time.time()
        if plan.malformed_customers:
            ledger.record(
                run_id,
                {
                    f"malformed:{record.record_id}": {
                        "success": False,
                        "status": "failed",
                        "orgId": org_id,
                        "customerId": record.record_id,
                        "reason": record.reason,
                        "detail": str(record),
                        "updatedAt": now,
                    }
                    for record in plan.malformed_customers
                },
            )
        # Registered as running in Firestore: the watchdog finds the run even if Redis loses it.
        store.write_run_summary(
            run_id,
            {
                "runId": run_id,
                "orgId": org_id,
                "status": "running",
                "startedAt": now,
                "listed": plan.listed,
                "dryRun": dry_run,
            },
        )
        if ledger.set_listed(run_id, plan.listed):
            summarize("completed")
        chunk: list[CustomerWork] = []
        settled: list[Mapping[str, Any]] = []
        sent = settled_count = 0
        for work in plan.work():
            work = work.with_phone_hash(phone_key)
            result = _settled(org, work, store=store, alpine=alpine, run_id=run_id, dry_run=dry_run)
            if result is not None:
                settled.append(result)
                settled_count += 1
                if len(settled) == SETTLED_BATCH:
                    _record(ledger, run_id, settled, summarize)
                    settled = []
                continue
            chunk.append(work)
            sent += 1
            if len(chunk) == options.chunk_size:
                enqueue(chunk)
                chunk = []
        if chunk:
            enqueue(chunk)
        if settled:
            _record(ledger, run_id, settled, summarize)
        log.info(
            "run %s: org %s: %d listed: %d carried over, %d settled in the plan, %d sent",
            run_id,
            org_id,
            plan.listed,
            len(plan.carried),
            settled_count,
            sent,
        )
    finally:
        plan.close()  # reads ahead no longer needed, if the loop stopped early
    return BatchStart(run_id, started=True, listed=plan.listed)


def _settled(
    org: OrgSettings,
    work: CustomerWork,
    *,
    store: ProfileStore,
    alpine: LoyaltyLookup,
    run_id: str,
    dry_run: bool,
) -> dict[str, Any] | None:
    """The result of a customer whose profile would not change, decided from the plan alone
    (no call is made: the plan holds the profile and Alpine IQ's answer); None when a task must
    sync it: a write to make, or a look-up."""
    if work.profile is None or "loyaltyStatus" not in work.profile:
        return None  # a profile this worker never wrote: there is a write to make
    if work.alpine is None or work.malformed_orders:
        return None  # an answer only a look-up gives, or a failure for the task to report
    evaluation = evaluate_customer(
        org, work, store=store, alpine=alpine, run_id=run_id, dry_run=dry_run
    )
    if evaluation.result.status is not SyncStatus.UNCHANGED:
        return None
    return evaluation.result.to_dict()


def _record(
    ledger: RunLedger,
    run_id: str,
    results: Sequence[Mapping[str, Any]],
    summarize: Callable[[str], None],
) -> None:
    if record_results(ledger, run_id, results):
        summarize("completed")


def _plan_with_retries(
    plan: Callable[[], RunPlan], *, attempts: int, sleep: Callable[[float], None]
) -> RunPlan:
    """Planning reads thousands of pages: a burst of 429s or 5xx beyond the clients' own
    retries starts it again after a pause, a bounded number of times."""
    attempt = 1
    while True:
        try:
            return plan()
        except TransientError as exc:
            if attempt >= attempts:
                raise
            log.warning("planning attempt %d failed (%s); trying again", attempt, exc)
            sleep(2.0**attempt)
            attempt += 1


def record_results(ledger: RunLedger, run_id: str, results: Sequence[Mapping[str, Any]]) -> bool:
    """Store customers' results (keyed by customer) and keep them in the org's memo; True when
    they complete the run."""
    ledger.remember(results)
    return ledger.record(run_id, {str(result["customerId"]): result for result in results})


def summarize_batch(
    *,
    run_id: str,
    ledger: RunLedger,
    store: ProfileStore,
    notifier: Notifier,
    status: str = "completed",
) -> dict[str, Any]:
    """Aggregate the run's results, store the summary, send one alert, release the org's lock.

    An alert that cannot be delivered does not fail the run: the summary records it. A summary
    tried again (Firestore did not take it) does not alert again.
    """
    meta = ledger.meta(run_id)
    org_id = meta["orgId"]
    builder = SummaryBuilder(
        run_id=run_id,
        org_id=org_id,
        listed=int(meta.get("listed", 0)),
        dry_run=meta.get("dryRun") == "1",
    )
    builder.add_all(ledger.iter_results(run_id))
    summary = builder.build(
        started_at=float(meta["startedAt"]), finished_at=time.time(), status=status
    )
    summary["ordersSince"] = meta.get("ordersSince", "all")
    if "listedAt" in meta:
        # Time spent reading Alleaves, Alpine IQ and Firestore before the first task.
        summary["planS"] = round(float(meta["listedAt"]) - float(meta["startedAt"]), 3)
    if "error" in meta:
        summary["error"] = meta["error"]
    summary["alert"] = _alert_once(run_id, meta, ledger, notifier, summary)
    store.write_run_summary(run_id, summary)
    if status == "completed" and not summary["dryRun"] and summary["failed"] == 0:
        # The next incremental run reads the orders created since this run started.
        ledger.mark_success(org_id, float(meta["startedAt"]))
    ledger.finish(run_id, status, summary)
    ledger.release_lock(org_id, run_id)
    return summary


def _alert_once(
    run_id: str,
    meta: Mapping[str, str],
    ledger: RunLedger,
    notifier: Notifier,
    summary: Mapping[str, Any],
) -> dict[str, Any]:
    """Send the run's one alert; what became of it, kept in the run's record so that a retried
    summary reports the first attempt's alert instead of posting a second one."""
    if "alert" in meta:
        kept: dict[str, Any] = json.loads(meta["alert"])
        return kept
    try:
        notifier.send(summary_alert(summary))
        alert: dict[str, Any] = {"sent": True}
    except LoyaltyError as exc:
        log.warning("run %s: alert not delivered: %s", run_id, exc)
        alert = {"sent": False, "error": str(exc)}
    ledger.update(run_id, alert=json.dumps(alert))
    return alert
