"""Start an org's run on request (the API's sync trigger), readable before a worker takes it."""

from __future__ import annotations

from loyalty_worker.errors import TransientError
from loyalty_worker.ports.run import RunRecords
from loyalty_worker.ports.triggers import Enqueuer


def enqueue_org_run(
    org_id: str, run_id: str, *, dry_run: bool, runs: RunRecords, enqueuer: Enqueuer
) -> None:
    """Record the run as ``queued``, then enqueue it; a failed enqueue leaves it ``failed``.

    Recorded first, so that the run reads "queued" rather than unknown until a worker starts it
    (which overwrites this record). TransientError when the broker is unavailable.
    """
    runs.start(run_id, org_id, status="queued", dryRun=int(dry_run))
    try:
        enqueuer.sync_org(org_id, run_id=run_id, dry_run=dry_run)
    except TransientError as exc:
        runs.update(run_id, status="failed", error=f"{exc.reason}: {exc}")
        raise
