"""Opening a run: the org's lock taken and the run registered, in Redis and in Firestore,
before anything is read (so that the watchdog finds it whatever happens next); or the run
ended at once as ``failed`` when it cannot start, with its summary and its one alert."""

from __future__ import annotations

import logging
import time

from loyalty_worker.domain.run import RunStatus, RunSummaryDocument
from loyalty_worker.domain.selection import selection_fields
from loyalty_worker.errors import LoyaltyError
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.run import RunLedger
from loyalty_worker.services.run.context import BatchStart, RunDispatch, RunRequest

log = logging.getLogger(__name__)

# The recovery log's entry for each time the watchdog planned a run Redis had lost.
LOST_FROM_REDIS = "the run's state was lost from Redis: planned again"


def open_run(
    request: RunRequest, *, ledger: RunLedger, store: ProfileStore, lock_ttl_s: int
) -> BatchStart | None:
    """Take the org's run lock and register the run, in Redis and in Firestore (status
    ``running``, so that the watchdog finds it whatever happens next), before anything is
    read; the refusal when the run has ended, or when another run of the org holds the lock
    (a new run is recorded as its ``duplicate``).

    A run that is already registered (its planner redelivered or re-sent) keeps its record
    and re-takes its own lock."""
    org_id, run_id = request.org_id, request.run_id
    record = ledger.run_record(run_id)
    if record.status.ended:
        return BatchStart(run_id, started=False, message=f"run {run_id} has ended")
    # A planner claimed it before: a resumed run. Otherwise a new run (its record at most
    # ``queued`` by the API), or a bare record late results left after Redis lost the run.
    resumed = record.plan_attempts > 0
    holder = ledger.acquire_lock(org_id, run_id, lock_ttl_s)
    if holder is not None:
        message = f"org {org_id} already has run {holder} in progress; no second batch started"
        log.warning(message)
        if not resumed:
            ledger.start(run_id, org_id, status="duplicate", error=message, runningRunId=holder)
        return BatchStart(holder, started=False, message=message)
    if not resumed:
        started_at, recoveries = _lost_run_carried(store.get_run_summary(run_id))
        started_at = record_start(request, ledger, started_at=started_at, recoveries=recoveries)
        registration: RunSummaryDocument = {
            "runId": run_id,
            "orgId": org_id,
            "status": RunStatus.RUNNING.value,
            "startedAt": started_at,
            "dryRun": request.dry_run,
            "since": _since(request),
        }
        if request.selection is not None:
            registration["partial"] = True
            registration["scope"] = request.selection.scope
            registration["selection"] = request.selection.encode()
        store.write_run_summary(run_id, registration)
    return None


def record_start(
    request: RunRequest,
    ledger: RunLedger,
    *,
    started_at: float | None = None,
    recoveries: int = 0,
) -> float:
    """Open the run's record: dry or not, since when (``full``: a full run), its start (now,
    unless it is a run Redis lost, which keeps its own) and the recoveries already counted for
    it; returns the start."""
    started = time.time() if started_at is None else started_at
    logged = {f"recovery{n}": LOST_FROM_REDIS for n in range(1, recoveries + 1)}
    counted: dict[str, str | int] = {"recoveries": recoveries, **logged} if recoveries else {}
    if request.selection is not None:
        counted.update(selection_fields(request.selection))
    ledger.start(
        request.run_id,
        request.org_id,
        dryRun=int(request.dry_run),
        since=_since(request),
        startedAt=started,
        **counted,
    )
    return started


def _since(request: RunRequest) -> str:
    return request.since.isoformat() if request.since else "full"


def _lost_run_carried(registered: RunSummaryDocument | None) -> tuple[float | None, int]:
    """What a run Redis lost keeps when the watchdog plans it again (its Firestore record still
    ``running``): its start, and the recoveries counted there, so its summary reports them."""
    if registered is None or registered.get("status") != RunStatus.RUNNING:
        return None, 0
    started_at = registered.get("startedAt")
    if started_at is None:
        return None, 0
    return float(started_at), int(registered.get("recoveries", 0))


def fail_start(
    request: RunRequest, exc: LoyaltyError, *, ledger: RunLedger, dispatch: RunDispatch
) -> BatchStart:
    """End an opened run that could not start as ``failed``: its summary and its one alert
    carry the error."""
    log.error("run %s: org %s could not start: %s", request.run_id, request.org_id, exc)
    ledger.update(request.run_id, error=f"{exc.reason}: {exc}", listed=0)
    dispatch.summarize(RunStatus.FAILED.value)
    return BatchStart(request.run_id, started=False, message=str(exc))
