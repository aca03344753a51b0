"""What the dashboard's buttons start: a run of the org (full, incremental or dry), one
customer's Sync Now, and what became of that sync."""

from __future__ import annotations

import logging

from pydantic import Field

from loyalty_worker import log_context
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.ports.run import RunRecords
from loyalty_worker.ports.triggers import Enqueuer, RunTriggers, TaskOutcomes
from loyalty_worker.services.dashboard.activity import Doer
from loyalty_worker.services.dashboard.page import Adjustment, NotFound, PageModel
from loyalty_worker.services.run.triggers import enqueue_org_run

# Each kind of run: (dry run, orders since).
RUN_KINDS = {"full": (False, None), "incremental": (False, "last"), "dry": (True, None)}
# Celery's states of a task that will not change again.
TASK_ENDED = ("SUCCESS", "FAILURE", "REVOKED")

log = logging.getLogger(__name__)


def trigger_run(
    org_id: str,
    kind: str,
    *,
    runs: RunTriggers,
    records: RunRecords,
    enqueuer: Enqueuer,
    new_run_id: str,
    doer: Doer,
) -> tuple[str, bool]:
    """Start a run of ``kind`` (full, incremental, dry) the one way every run starts, or, while
    the org has one going, name that one instead: (run id, whether it was started now). A run
    started is recorded as the doer's activity."""
    dry_run, since = RUN_KINDS[kind]
    going = runs.running_run(org_id)
    log_context.bind(run_id=going or new_run_id)  # the request's lines name the run it shows
    if going is not None:
        log.info("%s: org %s: %s run asked while %s goes", doer.by, org_id, kind, going)
        return going, False
    runs.remember_run(org_id, new_run_id)
    enqueue_org_run(
        org_id, new_run_id, dry_run=dry_run, since=since, runs=records, enqueuer=enqueuer
    )
    log.info("%s: org %s: %s run %s started", doer.by, org_id, kind, new_run_id)
    doer.record(org_id, f"run.{kind}", new_run_id)
    return new_run_id, True


def sync_now(
    org_id: str,
    customer_id: int,
    *,
    store: DashboardStore,
    enqueuer: Enqueuer,
    tasks: TaskOutcomes,
    doer: Doer,
) -> str:
    """Enqueue one customer's sync; its task id, claimed for the org (only its people see the
    result), recorded as the doer's activity. NotFound for a customer without a profile."""
    if store.get_profile(org_id, customer_id) is None:
        raise NotFound("customer", customer_id)
    task_id = enqueuer.sync_customer(org_id, customer_id)
    tasks.claim(task_id, org_id)
    log.info("%s: org %s customer %d: sync now (task %s)", doer.by, org_id, customer_id, task_id)
    doer.record(org_id, "sync_now", f"customer {customer_id}")
    return task_id


class SyncShown(PageModel):
    """What a Sync Now shows once its task ends (the phone and inputs left out); a part the
    result lacks is left out of the answer."""

    state: str = Field(description="Celery's state: PENDING, STARTED, SUCCESS, FAILURE...")
    done: bool
    sync: str | None = Field(default=None, description="synced | unchanged | failed")
    reason: str | None = None
    points: int | None = None
    tier: str | None = None
    tier_source: str | None = None
    loyalty_status: str | None = None
    discrepancy: int | None = None
    adjustment: Adjustment | None = None
    error: str | None = None


def sync_result(org_id: str, task_id: str, tasks: TaskOutcomes) -> SyncShown:
    """What a Sync Now shows; NotFound for a task the org's people did not start, whatever its
    state (only the fields its result holds are set: the answer leaves the others out)."""
    if tasks.owner(task_id) != org_id:
        raise NotFound("task", task_id)
    outcome = tasks.outcome(task_id)
    report = outcome.report if outcome is not None else None
    if report is not None and report.org_id not in (None, org_id):
        raise NotFound("task", task_id)
    state = outcome.state if outcome is not None else "PENDING"
    parts: dict[str, str | int | bool | Adjustment | None] = {
        "state": state,
        "done": state in TASK_ENDED,
    }
    if state == "FAILURE":
        parts["error"] = "the sync failed"
    elif report is not None and state == "SUCCESS":
        parts["sync"] = report.status
        if report.reason:
            parts["reason"] = report.reason
        if report.displayed is not None:
            balance = report.displayed
            parts.update(points=balance.points, tier=balance.tier, tier_source=balance.tier_source)
        if report.reconciliation is not None:
            rec = report.reconciliation
            parts.update(loyalty_status=rec.status, discrepancy=rec.discrepancy)
        if report.adjustment is not None:
            parts["adjustment"] = Adjustment.model_validate(report.adjustment)
    return SyncShown.model_validate(parts)
