"""Run completion counting: exactly one caller fires the summary, redeliveries count once."""

from concurrent.futures import ThreadPoolExecutor

import fakeredis
import pytest

from loyalty_worker.adapters.run_state import RunTracker
from tests.results import failed, synced


@pytest.fixture
def tracker() -> RunTracker:
    return RunTracker(fakeredis.FakeRedis())


def test_only_the_result_that_completes_the_run_fires(tracker: RunTracker) -> None:
    tracker.start("r1", "org-1")
    assert tracker.set_listed("r1", 3) is False
    assert [tracker.record("r1", {str(i): synced(i)}) for i in range(3)] == [False, False, True]
    progress = tracker.progress("r1")
    assert (progress.listed, progress.done, progress.failed) == (3, 3, 0)


def test_a_redelivered_result_overwrites_instead_of_counting_twice(tracker: RunTracker) -> None:
    tracker.start("r1", "org-1")
    tracker.set_listed("r1", 2)
    assert tracker.record("r1", {"1": failed(1)}) is False
    assert tracker.progress("r1").failed == 1
    assert tracker.record("r1", {"1": synced(1)}) is False  # same customer again: still 1 of 2
    assert tracker.progress("r1").failed == 0
    assert tracker.record("r1", {"2": synced(2)}) is True
    assert tracker.record("r1", {"2": synced(2)}) is False  # a late duplicate never fires again


def test_results_before_the_count_is_known_fire_at_set_listed(tracker: RunTracker) -> None:
    tracker.start("r1", "org-1")
    assert tracker.record("r1", {"m1": failed(1)}) is False
    assert tracker.set_listed("r1", 1) is True
    assert tracker.set_listed("r1", 1) is False


def test_empty_run_fires_at_once(tracker: RunTracker) -> None:
    tracker.start("r1", "org-1")
    assert tracker.set_listed("r1", 0) is True


def test_concurrent_completions_fire_exactly_once(tracker: RunTracker) -> None:
    tracker.start("r1", "org-1")
    tracker.set_listed("r1", 200)
    with ThreadPoolExecutor(8) as pool:
        fired = list(pool.map(lambda i: tracker.record("r1", {str(i): synced(i)}), range(200)))
    assert fired.count(True) == 1
    assert sorted(r.customer_id for r in tracker.iter_results("r1")) == list(range(200))


def test_org_lock_is_exclusive_and_released_only_by_its_holder(tracker: RunTracker) -> None:
    assert tracker.acquire_lock("org-1", "r1", 60) is None
    assert tracker.acquire_lock("org-1", "r2", 60) == "r1"
    tracker.release_lock("org-1", "r2")
    assert tracker.lock_holder("org-1") == "r1"
    tracker.release_lock("org-1", "r1")
    assert tracker.acquire_lock("org-1", "r2", 60) is None


def test_nightly_marker_is_once_per_org_and_day(tracker: RunTracker) -> None:
    from datetime import date

    assert tracker.mark_nightly("org-1", date(2026, 11, 25), ttl_s=60) is True
    assert tracker.mark_nightly("org-1", date(2026, 11, 25), ttl_s=60) is False
    assert tracker.mark_nightly("org-2", date(2026, 11, 25), ttl_s=60) is True
    assert tracker.mark_nightly("org-1", date(2026, 11, 26), ttl_s=60) is True


def test_a_chunk_of_results_is_recorded_at_once(tracker: RunTracker) -> None:
    tracker.start("r1", "org-1")
    tracker.set_listed("r1", 5)
    assert tracker.record("r1", {str(i): synced(i) for i in range(3)}) is False
    assert tracker.record("r1", {"3": synced(3), "4": failed(4)}) is True
    assert (tracker.progress("r1").done, tracker.progress("r1").failed) == (5, 1)


def test_the_memo_keeps_successes_forgets_failures_and_ignores_dry_runs(
    tracker: RunTracker,
) -> None:
    kept = synced(1, inputs="d1")
    tracker.remember([kept, synced(2, inputs="d2"), synced(3)])  # 3: no inputs, nothing kept
    assert tracker.recall("org-1", [1, 2, 3]) == {1: kept, 2: synced(2, inputs="d2")}
    assert tracker.recall("org-2", [1]) == {}  # per org
    tracker.remember([failed(2)])
    tracker.remember([synced(1, inputs="other", dry_run=True)])
    assert tracker.recall("org-1", [1, 2]) == {1: kept}
    tracker._redis.hset("loyalty:memo:org-1", "1", b"{not json")  # written by someone else
    assert tracker.recall("org-1", [1]) == {}


def test_a_closed_run_drops_its_results_and_ignores_a_late_one(tracker: RunTracker) -> None:
    tracker.start("r1", "org-1")
    tracker.set_listed("r1", 2)
    tracker.record("r1", {"1": synced(1), "2": failed(1)})
    tracker.finish("r1", "completed", {"listed": 2, "missing": 0, "failed": 1})
    assert list(tracker.iter_results("r1")) == []
    assert tracker.record("r1", {"2": synced(2)}) is False  # a late redelivery
    assert list(tracker.iter_results("r1")) == []
    progress = tracker.progress("r1")
    assert (progress.status, progress.done, progress.failed) == ("completed", 2, 1)


def test_a_closed_run_can_keep_its_results_for_inspection() -> None:
    client = fakeredis.FakeRedis()
    tracker = RunTracker(client, results_keep_s=600)
    tracker.start("r1", "org-1")
    tracker.set_listed("r1", 1)
    tracker.record("r1", {"1": synced(1)})
    tracker.finish("r1", "completed", {"listed": 1, "missing": 0, "failed": 0})
    assert list(tracker.iter_results("r1")) == [synced(1)]
    assert 0 < client.ttl("loyalty:run:r1:results") <= 600
    assert tracker.record("r1", {"1": failed(1)}) is False
    assert list(tracker.iter_results("r1")) == [synced(1)]  # a late result changes nothing
