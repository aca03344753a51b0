"""Closing a run: every customer's result recorded (keyed by customer, kept in the org's memo)
and, once the last one is in, the run summarised: its summary written, its one alert sent, the
org's lock released."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from loyalty_worker.domain.results import SyncResult
from loyalty_worker.errors import LoyaltyError, TransientError
from loyalty_worker.ports.notify import Notifier
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.run import RunLedger
from loyalty_worker.services.run.opening import FINAL
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
    status: str,
    ledger: RunLedger,
    store: ProfileStore,
    notifier_for: Callable[[str], Notifier],
    attempt: Attempt,
) -> dict[str, Any]:
    """Summarise the run (``summarize_batch``), unless the watchdog closed it while this call
    was late; a transient error is tried again (``RetryLater``)."""
    meta = ledger.meta(run_id)
    if meta.get("status") in FINAL and "summary" in meta:
        return dict(json.loads(meta["summary"]))
    try:
        notifier = notifier_for(meta["orgId"])
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
    status: str = "completed",
    missing_ids: Sequence[int] = (),
) -> dict[str, Any]:
    """Aggregate the run's results, store the summary, send one alert, release the org's lock.

    An alert that cannot be delivered does not fail the run: the summary records it. A summary
    tried again (Firestore did not take it) does not alert again. ``missing_ids``: customers
    whose work was lost for good (an incomplete run), named in the summary.
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
    # Malformed orders no customer's failure reports (no readable customer id): counted here.
    summary["unownedMalformedOrders"] = int(meta.get("unownedMalformedOrders", 0))
    summary["unownedMalformedOrderIds"] = json.loads(meta.get("unownedMalformedOrderIds", "[]"))
    if "listedAt" in meta:
        # The (last) planning's own time: reading Alleaves, Alpine IQ and Firestore before the
        # first task, not the wait of a run planned again after its planner or Redis was lost.
        planned_from = float(meta.get("planStartedAt", meta["startedAt"]))
        summary["planS"] = round(float(meta["listedAt"]) - planned_from, 3)
    if "error" in meta:
        summary["error"] = meta["error"]
    # Work the watchdog re-sent (a lost planner, lost chunks), and customers still missing.
    recoveries = int(meta.get("recoveries", 0))
    summary["recoveries"] = recoveries
    summary["recoveryLog"] = [meta.get(f"recovery{n}", "") for n in range(1, recoveries + 1)]
    summary["planAttempts"] = int(meta.get("planAttempts", 1))
    if missing_ids:
        summary["missingCustomerIds"] = sorted(missing_ids)[:MAX_LISTED]
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
