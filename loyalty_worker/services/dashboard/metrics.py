"""``GET /metrics``: the loyalty numbers per org, as Prometheus families (``prometheus_client``).

Read at scrape time from the same places the dashboard reads (aggregation counts, the latest run
summaries), so the API process keeps no counters of its own (the look-up timing aside) and every
API process answers alike. Alpine IQ and Alleaves errors show as the last run's failures by
reason, the way the workers record them; the workers' own metrics count every call.

"The last run" is the org's last finished *full* run: a partial run (``"partial": true``: a
``--limit``, ``--sample`` or ``--customers`` run), a dry run or an incremental one never is. The
dead man's switch reads two times per org: the end of its last completed full run (an org that
never completed one: when it was first seen, as the caller's ``first_seen`` tells; the API takes
the earlier of its oldest run's start and its own first scrape of the org), and the next nightly
start due after its last full run started (never ran: after it was first seen).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loyalty_worker.domain.run import RunStatus, RunSummaryDocument
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.services.dashboard.formatting import next_nightly
from loyalty_worker.services.dashboard.overview import RECENT_RUNS, STATUSES

_FAMILIES = {
    "loyalty_recent_runs": ("Runs of the org's last 30, by status.", ["org", "status"]),
    "loyalty_last_run_status": (
        "1 for the status of the org's last finished full run.",
        ["org", "status"],
    ),
    "loyalty_last_run_duration_seconds": ("Duration of the org's last finished run.", ["org"]),
    "loyalty_last_run_customers": (
        "Customers of the last finished run, by outcome.",
        ["org", "outcome"],
    ),
    "loyalty_last_run_failed": (
        "Failed customers of the last finished run, by reason.",
        ["org", "reason"],
    ),
    "loyalty_last_run_synced_ratio": (
        "(synced + unchanged) / listed of the last finished full run.",
        ["org"],
    ),
    "loyalty_last_run_discrepancy_rate": (
        "Share of Alpine IQ accounts over the discrepancy threshold in the last finished run.",
        ["org"],
    ),
    "loyalty_last_completed_run_end_timestamp_seconds": (
        "End of the org's last completed full run (never completed: when the org was first seen).",
        ["org"],
    ),
    "loyalty_next_run_due_timestamp_seconds": (
        "The first nightly start after the org's last full run started (never ran: after it was "
        "first seen).",
        ["org"],
    ),
    "loyalty_customers_by_tier": ("Profiles by tier.", ["org", "tier"]),
    "loyalty_customers_by_status": ("Profiles by reconciliation status.", ["org", "status"]),
}
_ENDED = ("completed", "incomplete", "failed")

Sample = tuple[str, list[str], float]


def is_full_run(run: RunSummaryDocument) -> bool:
    """A run that counts as the org's run: not partial, not a dry run, not incremental."""
    partial = run.get("partial") or run.get("dryRun")
    return not partial and run.get("since", "full") == "full"


def org_samples(
    org: OrgSettings,
    store: DashboardStore,
    *,
    nightly_hour: int,
    first_seen: Callable[[str, float | None], float],
) -> list[Sample]:
    """One org's samples: its recent runs, its last full run, the switch's times, customers;
    none for a disabled org (no run is due, no alert about it is wanted)."""
    if org.disabled:
        return []
    org_id = org.org_id
    runs = store.list_org_runs(org_id, limit=RECENT_RUNS)
    samples: list[Sample] = [
        ("loyalty_recent_runs", [org_id, status], count)
        for status, count in sorted(Counter(str(r.get("status", "running")) for r in runs).items())
    ]
    full = [run for run in runs if is_full_run(run)]
    last = next((r for r in full if RunStatus.of(r.get("status")).ended), None)
    if last is not None:
        samples += _last_run_samples(org_id, last)
    oldest_start = min((float(r["startedAt"]) for r in runs if "startedAt" in r), default=None)
    seen = first_seen(org_id, oldest_start)
    completed = next((r for r in full if r.get("status") == "completed"), None)
    ended_at = _ended_at(completed) if completed is not None else seen
    samples.append(("loyalty_last_completed_run_end_timestamp_seconds", [org_id], ended_at))
    started = next((float(r["startedAt"]) for r in full if "startedAt" in r), seen)
    due = next_nightly(datetime.fromtimestamp(started, UTC), ZoneInfo(org.timezone), nightly_hour)
    samples.append(("loyalty_next_run_due_timestamp_seconds", [org_id], due.timestamp()))
    for tier in org.tiers:
        count = store.count_profiles(org_id, {"tier": tier.id})
        samples.append(("loyalty_customers_by_tier", [org_id, tier.id], count))
    for status in STATUSES:
        count = store.count_profiles(org_id, {"loyaltyStatus": status})
        samples.append(("loyalty_customers_by_status", [org_id, status], count))
    return samples


def _last_run_samples(org_id: str, last: RunSummaryDocument) -> list[Sample]:
    status = str(last.get("status"))
    samples: list[Sample] = [
        ("loyalty_last_run_status", [org_id, each], 1.0 if each == status else 0.0)
        for each in _ENDED
    ]
    samples.append(
        ("loyalty_last_run_duration_seconds", [org_id], float(last.get("durationS") or 0))
    )
    outcomes = {
        "listed": float(last.get("listed") or 0),
        "synced": float(last.get("synced") or 0),
        "unchanged": float(last.get("unchanged") or 0),
        "failed": float(last.get("failed") or 0),
    }
    samples += [
        ("loyalty_last_run_customers", [org_id, outcome], count)
        for outcome, count in outcomes.items()
    ]
    samples += [
        ("loyalty_last_run_failed", [org_id, reason], float(count))
        for reason, count in sorted((last.get("failedByReason") or {}).items())
    ]
    if outcomes["listed"] > 0:
        ratio = (outcomes["synced"] + outcomes["unchanged"]) / outcomes["listed"]
        samples.append(("loyalty_last_run_synced_ratio", [org_id], ratio))
    rate = float(last.get("discrepancyRate") or 0)
    samples.append(("loyalty_last_run_discrepancy_rate", [org_id], rate))
    return samples


def _ended_at(run: RunSummaryDocument) -> float:
    if "finishedAt" in run:
        return float(run["finishedAt"])
    return float(run.get("startedAt") or 0) + float(run.get("durationS") or 0)


class SummaryCollector(Collector):
    """The orgs' families, read from the stored summaries and profiles when collected."""

    def __init__(self, samples: Callable[[], Sequence[Sample]]) -> None:
        self._samples = samples

    def collect(self) -> Iterator[Metric]:
        by_name: dict[str, GaugeMetricFamily] = {}
        for name, values, value in self._samples():
            if name not in by_name:
                text, labels = _FAMILIES[name]
                by_name[name] = GaugeMetricFamily(name, text, labels=labels)
            by_name[name].add_metric(values, value)
        for name in _FAMILIES:
            if name in by_name:
                yield by_name[name]


def render(samples: Sequence[Sample]) -> bytes:
    """The samples in Prometheus' text format, each family with its HELP and TYPE lines."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SummaryCollector(lambda: samples))
    return generate_latest(registry)
