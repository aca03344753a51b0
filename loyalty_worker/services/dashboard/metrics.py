"""``GET /metrics``: the loyalty numbers in Prometheus' text format, per org.

Read at scrape time from the same places the dashboard reads (aggregation counts, the latest run
summaries), so the API process keeps no counters of its own and every API process answers alike.
Alpine IQ and Alleaves errors show as the last run's failures by reason, the way the workers
record them (a 429 that outlasted its retries counts as ``<service>_unavailable``); the workers
keep no count of the 429 answers they retried through.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from loyalty_worker.domain.run import RunStatus
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.services.dashboard.overview import RECENT_RUNS, STATUSES

_HELP = {
    "loyalty_recent_runs": ("gauge", "Runs of the org's last 30, by status."),
    "loyalty_last_run_duration_seconds": ("gauge", "Duration of the org's last finished run."),
    "loyalty_last_run_customers": ("gauge", "Customers of the last finished run, by outcome."),
    "loyalty_last_run_failed": ("gauge", "Failed customers of the last finished run, by reason."),
    "loyalty_last_run_discrepancy_rate": (
        "gauge",
        "Share of Alpine IQ accounts over the discrepancy threshold in the last finished run.",
    ),
    "loyalty_customers_by_tier": ("gauge", "Profiles by tier."),
    "loyalty_customers_by_status": ("gauge", "Profiles by reconciliation status."),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name: str, labels: Mapping[str, str], value: float) -> str:
    inner = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
    return f"{name}{{{inner}}} {value:g}"


def org_samples(org: OrgSettings, store: DashboardStore) -> list[tuple[str, dict[str, str], float]]:
    """One org's samples: its recent runs, its last finished run, its customers."""
    org_id = org.org_id
    samples: list[tuple[str, dict[str, str], float]] = []
    runs = store.list_org_runs(org_id, limit=RECENT_RUNS)
    for status, count in sorted(Counter(str(r.get("status", "running")) for r in runs).items()):
        samples.append(("loyalty_recent_runs", {"org": org_id, "status": status}, count))
    last = next((r for r in runs if RunStatus.of(r.get("status")).ended), None)
    if last is not None:
        labels = {"org": org_id}
        samples.append(
            ("loyalty_last_run_duration_seconds", labels, float(last.get("durationS") or 0))
        )
        outcomes = {
            "listed": last.get("listed"),
            "synced": last.get("synced"),
            "unchanged": last.get("unchanged"),
            "failed": last.get("failed"),
        }
        for outcome, customers in outcomes.items():
            samples.append(
                (
                    "loyalty_last_run_customers",
                    {"org": org_id, "outcome": outcome},
                    float(customers or 0),
                )
            )
        for reason, count in sorted((last.get("failedByReason") or {}).items()):
            samples.append(
                ("loyalty_last_run_failed", {"org": org_id, "reason": reason}, float(count))
            )
        samples.append(
            ("loyalty_last_run_discrepancy_rate", labels, float(last.get("discrepancyRate") or 0))
        )
    for tier in org.tiers:
        count = store.count_profiles(org_id, {"tier": tier.id})
        samples.append(("loyalty_customers_by_tier", {"org": org_id, "tier": tier.id}, count))
    for status in STATUSES:
        count = store.count_profiles(org_id, {"loyaltyStatus": status})
        samples.append(("loyalty_customers_by_status", {"org": org_id, "status": status}, count))
    return samples


def render(samples: Iterable[tuple[str, Mapping[str, str], float]]) -> str:
    """Samples grouped by metric, each metric with its HELP and TYPE lines."""
    by_name: dict[str, list[str]] = {}
    for name, labels, value in samples:
        by_name.setdefault(name, []).append(_line(name, labels, value))
    lines: list[str] = []
    for name, (kind, text) in _HELP.items():
        if name not in by_name:
            continue
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *by_name[name]]
    return "\n".join(lines) + "\n"


def metrics_text(orgs: Sequence[OrgSettings], store: DashboardStore) -> str:
    """Every org's samples, as Prometheus reads them."""
    samples: list[tuple[str, Mapping[str, str], float]] = []
    for org in orgs:
        samples.extend(org_samples(org, store))
    return render(samples)
