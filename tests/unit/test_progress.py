"""Following a run from a terminal: when it counts as not picked up, when it has ended, and the
summary table the CLI and the demo print."""

import io

import fakeredis
import pytest

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.domain.results import SyncStatus
from loyalty_worker.domain.run import RunStatus, RunSummaryDocument
from loyalty_worker.progress import RunNotPickedUp, format_summary, watch_run
from loyalty_worker.services.run.summary import SummaryBuilder
from tests.results import synced


def summary() -> RunSummaryDocument:
    builder = SummaryBuilder(run_id="r1", org_id="org-1", listed=3)
    for n, carried in enumerate((False, True, True)):
        builder.add(synced(n, status=SyncStatus.UNCHANGED, carried=carried))
    return builder.build(started_at=0.0, finished_at=1.5, status=RunStatus.COMPLETED)


def test_the_table_shows_how_many_unchanged_customers_were_carried_over() -> None:
    table = format_summary({**summary(), "alert": {"sent": True}})
    assert "unchanged         3 (2 carried over)" in table
    assert "bronze  3" in table


def test_a_run_that_carried_nobody_shows_the_plain_count() -> None:
    built = summary()
    table = format_summary({**built, "carried": 0, "alert": {"sent": False}})
    assert "unchanged         3\n" in table
    assert "alert             NOT sent" in table


def test_a_run_still_queued_when_the_pickup_wait_ends_was_not_picked_up() -> None:
    """Triggers record a run ``queued`` before any worker has it: still queued is not taken."""
    tracker = RunTracker(fakeredis.FakeRedis())
    tracker.start("r1", "org-1", status="queued", dryRun=0)
    with pytest.raises(RunNotPickedUp, match="r1"):
        watch_run(tracker, "r1", out=io.StringIO(), poll_s=0.01, pickup_timeout_s=0.05)


def test_following_a_run_ends_with_its_last_progress_once_it_ended() -> None:
    tracker = RunTracker(fakeredis.FakeRedis())
    tracker.start("r1", "org-1", status="queued", dryRun=0)
    tracker.start("r1", "org-1", status="duplicate", error="org-1 already has run r0")
    progress = watch_run(tracker, "r1", out=io.StringIO(), poll_s=0.01, pickup_timeout_s=0.05)
    assert (progress.status, progress.error) == ("duplicate", "org-1 already has run r0")
