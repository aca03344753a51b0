"""The org's trends over its runs of the last 90 days, for the overview and its JSON twin: points
liability of both sources, the discrepancy rate and customers by tier, one point per run.

Only completed full runs count (not partial, not dry, not incremental, not failed or
incomplete): each one counted and summed every customer the org has, so their points compare.
Everything comes from the runs' summary documents (``RunSummaryDocument``: ``liability``,
``reconciliation``, ``tiers``, ``synced`` and ``unchanged``), read newest first by their start
in one ordered query (``orgId`` equal, ``startedAt`` from 90 days back; the composite index
``orgId`` ascending, ``startedAt`` descending), at most ``TREND_LIMIT`` of them.

The discrepancy rate here is the customers whose balances differ over the threshold
(``alpine_higher`` and ``calculated_higher``) over the customers the run synced (``synced``
plus ``unchanged``: every customer it reconciled), so that customers without an Alpine IQ
account count in the whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import Field

from loyalty_worker.domain.run import RunStatus, RunSummaryDocument
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.services.dashboard.charts import (
    Chart,
    line_chart,
    percent,
    stacked_chart,
    thousands,
)
from loyalty_worker.services.dashboard.formatting import local_time
from loyalty_worker.services.dashboard.night import is_full_run
from loyalty_worker.services.dashboard.page import PageModel

TREND_DAYS = 90
TREND_LIMIT = 200
MIN_RUNS = 2  # a trend needs two points
DISCREPANT = ("alpine_higher", "calculated_higher")
# What the trends read of each summary (not its lists of failures, discrepancies, changes).
FIELDS = (
    "status",
    "dryRun",
    "partial",
    "since",
    "startedAt",
    "synced",
    "unchanged",
    "tiers",
    "reconciliation",
    "liability",
)


class TierColumn(PageModel):
    id: str
    name: str


class TierPoint(PageModel):
    id: str
    name: str
    count: int


class TrendRun(PageModel):
    """One completed full run of the trends."""

    run_id: str | None
    started: str | None = Field(description="When it started, in the org's time zone.")
    date: str = Field(description="The day it started, in the org's time zone (YYYY-MM-DD).")
    liability_calculated: int | None = Field(
        description="Points calculated from orders, summed over the run's customers (null: "
        "a summary from before runs summed them)."
    )
    liability_alpine: int | None = Field(
        description="Alpine IQ balances, summed over the run's customers (null: as above)."
    )
    discrepancies: int = Field(description="Customers alpine_higher or calculated_higher.")
    customers_synced: int = Field(description="Customers the run reconciled (synced+unchanged).")
    discrepancy_rate: float = Field(description="discrepancies / customersSynced (0 without).")
    tiers: list[TierPoint] = Field(description="Customers per tier, the org's tiers in order.")


class Trends(PageModel):
    """The org's completed full runs of the last 90 days, oldest first."""

    org_id: str
    timezone: str
    days: int = Field(description="How far back the trends read, in days.")
    tiers: list[TierColumn] = Field(description="The tiers every run's counts list, in order.")
    runs: list[TrendRun]
    enough: bool = Field(description="Two runs or more: the charts are drawn.")


@dataclass(frozen=True, slots=True)
class TrendCharts:
    """The overview's three trend charts (None: not enough runs)."""

    liability: Chart | None
    rate: Chart | None
    tiers: Chart | None


def counts(run: RunSummaryDocument) -> bool:
    """A completed full run whose summary counted its customers by tier and status."""
    return (
        RunStatus.of(run.get("status")) is RunStatus.COMPLETED
        and is_full_run(run)
        and run.get("since", "full") == "full"  # an incremental run read recent orders only
        and isinstance(run.get("tiers"), dict)
        and isinstance(run.get("reconciliation"), dict)
    )


