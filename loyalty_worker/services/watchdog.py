"""Finalise runs whose summary never came: a lost callback, a dead worker, a restarted Redis.

Every run is registered in Firestore (``loyalty_sync_runs/{runId}``, status ``running``) when it
starts, so a run is found even when Redis lost its state. A run that has made no progress for
``stall_s`` is closed as ``incomplete`` with whatever results it has, and alerts once: nothing
goes silently missing, and a re-run of the org completes it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from loyalty_worker.errors import LoyaltyError
from loyalty_worker.ports import Notifier, ProfileStore, RunLedger
from loyalty_worker.services.batch import FINAL, summarize_batch
from loyalty_worker.services.summary import SummaryBuilder, summary_alert

log = logging.getLogger(__name__)

PROGRESS_STAMPS = ("startedAt", "listedAt", "lastResultAt")


def finalize_overdue_runs(
    *,
    store: ProfileStore,
    ledger: RunLedger,
    notifier_for: Callable[[str], Notifier],
    now: float,
    stall_s: float,
) -> list[str]:
    """Close every stalled run as ``incomplete``; returns their run ids."""
    closed = []
    for run in store.list_running_runs():
        run_id = run["runId"]
        meta = ledger.meta(run_id)
        if meta.get("status") in FINAL and "summary" in meta:
            # Finished, but its summary never reached Firestore: write it now.
            store.write_run_summary(run_id, json.loads(meta["summary"]))
            continue
        last = max((float(meta[k]) for k in PROGRESS_STAMPS if k in meta), default=None)
        if last is None:
            last = float(run.get("startedAt", now))
        if now - last < stall_s:
            continue
        if "orgId" not in meta:  # gone from Redis (a late result may have left a bare record)
            _close_lost_run(run, store=store, notifier=notifier_for(run["orgId"]), now=now)
        elif ledger.claim_summary(run_id) or (
            # Its last result fired the summary, which never came (a lost message): close it.
            meta.get("fired") == "1" and ledger.claim_summary(run_id, flag="watchdogFired")
        ):
            log.warning(
                "run %s: no progress for %.0f s: closing it as incomplete", run_id, now - last
            )
            summarize_batch(
                run_id=run_id,
                ledger=ledger,
                store=store,
                notifier=notifier_for(run["orgId"]),
                status="incomplete",
            )
        else:
            continue
        closed.append(run_id)
    return closed


def _close_lost_run(
    run: dict[str, Any], *, store: ProfileStore, notifier: Notifier, now: float
) -> None:
    """Redis no longer knows the run (restarted without persistence): report what is known."""
    run_id = run["runId"]
    log.error("run %s: its state is gone from Redis: closing it as incomplete", run_id)
    builder = SummaryBuilder(
        run_id=run_id,
        org_id=run["orgId"],
        listed=int(run.get("listed", 0)),
        dry_run=bool(run.get("dryRun", False)),
    )
    summary = builder.build(
        started_at=float(run.get("startedAt", now)), finished_at=now, status="incomplete"
    )
    summary["error"] = (
        "the run's state was lost from Redis (restarted?); profiles already written stand, "
        "the rest are unknown: run the org again"
    )
    try:
        notifier.send(summary_alert(summary))
        summary["alert"] = {"sent": True}
    except LoyaltyError as exc:
        summary["alert"] = {"sent": False, "error": str(exc)}
    store.write_run_summary(run_id, summary)
