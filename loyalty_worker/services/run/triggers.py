"""The one way an org's run starts, whoever asks for it: Beat's nightly and incremental ticks,
the API's sync trigger, the dashboard's run buttons, ``loyalty-worker sync`` and the demo.

The run is readable before a worker takes it (``queued``), and a run the broker refused reads
``failed`` with the reason, so no caller is left with a run id nobody knows.
"""

from __future__ import annotations

from loyalty_worker import log_context
from loyalty_worker.domain.run import RunStatus
from loyalty_worker.domain.selection import CustomerSelection, selection_fields
from loyalty_worker.errors import TransientError
from loyalty_worker.ports.run import RunRecords
from loyalty_worker.ports.triggers import Enqueuer


def enqueue_org_run(
    org_id: str,
    run_id: str,
    *,
    dry_run: bool = False,
    since: str | None = None,
    expires_s: float | None = None,
    selection: CustomerSelection | None = None,
    runs: RunRecords,
    enqueuer: Enqueuer,
) -> None:
    """Record the run as ``queued``, then enqueue its planner; a failed enqueue leaves it
    ``failed``.

    Recorded first, so that the run reads "queued" rather than unknown until a worker starts it
    (which overwrites this record). ``since``: ``"last"`` for an incremental run; ``expires_s``:
    how long its message may wait for a worker (a tick's run is not started late);
    ``selection``: a partial run of those customers only (never the org's last full run).
    TransientError when the broker is unavailable. What is logged meanwhile carries the run
    (a tick starts several: the run is bound for this call only).
    """
    partial = {} if selection is None else selection_fields(selection)
    with log_context.bound(org_id=org_id, run_id=run_id):
        # ``since`` as asked ("last": incremental), so that a queued run reads as its kind.
        asked = {"since": since or "full"}
        runs.start(
            run_id,
            org_id,
            status=RunStatus.QUEUED.value,
            dryRun=int(dry_run),
            **asked,
            **partial,
        )
        try:
            enqueuer.sync_org(
                org_id,
                run_id=run_id,
                dry_run=dry_run,
                since=since,
                expires_s=expires_s,
                selection=None if selection is None else selection.encode(),
            )
        except TransientError as exc:
            runs.update(run_id, status=RunStatus.FAILED.value, error=f"{exc.reason}: {exc}")
            raise
