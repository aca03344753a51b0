"""``GET /metrics``'s families read from the stored summaries: the last full run (a partial one
never is), its status and synced share, and the dead man's switch's two times per org."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from loyalty_worker.adapters.metrics import ALLOWED_LABELS
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.dashboard.metrics import org_samples, render
from tests.fakes import InMemoryDashboardStore, QueryableProfileStore

# 02:00 in Los Angeles (PST) is 10:00 UTC.
NIGHT = datetime(2026, 12, 4, 10, 0, tzinfo=UTC).timestamp()
FIRST_SEEN = NIGHT - 5 * 86400


def _samples(
    runs: dict[str, dict[str, Any]], settings: dict[str, Any] | None = None
) -> dict[tuple[str, tuple[str, ...]], float]:
    base = QueryableProfileStore()
    base.settings["org-1"] = settings or {}
    for run_id, run in runs.items():
        base.run_summaries[run_id] = {"orgId": "org-1", **run}
    samples = org_samples(
        OrgSettings.parse("org-1", settings or {}),
        InMemoryDashboardStore(base),
        nightly_hour=2,
        first_seen=lambda _, oldest: FIRST_SEEN if oldest is None else oldest,
    )
    return {(name, tuple(labels)): value for name, labels, value in samples}


def _run(started: float, status: str = "completed", **more: Any) -> dict[str, Any]:
    return {
        "status": status,
        "startedAt": started,
        "finishedAt": started + 40,
        "durationS": 40.0,
        "listed": 100,
        "synced": 80,
        "unchanged": 12,
        "failed": 8,
        **more,
    }


def test_a_partial_run_is_never_the_last_full_run() -> None:
    got = _samples(
        {
            "full": _run(NIGHT, "incomplete"),
            "partial": _run(NIGHT + 3600, "completed", partial=True, listed=10, synced=10),
        }
    )
    assert got["loyalty_last_run_status", ("org-1", "incomplete")] == 1
    assert got["loyalty_last_run_status", ("org-1", "completed")] == 0
    assert got["loyalty_last_run_customers", ("org-1", "listed")] == 100
    assert got["loyalty_last_run_synced_ratio", ("org-1",)] == 0.92
    # Nothing completed in full: the oldest run's start is when the org was first seen.
    assert got["loyalty_last_completed_run_end_timestamp_seconds", ("org-1",)] == NIGHT
    # The next night after the full run's start, not after the partial one's.
    assert got["loyalty_next_run_due_timestamp_seconds", ("org-1",)] == NIGHT + 86400


def test_the_last_completed_full_run_ends_the_switchs_wait() -> None:
    got = _samples(
        {
            "old": _run(NIGHT - 86400),
            "failed": _run(NIGHT + 60, "failed", finishedAt=NIGHT + 70),
        }
    )
    assert got["loyalty_last_run_status", ("org-1", "failed")] == 1
    assert got["loyalty_last_completed_run_end_timestamp_seconds", ("org-1",)] == NIGHT - 86400 + 40
    assert got["loyalty_next_run_due_timestamp_seconds", ("org-1",)] == NIGHT + 86400


def test_an_org_that_never_ran_is_due_at_the_first_night_after_it_was_first_seen() -> None:
    got = _samples({})
    assert got["loyalty_last_completed_run_end_timestamp_seconds", ("org-1",)] == FIRST_SEEN
    assert got["loyalty_next_run_due_timestamp_seconds", ("org-1",)] == FIRST_SEEN + 86400
    assert not any(name == "loyalty_last_run_status" for name, _ in got)


def test_a_run_going_makes_the_next_night_the_one_due() -> None:
    got = _samples({"going": {"status": "running", "startedAt": NIGHT + 30}})
    assert got["loyalty_next_run_due_timestamp_seconds", ("org-1",)] == NIGHT + 86400


def test_a_disabled_org_exports_nothing() -> None:
    assert _samples({"r": _run(NIGHT)}, {"disabled": True}) == {}


def test_the_text_parses_and_every_label_is_bounded() -> None:
    base = QueryableProfileStore()
    base.settings["org-1"] = {}
    base.run_summaries["r"] = {"orgId": "org-1", **_run(NIGHT, failedByReason={"timeout": 8})}
    samples = org_samples(
        OrgSettings.parse("org-1", {}),
        InMemoryDashboardStore(base),
        nightly_hour=2,
        first_seen=lambda _, oldest: oldest or 0.0,
    )
    families = list(text_string_to_metric_families(render(samples).decode()))
    assert {f.name for f in families} >= {
        "loyalty_last_run_status",
        "loyalty_last_run_synced_ratio",
        "loyalty_last_completed_run_end_timestamp_seconds",
        "loyalty_next_run_due_timestamp_seconds",
    }
    labels = {label for family in families for sample in family.samples for label in sample.labels}
    assert labels <= ALLOWED_LABELS
