"""The dashboard's run buttons over Redis (fakeredis): a run starts the one way every run does
(``services.dashboard.actions.trigger_run``), and a second press names the run going instead of
starting another."""

from __future__ import annotations

from datetime import UTC, datetime

import fakeredis
import pytest

from loyalty_worker.adapters.dashboard_runs import RedisRunTriggers
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.domain.run import RunStatus
from loyalty_worker.errors import TransientError
from loyalty_worker.services.dashboard.actions import trigger_run
from loyalty_worker.services.dashboard.activity import Doer
from tests.fakes import RecordingEnqueuer


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def tracker(client: fakeredis.FakeRedis) -> RunTracker:
    return RunTracker(client)


@pytest.fixture
def enqueuer() -> RecordingEnqueuer:
    return RecordingEnqueuer()


@pytest.fixture
def triggers(
    client: fakeredis.FakeRedis, tracker: RunTracker, enqueuer: RecordingEnqueuer
) -> RedisRunTriggers:
    return RedisRunTriggers(client, tracker)


def press(
    kind: str, triggers: RedisRunTriggers, tracker: RunTracker, enqueuer: RecordingEnqueuer
) -> tuple[str, bool]:
    """The run button of ``kind``, the new run to be ``r1``."""
    return trigger_run(
        "org-1",
        kind,
        runs=triggers,
        records=tracker,
        enqueuer=enqueuer,
        new_run_id="r1",
        doer=Doer("ana@example.com (uid-ana)", datetime(2026, 12, 1, tzinfo=UTC), None),
    )


def test_a_started_run_is_queued_and_named_while_it_goes(
    triggers: RedisRunTriggers, tracker: RunTracker, enqueuer: RecordingEnqueuer
) -> None:
    assert triggers.running_run("org-1") is None
    assert press("incremental", triggers, tracker, enqueuer) == ("r1", True)
    assert enqueuer.org_runs == [
        {"org_id": "org-1", "run_id": "r1", "dry_run": False, "since": "last", "expires_s": None}
    ]
    assert tracker.progress("r1").status == "queued"
    assert triggers.running_run("org-1") == "r1"
    assert press("full", triggers, tracker, enqueuer) == ("r1", False)
    assert len(enqueuer.org_runs) == 1
    tracker.finish("r1", RunStatus.COMPLETED, {"runId": "r1"})
    assert triggers.running_run("org-1") is None


def test_the_holder_of_the_orgs_run_lock_is_the_run_going(
    triggers: RedisRunTriggers, tracker: RunTracker, enqueuer: RecordingEnqueuer
) -> None:
    assert tracker.acquire_lock("org-1", "nightly-run", 60) is None
    assert triggers.running_run("org-1") == "nightly-run"
    assert press("dry", triggers, tracker, enqueuer) == ("nightly-run", False)
    assert enqueuer.org_runs == []


def test_a_run_the_broker_refused_is_failed_and_not_going(
    triggers: RedisRunTriggers, tracker: RunTracker, enqueuer: RecordingEnqueuer
) -> None:
    enqueuer.error = TransientError("broker", "could not enqueue loyalty.sync_org")
    with pytest.raises(TransientError):
        press("dry", triggers, tracker, enqueuer)
    assert tracker.progress("r1").status == "failed"
    assert triggers.running_run("org-1") is None
