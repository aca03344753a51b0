"""A run as people follow it: live progress while Redis has it, its stored summary after."""

from __future__ import annotations

from dataclasses import dataclass

from loyalty_worker.domain.run import RunStatus, RunSummaryDocument, run_kind
from loyalty_worker.ports.run import RunProgressSource, RunSummaries


@dataclass(frozen=True, slots=True)
class RunView:
    """One run's state, whichever source it came from."""

    run_id: str
    org_id: str
    status: RunStatus
    listed: int | None
    done: int
    failed: int
    error: str | None
    summary: RunSummaryDocument | None
    kind: str = "Full"  # ``domain.run.run_kind``: "Full", "Incremental", "Dry run (...)"...


def find_run(run_id: str, *, live: RunProgressSource, stored: RunSummaries) -> RunView | None:
    """The run's live progress, else its stored summary; None for a run neither knows."""
    progress = live.progress(run_id)
    if progress.org_id is not None:
        return RunView(
            run_id=run_id,
            org_id=progress.org_id,
            status=RunStatus.of(progress.status),
            listed=progress.listed,
            done=progress.done,
            failed=progress.failed,
            error=progress.error,
            summary=progress.summary,
            kind=progress.kind,
        )
    summary = stored.get_run_summary(run_id)
    org_id = summary.get("orgId") if summary else None
    if summary is None or not isinstance(org_id, str):
        return None
    return RunView(
        run_id=run_id,
        org_id=org_id,
        status=RunStatus.of(summary.get("status", "completed")),
        listed=summary.get("listed"),
        done=int(summary.get("listed") or 0),
        failed=int(summary.get("failed") or 0),
        error=summary.get("error"),
        summary=summary,
        kind=run_kind(summary),
    )
