"""Follow a batch run from a terminal: a live progress bar, then the summary as a table."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from loyalty_worker.adapters.run_state import Progress, RunTracker
from loyalty_worker.domain.run import RunStatus


class RunNotPickedUp(Exception):
    """No worker took the run's trigger in time."""


def _bar(progress: Progress, width: int = 30) -> str:
    if progress.listed is None:
        return f"[{'.' * width}] {progress.status}…"
    total = max(progress.listed, 1)
    filled = int(width * min(progress.done, total) / total)
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {progress.done}/{progress.listed} customers"
        f", {progress.failed} failed"
    )


def watch_run(
    tracker: RunTracker,
    run_id: str,
    *,
    out: TextIO = sys.stderr,
    poll_s: float = 0.25,
    pickup_timeout_s: float = 30.0,
    timeout_s: float | None = None,
) -> Progress:
    """Poll the run until it ends; the last progress (with the summary) is returned.

    Raises RunNotPickedUp when no worker started the run within ``pickup_timeout_s``, and
    TimeoutError after ``timeout_s``.
    """
    started = time.monotonic()
    live = out.isatty()
    last_line = ""
    while True:
        progress = tracker.progress(run_id)
        status = RunStatus.of(progress.status)
        elapsed = time.monotonic() - started
        # Recorded ``queued`` by its trigger, or not at all: either way no worker has it yet.
        if status in (RunStatus.QUEUED, RunStatus.UNKNOWN) and elapsed > pickup_timeout_s:
            raise RunNotPickedUp(
                f"no worker picked up run {run_id} within {pickup_timeout_s:.0f} s: "
                "is a worker running (celery -A loyalty_worker.celery_app worker)?"
            )
        line = f"{_bar(progress)} ({elapsed:.1f} s)"
        if live:
            out.write("\r" + line.ljust(len(last_line)))
            out.flush()
        elif line.split(" (")[0] != last_line.split(" (")[0]:
            out.write(line + "\n")
        last_line = line
        if status.ended:
            if live:
                out.write("\n")
            return progress
        if timeout_s is not None and elapsed > timeout_s:
            raise TimeoutError(f"run {run_id} did not finish within {timeout_s:.0f} s")
        time.sleep(poll_s)


def _rows(title: str, rows: Mapping[str, str | int]) -> list[str]:
    if not rows:
        return []
    width = max(len(str(k)) for k in rows)
    return [f"  {title}"] + [f"    {str(k).ljust(width)}  {v}" for k, v in rows.items()]


def format_summary(summary: Mapping[str, Any]) -> str:
    """The run summary as a plain-text table."""
    head = {
        "run": summary["runId"],
        "org": summary["orgId"],
        "status": summary["status"]
        + (" (dry run)" if summary.get("dryRun") else "")
        + (f" (partial: {summary.get('scope')})" if summary.get("partial") else ""),
        "duration": f"{summary['durationS']} s",
        "listed": summary["listed"],
        "synced": summary["synced"],
        "unchanged": f"{summary['unchanged']}"
        + (f" ({summary['carried']} carried over)" if summary.get("carried") else ""),
        "failed": summary["failed"],
        "orders processed": summary["ordersProcessed"],
        "discrepancies": f"{summary['discrepancies']} ({summary['discrepancyRate']:.1%} of "
        f"{summary['withAlpineAccount']} Alpine IQ accounts)",
        "tier changes": summary.get("tierChangeCount", 0),
        "alert": "sent" if summary.get("alert", {}).get("sent") else "NOT sent",
    }
    lines = ["Loyalty sync summary", *_rows("run", head)]
    lines += _rows("tiers", dict(sorted(summary["tiers"].items())))
    lines += _rows("reconciliation", dict(sorted(summary["reconciliation"].items())))
    lines += _rows("failed by reason", summary["failedByReason"])
    largest = {
        f"{d['phone'] or 'no phone'} #{d['customerId']}": f"calculated {d['calculated']}, "
        f"Alpine IQ {d['alpine']} ({d['discrepancy']:+d})"
        for d in summary["largestDiscrepancies"][:10]
    }
    lines += _rows("largest discrepancies", largest)
    if summary.get("error"):
        lines.append(f"  error: {summary['error']}")
    return "\n".join(lines)
