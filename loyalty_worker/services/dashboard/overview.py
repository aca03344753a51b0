"""The org at a glance: customers by tier and status, points liability of both sources, the
last runs, the discrepancy rate and failures over the last 30 runs, the next nightly run.

The counts by tier and status and the liability are those of the org's last completed run (its
summary counts and sums every customer it listed), so the page reads no profile; before any run
they are aggregation queries, sent side by side on the app's executor (``reads``): the page
waits for the slowest one rather than for their sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, Future
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pydantic import Field

from loyalty_worker.domain.models import ReconciliationStatus
from loyalty_worker.domain.run import RunStatus, RunSummaryDocument, run_kind
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.services.dashboard.formatting import local_time, next_nightly, stamp
from loyalty_worker.services.dashboard.night import NightBanner, is_full_run, night_banner
from loyalty_worker.services.dashboard.page import PageModel

RECENT_RUNS = 30
LISTED_RUNS = 10
STATUSES = tuple(status.value for status in ReconciliationStatus)


class TierCount(PageModel):
    id: str
    name: str
    count: int


class StatusCount(PageModel):
    status: str
    count: int


class RunRow(PageModel):
    """One line of the runs table."""

    run_id: str | None
    # The status's value: the API's RunStatus model already names a schema RunStatus.
    status: str = Field(description="A run's status (domain.run.RunStatus).")
    dry_run: bool
    scope: str | None = Field(
        default=None, description='A partial run\'s customers ("first 10"); null: all of them.'
    )
    kind: str = Field(
        default="Full",
        description='What kind of run, in words: "Full", "Incremental", "Partial: first 10", '
        '"Dry run (preview: nothing written)" (then "· Incremental"... when not full).',
    )
    started: str | None = Field(description="When it started, in the org's time zone.")
    duration_s: float | None
    listed: int | None
    synced: int | None
    unchanged: int | None
    failed: int | None
    failed_by_reason: dict[str, int]
    alert_sent: bool | None
    discrepancy_rate: float | None


class TrendPoint(PageModel):
    """One finished run of the trend, oldest first."""

    run_id: str | None
    discrepancy_rate: float
    failed: int


class Liability(PageModel):
    """Points owed by each source, and the gap (Alpine IQ minus calculated)."""

    calculated: int
    alpine: int
    gap: int


class Overview(PageModel):
    """The org at a glance."""

    org_id: str
    org_name: str = Field(
        description="The business's name, as Alleaves' login gave it to the latest run that "
        "logged in (the org id before any)."
    )
    timezone: str
    customers: int
    tiers: list[TierCount]
    statuses: list[StatusCount]
    runs: list[RunRow] = Field(description="The last 10 runs, newest first.")
    trend: list[TrendPoint] = Field(description="The finished runs of the last 30, oldest first.")
    discrepancy_rate: float = Field(description="The trend's mean discrepancy rate.")
    failed_count: int = Field(description="Failed customers over the trend.")
    next_nightly_run: str
    liability: Liability
    counts_as_of: str | None = Field(
        description="The run whose summary the counts (and, when it summed them, the "
        "liability) come from; null: counted from the profiles now, before any run."
    )
    night: NightBanner | None = Field(
        default=None,
        description="Last night's run did not start or did not complete (null: it did, or it "
        "is not due yet): the banner's words for the dispensary's people.",
    )


def run_row(run: RunSummaryDocument, tz: ZoneInfo) -> RunRow:
    """One line of the runs table."""
    alert = run.get("alert")
    return RunRow(
        run_id=run.get("runId"),
        status=RunStatus.of(run.get("status", "running")).value,
        dry_run=bool(run.get("dryRun")),
        scope=str(run.get("scope") or "a selection") if run.get("partial") else None,
        kind=run_kind(run),
        started=local_time(run.get("startedAt"), tz),
        duration_s=run.get("durationS"),
        listed=run.get("listed"),
        synced=run.get("synced"),
        unchanged=run.get("unchanged"),
        failed=run.get("failed"),
        failed_by_reason=dict(run.get("failedByReason") or {}),
        alert_sent=alert.get("sent") if isinstance(alert, dict) else None,
        discrepancy_rate=run.get("discrepancyRate"),
    )


def counts_run(runs: Sequence[RunSummaryDocument]) -> RunSummaryDocument | None:
    """The latest completed full run (not a dry run, not a partial one) whose summary counts
    customers by tier and by status, among ``runs`` (newest first)."""
    for run in runs:
        if (
            RunStatus.of(run.get("status")) is RunStatus.COMPLETED
            and is_full_run(run)
            and isinstance(run.get("tiers"), dict)
            and isinstance(run.get("reconciliation"), dict)
        ):
            return run
    return None


def last_verified(org: OrgSettings, store: DashboardStore) -> str | None:
    """When the org's last completed full run started: the last time every profile was
    checked (a partial run checked only some)."""
    for run in store.list_org_runs(org.org_id, limit=RECENT_RUNS):
        if RunStatus.of(run.get("status")) is RunStatus.COMPLETED and is_full_run(run):
            return local_time(run.get("startedAt"), ZoneInfo(org.timezone))
    return None


def last_verified_at(org: OrgSettings, store: DashboardStore) -> datetime | None:
    """``last_verified`` as a moment (None: no completed full run, or no readable start)."""
    for run in store.list_org_runs(org.org_id, limit=RECENT_RUNS):
        if RunStatus.of(run.get("status")) is RunStatus.COMPLETED and is_full_run(run):
            started = run.get("startedAt")
            if isinstance(started, int | float) and not isinstance(started, bool):
                return datetime.fromtimestamp(float(started), UTC) if started else None
            return stamp(started)
    return None


def _done(value: int) -> Future[int]:
    future: Future[int] = Future()
    future.set_result(value)
    return future


def _counts(
    org: OrgSettings, store: DashboardStore, counted: RunSummaryDocument | None, reads: Executor
) -> tuple[list[TierCount], list[StatusCount], int]:
    """Customers by tier and by status, and in all: from the run that counted them, else by
    aggregation queries sent side by side."""
    ordered = sorted(org.tiers, key=lambda t: t.threshold)
    if counted is not None:
        by_tier = {str(k): int(v) for k, v in (counted.get("tiers") or {}).items()}
        by_status = {str(k): int(v) for k, v in (counted.get("reconciliation") or {}).items()}
        tier_counts = [_done(by_tier.get(t.id, 0)) for t in ordered]
        status_counts = [_done(by_status.get(s, 0)) for s in STATUSES]
        total = _done(sum(by_status.values()))
    else:
        org_id = org.org_id
        tier_counts = [reads.submit(store.count_profiles, org_id, {"tier": t.id}) for t in ordered]
        status_counts = [
            reads.submit(store.count_profiles, org_id, {"loyaltyStatus": s}) for s in STATUSES
        ]
        total = reads.submit(store.count_profiles, org_id)
    tiers = [
        TierCount(id=t.id, name=t.name or t.id, count=count.result())
        for t, count in zip(ordered, tier_counts, strict=True)
    ]
    statuses = [
        StatusCount(status=s, count=count.result())
        for s, count in zip(STATUSES, status_counts, strict=True)
    ]
    return tiers, statuses, total.result()


def _liability(
    org_id: str, store: DashboardStore, counted: RunSummaryDocument | None, reads: Executor
) -> tuple[Future[int], Future[int]]:
    """Points owed by each source: summed by the counting run (summaries since 2026-12), else
    by aggregation queries."""
    liability = None if counted is None else counted.get("liability")
    if isinstance(liability, dict):
        return _done(int(liability.get("calculated") or 0)), _done(
            int(liability.get("alpine") or 0)
        )
    return (
        reads.submit(store.sum_profiles, org_id, "pointsFromOrders"),
        reads.submit(store.sum_profiles, org_id, "pointsFromAlpine"),
    )


def overview(
    org: OrgSettings, store: DashboardStore, *, now: datetime, nightly_hour: int, reads: Executor
) -> Overview:
    """The org at a glance: tiers, statuses, last runs, the 30-run trend, liability."""
    tz = ZoneInfo(org.timezone)
    runs = store.list_org_runs(org.org_id, limit=RECENT_RUNS)
    counted = counts_run(runs)
    calculated_sum, alpine_sum = _liability(org.org_id, store, counted, reads)
    tiers, statuses, customers = _counts(org, store, counted, reads)
    calculated, alpine = calculated_sum.result(), alpine_sum.result()
    finished = [run for run in runs if RunStatus.of(run.get("status")).ended]
    trend = [
        TrendPoint(
            run_id=run.get("runId"),
            discrepancy_rate=float(run.get("discrepancyRate") or 0.0),
            failed=int(run.get("failed") or 0),
        )
        for run in reversed(finished)
    ]
    rates = [point.discrepancy_rate for point in trend]
    return Overview(
        org_id=org.org_id,
        org_name=next((run["orgName"] for run in runs if run.get("orgName")), org.org_id),
        timezone=org.timezone,
        customers=customers,
        tiers=tiers,
        statuses=statuses,
        runs=[run_row(run, tz) for run in runs[:LISTED_RUNS]],
        trend=trend,
        discrepancy_rate=round(sum(rates) / len(rates), 4) if rates else 0.0,
        failed_count=sum(point.failed for point in trend),
        next_nightly_run=next_nightly(now, tz, nightly_hour).strftime("%Y-%m-%d %H:%M %Z"),
        liability=Liability(calculated=calculated, alpine=alpine, gap=alpine - calculated),
        counts_as_of=None if counted is None else counted.get("runId"),
        night=night_banner(runs, now=now, tz=tz, nightly_hour=nightly_hour),
    )
