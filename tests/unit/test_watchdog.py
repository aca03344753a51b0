"""The watchdog closes stalled or lost runs as incomplete, once, and leaves live ones alone."""

from __future__ import annotations

import time

import pytest

from loyalty_worker.services.watchdog import finalize_overdue_runs
from tests.fakes import InMemoryProfileStore, InMemoryRunLedger, RecordingNotifier
from tests.results import synced

Parts = tuple[InMemoryProfileStore, InMemoryRunLedger, RecordingNotifier]


@pytest.fixture
def parts() -> Parts:
    return InMemoryProfileStore(), InMemoryRunLedger(), RecordingNotifier()


def register(store: InMemoryProfileStore, run_id: str, listed: int, started: float) -> None:
    store.write_run_summary(
        run_id,
        {
            "runId": run_id,
            "orgId": "org-1",
            "status": "running",
            "startedAt": started,
            "listed": listed,
        },
    )


def run(parts: Parts, now: float) -> list[str]:
    store, tracker, notifier = parts
    return finalize_overdue_runs(
        store=store, ledger=tracker, notifier_for=lambda _: notifier, now=now, stall_s=600
    )


def test_a_stalled_run_is_closed_incomplete_with_what_it_has(parts) -> None:  # type: ignore[no-untyped-def]
    store, tracker, notifier = parts
    tracker.acquire_lock("org-1", "r1", 3600)
    tracker.start("r1", "org-1")
    register(store, "r1", 5, time.time())
    tracker.set_listed("r1", 5)
    tracker.record("r1", {str(i): synced(i) for i in range(3)})
    assert run(parts, time.time() + 60) == []  # still fresh
    assert run(parts, time.time() + 3600) == ["r1"]
    summary = store.run_summaries["r1"]
    assert (summary["status"], summary["synced"], summary["missing"]) == ("incomplete", 3, 2)
    assert len(notifier.alerts) == 1 and notifier.alerts[0].severity == "error"
    assert tracker.lock_holder("org-1") is None
    assert run(parts, time.time() + 7200) == []  # closed once
    # a late result after the close does not fire a second summary
    assert tracker.record("r1", {"3": synced(3), "4": synced(4)}) is False


def test_a_run_lost_from_redis_is_reported(parts) -> None:  # type: ignore[no-untyped-def]
    store, _, notifier = parts
    register(store, "gone", 1000, time.time() - 7200)
    assert run(parts, time.time()) == ["gone"]
    summary = store.run_summaries["gone"]
    assert (summary["status"], summary["missing"]) == ("incomplete", 1000)
    assert "lost from Redis" in summary["error"]
    assert summary["alert"] == {"sent": True}
    assert len(notifier.alerts) == 1


def test_a_finished_run_whose_summary_missed_firestore_is_written(parts) -> None:  # type: ignore[no-untyped-def]
    store, tracker, notifier = parts
    tracker.start("r2", "org-1")
    register(store, "r2", 0, time.time())
    tracker.finish("r2", "completed", {"runId": "r2", "status": "completed", "listed": 0})
    assert run(parts, time.time()) == []
    assert store.run_summaries["r2"]["status"] == "completed"
    assert notifier.alerts == []
