"""The API's run use cases over working fakes: triggering an org's run, finding a run."""

from __future__ import annotations

import fakeredis
import pytest

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.domain.run import RunStatus, RunSummaryDocument
from loyalty_worker.errors import TransientError
from loyalty_worker.services.run.triggers import enqueue_org_run
from loyalty_worker.services.run.view import RunView, find_run
from tests.fakes import QueryableProfileStore, RecordingEnqueuer


@pytest.fixture
def tracker() -> RunTracker:
    return RunTracker(fakeredis.FakeRedis())


def test_a_triggered_run_reads_queued_until_a_worker_takes_it(tracker: RunTracker) -> None:
    enqueuer = RecordingEnqueuer()
    enqueue_org_run("org-1", "run-1", dry_run=True, runs=tracker, enqueuer=enqueuer)
    assert enqueuer.org_runs == [
        {"org_id": "org-1", "run_id": "run-1", "dry_run": True, "since": None, "expires_s": None}
    ]
    run = find_run("run-1", live=tracker, stored=QueryableProfileStore())
    assert run is not None and (run.org_id, run.status) == ("org-1", "queued")


def test_a_ticks_run_names_its_start_and_how_long_it_may_wait(tracker: RunTracker) -> None:
    enqueuer = RecordingEnqueuer()
    enqueue_org_run("org-1", "run-1", since="last", expires_s=600, runs=tracker, enqueuer=enqueuer)
    (run,) = enqueuer.org_runs
    assert (run["dry_run"], run["since"], run["expires_s"]) == (False, "last", 600)
    assert tracker.progress("run-1").status == "queued"


def test_a_run_the_broker_refused_reads_failed_with_the_reason(tracker: RunTracker) -> None:
    enqueuer = RecordingEnqueuer()
    enqueuer.error = TransientError("broker", "could not enqueue loyalty.sync_org")
    with pytest.raises(TransientError):
        enqueue_org_run("org-1", "run-1", dry_run=False, runs=tracker, enqueuer=enqueuer)
    run = find_run("run-1", live=tracker, stored=QueryableProfileStore())
    assert run is not None and run.status == "failed"
    assert run.error is not None and "could not enqueue" in run.error


def test_a_run_forgotten_by_redis_is_read_from_its_summary(tracker: RunTracker) -> None:
    store = QueryableProfileStore()
    summary: RunSummaryDocument = {
        "runId": "old",
        "orgId": "org-1",
        "status": "completed",
        "listed": 5,
        "failed": 1,
    }
    store.run_summaries["old"] = dict(summary)
    assert find_run("old", live=tracker, stored=store) == RunView(
        run_id="old",
        org_id="org-1",
        status=RunStatus.COMPLETED,
        listed=5,
        done=5,
        failed=1,
        error=None,
        summary=summary,
    )


@pytest.mark.parametrize("stored", [None, {"runId": "r", "status": "completed"}])
def test_a_run_nobody_knows_is_none(tracker: RunTracker, stored: dict[str, str] | None) -> None:
    store = QueryableProfileStore()
    if stored is not None:
        store.run_summaries["r"] = stored  # a summary without its org cannot be authorised
    assert find_run("r", live=tracker, stored=store) is None
