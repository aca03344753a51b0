"""Whether last night's run happened, for the overview's banner: the dispensary's own people see
that their points and tiers were not brought up to date, and what to do about it.

A run alerts Discord when it ends; a night whose run never started posts nothing. The overview
therefore checks it: once the org's nightly start time (``LOYALTY_NIGHTLY_HOUR`` in the org's
time zone, as ``services.run.nightly`` reads it) has passed by ``GRACE``, a full run should have
started since. Partial runs (``loyalty-worker sync --limit``...) and dry runs do not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from loyalty_worker.domain.run import RunStatus, RunSummaryDocument
from loyalty_worker.services.dashboard.page import PageModel

# How long after the nightly start time a night without a started run is reported.
GRACE = timedelta(hours=1)
_NOT_COMPLETED = (RunStatus.INCOMPLETE, RunStatus.FAILED)


class NightBanner(PageModel):
    """The overview's banner when the night's run did not start or did not complete."""

    problem: Literal["not_started", "not_completed"]
    title: str
    message: str
    run_id: str | None = None


def last_night_start(now: datetime, tz: ZoneInfo, hour: int, grace: timedelta = GRACE) -> datetime:
    """The latest nightly start time (``hour``:00 in ``tz``, as a wall clock reads it) that
    ``now`` is past by ``grace`` or more."""
    today = now.astimezone(tz).date()
    for day in (today, today - timedelta(days=1), today - timedelta(days=2)):
        opens = datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)
        if opens + grace <= now:
            return opens
    raise AssertionError("a nightly start time lies within the last two days")  # pragma: no cover


def is_full_run(run: RunSummaryDocument) -> bool:
    """A run that counts as the org's run of every customer: not partial, not dry."""
    if run.get("partial") or run.get("dryRun"):
        return False
    return RunStatus.of(run.get("status")) is not RunStatus.DUPLICATE


def night_banner(
    runs: Sequence[RunSummaryDocument], *, now: datetime, tz: ZoneInfo, nightly_hour: int
) -> NightBanner | None:
    """The banner the overview shows (None: nothing to say), from the org's recent runs
    (newest first) at ``now``: no full run started since the last nightly start time, or the
    last full run ended ``incomplete`` or ``failed``."""
    opens = last_night_start(now, tz, nightly_hour)
    full = [run for run in runs if is_full_run(run)]
    since = [run for run in full if float(run.get("startedAt") or 0.0) >= opens.timestamp()]
    due = opens.astimezone(tz).strftime("%H:%M")
    if not since:
        return NightBanner(
            problem="not_started",
            title="Last night's loyalty update did not run",
            message=f"The nightly update of points and tiers was due at {due} ({tz.key}) and "
            "has not started, so the points and tiers your customers see may be out of date. "
            "Press “Full run” under “Start a run” below to update them now, and tell your "
            "loyalty system operator so that they can find out why it did not start.",
        )
    last = full[0]
    status = RunStatus.of(last.get("status"))
    if status not in _NOT_COMPLETED:
        return None
    failed = int(last.get("failed") or 0) + int(last.get("missing") or 0)
    left = f" {failed} customers were not updated." if failed else ""
    return NightBanner(
        problem="not_completed",
        title="The last loyalty update did not finish",
        message=f"The last update of points and tiers ended {status.value}.{left} Some points "
        "and tiers your customers see may be out of date. Press “Full run” under “Start a "
        "run” below to run it again; if it does not finish again, tell your loyalty system "
        "operator (the run's page says what went wrong).",
        run_id=last.get("runId"),
    )
