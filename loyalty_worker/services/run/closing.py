"""Closing a run: every customer's result recorded (keyed by customer, kept in the org's memo)
and, once the last one is in, the run summarised: its summary written, its one alert sent (a dry
run, a preview, sends none), the org's lock released."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from loyalty_worker import log_context
from loyalty_worker.domain.results import SyncResult
from loyalty_worker.domain.run import (
    AlertOutcome,
    PlanReport,
    RunRecord,
    RunStatus,
    RunSummaryDocument,
)
from loyalty_worker.errors import LoyaltyError, TransientError
from loyalty_worker.ports.notify import Notifier
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.run import RunLedger
from loyalty_worker.services.run.summary import MAX_LISTED, SummaryBuilder, summary_alert
from loyalty_worker.services.sync.retries import Attempt

log = logging.getLogger(__name__)


def record_results(ledger: RunLedger, run_id: str, results: Sequence[SyncResult]) -> bool:
    """Store customers' results (keyed by customer) and keep them in the org's memo; True when
    they complete the run."""
    ledger.remember(results)
    return ledger.record(run_id, {str(result.customer_id): result for result in results})


def close_run(
    run_id: str,
    *,
    status: RunStatus,
    ledger: RunLedger,
    store: ProfileStore,
    notifier_for: Callable[[str], Notifier],
    attempt: Attempt,
) -> RunSummaryDocument:
    """Summarise the run (``summarize_batch``), unless the watchdog closed it while this call
    was late; a transient error is tried again (``RetryLater``)."""
    record = ledger.run_record(run_id)
    log_context.bind(org_id=record.org_id)  # the summary task's lines name the run's org too
    if record.status.closed and record.summary is not None:
        return record.summary
    try:
        notifier = notifier_for(_opened(record)[0])
        return summarize_batch(
            run_id=run_id, ledger=ledger, store=store, notifier=notifier, status=status
        )
    except TransientError as exc:
        attempt.retry_or_fail(exc)
        raise


def summarize_batch(
    *,
    run_id: str,
    ledger: RunLedger,
    store: ProfileStore,
    notifier: Notifier,
    status: RunStatus = RunStatus.COMPLETED,
    missing_ids: Sequence[int] = (),
) -> RunSummaryDocument:
    """Aggregate the run's results, store the summary, send one alert (none for a dry run),
    release the org's lock.

    An alert that cannot be delivered does not fail the run: the summary records it. A summary
    tried again (Firestore did not take it) does not alert again. ``missing_ids``: customers
    whose work was lost for good (an incomplete run), named in the summary.
    """
    record = ledger.run_record(run_id)
    # The watchdog closes several runs in one task: each run's lines carry that run.
    with log_context.bound(run_id=run_id, org_id=_opened(record)[0]):
        return _summarized(run_id, record, ledger, store, notifier, status, missing_ids)


def _summarized(
    run_id: str,
    record: RunRecord,
    ledger: RunLedger,
    store: ProfileStore,
    notifier: Notifier,
    status: RunStatus,
    missing_ids: Sequence[int],
) -> RunSummaryDocument:
    org_id, started_at = _opened(record)
    builder = SummaryBuilder(
        run_id=run_id, org_id=org_id, listed=record.listed or 0, dry_run=record.dry_run
    )
    builder.add_all(ledger.iter_results(run_id))
    summary = builder.build(started_at=started_at, finished_at=time.time(), status=status)
    plan = record.plan or NOTHING_READ
    summary["ordersSince"] = plan.orders_since
    # Malformed orders no customer's failure reports (no readable customer id): counted here.
    summary["unownedMalformedOrders"] = plan.unowned_malformed
    summary["unownedMalformedOrderIds"] = list(plan.unowned_listed)
    if record.listed_at is not None:
        # The (last) planning's own time: reading Alleaves, Alpine IQ and Firestore before the
        # first task, not the wait of a run planned again after its planner or Redis was lost.
        planned_from = record.plan_started_at
        if planned_from is None:
            planned_from = started_at
        summary["planS"] = round(record.listed_at - planned_from, 3)
    if record.error is not None:
        summary["error"] = record.error
    # Work the watchdog re-sent (a lost planner, lost chunks), and customers still missing.
    summary["recoveries"] = record.recoveries
    summary["recoveryLog"] = list(record.recovery_log)
    summary["planAttempts"] = record.plan_attempts or 1
    if missing_ids:
        summary["missingCustomerIds"] = sorted(missing_ids)[:MAX_LISTED]
    if record.selection is not None:
        # A partial run: the dashboard and the metrics skip it when they look for the last
        # full run.
        summary["partial"] = True
        summary["scope"] = record.scope or ""
        summary["selection"] = record.selection
    summary["since"] = record.since or "full"
    if not record.dry_run:  # a dry run is a preview: its page shows it, nobody is alerted
        summary["alert"] = _alert_once(record, ledger, notifier, summary)
    store.write_run_summary(run_id, summary)
    full = record.selection is None
    if full and status is RunStatus.COMPLETED and not record.dry_run and summary["failed"] == 0:
        # The next incremental run reads the orders created since this run started; a partial
        # run checked only some customers, so it is not a start to read since.
        ledger.mark_success(org_id, started_at)
    ledger.finish(run_id, status, summary)
    ledger.release_lock(org_id, run_id)
    log.info(
        "run %s: %s: %d listed, %d synced, %d unchanged, %d failed",
        run_id,
        status.value,
        summary["listed"],
        summary["synced"],
        summary["unchanged"],
        summary["failed"],
        extra={"outcome": status.value},
    )
    return summary


# What a summary reports of a run whose plan recorded nothing (it failed to start).
NOTHING_READ = PlanReport(
    orders_seen=0, order_pages=0, orders_since="all", unowned_malformed=0, unowned_listed=()
)


def _opened(record: RunRecord) -> tuple[str, float]:
    """The org and the start of a run the run state holds; LookupError for one it does not."""
    if record.org_id is None or record.started_at is None:
        raise LookupError(f"run {record.run_id} is not in the run state")
    return record.org_id, record.started_at


def _alert_once(
    record: RunRecord, ledger: RunLedger, notifier: Notifier, summary: RunSummaryDocument
) -> AlertOutcome:
    """Send the run's one alert; what became of it, kept in the run's record so that a retried
    summary reports the first attempt's alert instead of posting a second one."""
    if record.alert is not None:
        return record.alert
    alert: AlertOutcome
    try:
        notifier.send(summary_alert(summary))
        alert = {"sent": True}
    except LoyaltyError as exc:
        log.warning("run %s: alert not delivered: %s", record.run_id, exc)
        alert = {"sent": False, "error": str(exc)}
    ledger.keep_alert(record.run_id, alert)
    return alert
