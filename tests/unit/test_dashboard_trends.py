"""The overview's trends over fake run summaries: which runs count, the 90-day cut, their order,
the rate's arithmetic, the charts' geometry and text alternatives, and the empty state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty_worker.domain.run import RunSummaryDocument
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.dashboard.charts import line_chart, percent, stacked_chart, thousands
from loyalty_worker.services.dashboard.trends import (
    TREND_DAYS,
    TREND_LIMIT,
    trend_charts,
    trends,
)
from tests.fakes import InMemoryDashboardStore, QueryableProfileStore

NOW = datetime(2026, 12, 5, 18, 0, tzinfo=UTC)
ORG = OrgSettings.parse("org-1", {})


def summary(days_ago: float, **fields: Any) -> RunSummaryDocument:
    """A completed full run's summary, ``days_ago`` before NOW, with ``fields`` over it."""
    run: dict[str, Any] = {
        "orgId": "org-1",
        "status": "completed",
        "dryRun": False,
        "startedAt": (NOW - timedelta(days=days_ago)).timestamp(),
        "listed": 100,
        "synced": 30,
        "unchanged": 70,
        "failed": 0,
        "tiers": {"bronze": 60, "silver": 30, "gold": 10},
        "reconciliation": {"matched": 90, "alpine_higher": 6, "calculated_higher": 4},
        "liability": {"calculated": 12_345, "alpine": 13_000},
    }
    run.update(fields)
    return run  # type: ignore[return-value]


def store_with(runs: dict[str, RunSummaryDocument]) -> InMemoryDashboardStore:
    base = QueryableProfileStore()
    for run_id, run in runs.items():
        base.run_summaries[run_id] = dict(run)
    return InMemoryDashboardStore(base)


def test_only_completed_full_runs_count_one_point_each_oldest_first() -> None:
    store = store_with(
        {
            "newest": summary(1),
            "oldest": summary(30),
            "middle": summary(10),
            "dry": summary(2, dryRun=True),
            "partial": summary(3, partial=True, scope="first 10"),
            "incremental": summary(4, since="2026-12-01"),
            "failed": summary(5, status="failed"),
            "incomplete": summary(6, status="incomplete"),
            "running": summary(0.1, status="running"),
            "other-org": summary(7, orgId="org-2"),
        }
    )
    data = trends(ORG, store, now=NOW)
    assert [run.run_id for run in data.runs] == ["oldest", "middle", "newest"]
    assert data.enough


def test_runs_older_than_90_days_are_cut_and_the_read_is_bounded_by_date() -> None:
    store = store_with({"old": summary(TREND_DAYS + 0.5), "edge": summary(TREND_DAYS - 0.5)})
    store.base.run_summaries["recent"] = dict(summary(1))
    data = trends(ORG, store, now=NOW)
    assert [run.run_id for run in data.runs] == ["edge", "recent"]
    since, limit = store.runs_since[-1]
    assert since == (NOW - timedelta(days=TREND_DAYS)).timestamp()
    assert limit == TREND_LIMIT


def test_the_rate_is_discrepancies_over_the_customers_synced() -> None:
    store = store_with(
        {
            "a": summary(2, synced=10, unchanged=30, reconciliation={"alpine_higher": 3}),
            "b": summary(
                1,
                synced=0,
                unchanged=0,
                reconciliation={"alpine_higher": 0, "calculated_higher": 0},
            ),
            "c": summary(0.5),
        }
    )
    runs = trends(ORG, store, now=NOW).runs
    assert (runs[0].discrepancies, runs[0].customers_synced, runs[0].discrepancy_rate) == (
        3,
        40,
        0.075,
    )
    assert runs[1].discrepancy_rate == 0.0  # nothing synced: no division by zero
    assert (runs[2].discrepancies, runs[2].customers_synced, runs[2].discrepancy_rate) == (
        10,
        100,
        0.1,
    )


def test_liability_and_tiers_come_from_each_summary_in_the_orgs_zone() -> None:
    store = store_with(
        {
            "old-style": summary(3, liability=None, tiers={"bronze": 5, "retired": 2}),
            "new": summary(1, liability={"calculated": 1_234_567, "alpine": 7}),
        }
    )
    data = trends(ORG, store, now=NOW)
    old, new = data.runs
    assert old.liability_calculated is None and old.liability_alpine is None
    assert (new.liability_calculated, new.liability_alpine) == (1_234_567, 7)
    # The org's tiers by threshold, then a tier no longer configured.
    assert [tier.id for tier in data.tiers] == ["bronze", "silver", "gold", "platinum", "retired"]
    assert [tier.count for tier in old.tiers] == [5, 0, 0, 0, 2]
    assert [tier.count for tier in new.tiers] == [60, 30, 10, 0, 0]
    # 2026-12-04 18:00 UTC is 10:00 in Los Angeles.
    assert new.date == "2026-12-04"
    assert new.started == "2026-12-04 10:00 PST"
    charts = trend_charts(data)
    assert charts.liability is not None and len(charts.liability.lines[0].dots) == 1


def test_before_two_runs_there_is_no_chart() -> None:
    for runs in ({}, {"only": summary(1)}):
        data = trends(ORG, store_with(runs), now=NOW)
        assert not data.enough
        charts = trend_charts(data)
        assert charts.liability is None and charts.rate is None and charts.tiers is None


def test_the_charts_text_alternatives_summarise_every_series() -> None:
    store = store_with(
        {
            "a": summary(2, liability={"calculated": 1_000, "alpine": 2_500}),
            "b": summary(1, liability={"calculated": 12_345, "alpine": 13_000}),
        }
    )
    charts = trend_charts(trends(ORG, store, now=NOW))
    assert charts.liability is not None and charts.rate is not None and charts.tiers is not None
    assert charts.liability.summary == (
        "Points liability, 2 runs from 2026-12-03 to 2026-12-04: "
        "Calculated from orders 1,000 to 12,345; Alpine IQ 2,500 to 13,000."
    )
    assert charts.rate.summary.endswith("Discrepancy rate 10.0% to 10.0%.")
    assert "Bronze 60 to 60; Silver 30 to 30; Gold 10 to 10; Platinum 0 to 0" in (
        charts.tiers.summary
    )


def test_line_geometry_spans_the_plot_and_scales_to_the_largest_value() -> None:
    chart = line_chart("T", ["d1", "d2", "d3"], [("s", [0.0, 5.0, 10.0])], thousands)
    assert chart is not None
    (line,) = chart.lines
    xs = [x for x, _ in line.dots]
    ys = [y for _, y in line.dots]
    assert xs == sorted(xs) and xs[0] == chart.left and xs[-1] == chart.width - 12
    assert ys[0] == chart.bottom and ys[2] < ys[1] < ys[0]
    assert line.path.startswith(f"M{xs[0]},{ys[0]} L")
    assert [tick.text for tick in chart.ticks] == ["0", "5", "10"]
    assert line_chart("T", [], [], percent) is None


def test_stacked_columns_add_up_to_each_runs_total() -> None:
    chart = stacked_chart("T", ["d1", "d2"], [("a", [10.0, 30.0]), ("b", [30.0, 10.0])], thousands)
    assert chart is not None
    first = [s for s in chart.segments if s.title.startswith("d1")]
    second = [s for s in chart.segments if s.title.startswith("d2")]
    full = chart.bottom - first[-1].y
    assert abs((chart.bottom - second[-1].y) - full) < 0.2  # both total 40
    assert first[0].height < first[1].height  # 10 under 30
    assert first[0].title == "d1: a 10"