def _liability(run: RunSummaryDocument, source: str) -> int | None:
    liability = run.get("liability")
    if not isinstance(liability, dict):
        return None
    value = liability.get(source)
    return int(value) if isinstance(value, int | float) else None


def tier_columns(org: OrgSettings, runs: list[RunSummaryDocument]) -> list[tuple[str, str]]:
    """The tiers the trends count, as (id, name): the org's by threshold, then any other id a
    run counted (a tier since removed), by id."""
    ordered = sorted(org.tiers, key=lambda tier: tier.threshold)
    columns = [(tier.id, tier.name or tier.id) for tier in ordered]
    known = {tier_id for tier_id, _ in columns}
    others = {str(tier) for run in runs for tier in (run.get("tiers") or {})} - known
    return columns + [(tier_id, tier_id) for tier_id in sorted(others)]


def trend_run(run: RunSummaryDocument, columns: list[tuple[str, str]], tz: ZoneInfo) -> TrendRun:
    """One run's point of every trend."""
    statuses = run.get("reconciliation") or {}
    by_tier = run.get("tiers") or {}
    discrepancies = sum(int(statuses.get(status) or 0) for status in DISCREPANT)
    synced = int(run.get("synced") or 0) + int(run.get("unchanged") or 0)
    started = float(run.get("startedAt") or 0.0)
    return TrendRun(
        run_id=run.get("runId"),
        started=local_time(started, tz),
        date=datetime.fromtimestamp(started, UTC).astimezone(tz).date().isoformat(),
        liability_calculated=_liability(run, "calculated"),
        liability_alpine=_liability(run, "alpine"),
        discrepancies=discrepancies,
        customers_synced=synced,
        discrepancy_rate=round(discrepancies / synced, 4) if synced else 0.0,
        tiers=[
            TierPoint(id=tier_id, name=name, count=int(by_tier.get(tier_id, 0)))
            for tier_id, name in columns
        ],
    )


def trends(org: OrgSettings, store: DashboardStore, *, now: datetime) -> Trends:
    """The org's completed full runs of the last ``TREND_DAYS`` days, oldest first."""
    tz = ZoneInfo(org.timezone)
    since = (now - timedelta(days=TREND_DAYS)).timestamp()
    runs = store.list_org_runs_since(org.org_id, since, limit=TREND_LIMIT, fields=FIELDS)
    kept = sorted(
        (run for run in runs if counts(run) and float(run.get("startedAt") or 0.0) >= since),
        key=lambda run: float(run.get("startedAt") or 0.0),
    )
    columns = tier_columns(org, kept)
    points = [trend_run(run, columns, tz) for run in kept]
    return Trends(
        org_id=org.org_id,
        timezone=org.timezone,
        days=TREND_DAYS,
        tiers=[TierColumn(id=tier_id, name=name) for tier_id, name in columns],
        runs=points,
        enough=len(points) >= MIN_RUNS,
    )


def trend_charts(data: Trends) -> TrendCharts:
    """The three charts of the trends; none before ``MIN_RUNS`` runs."""
    if not data.enough:
        return TrendCharts(liability=None, rate=None, tiers=None)
    runs = data.runs
    summed = [run for run in runs if run.liability_calculated is not None]
    liability = line_chart(
        "Points liability",
        [run.date for run in summed],
        [
            ("Calculated from orders", [float(run.liability_calculated or 0) for run in summed]),
            ("Alpine IQ", [float(run.liability_alpine or 0) for run in summed]),
        ],
        thousands,
    )
    labels = [run.date for run in runs]
    rate = line_chart(
        "Discrepancy rate",
        labels,
        [("Discrepancy rate", [run.discrepancy_rate for run in runs])],
        percent,
    )
    tiers = stacked_chart(
        "Customers by tier",
        labels,
        [
            (column.name, [float(run.tiers[index].count) for run in runs])
            for index, column in enumerate(data.tiers)
        ],
        thousands,
    )
    return TrendCharts(liability=liability, rate=rate, tiers=tiers)
