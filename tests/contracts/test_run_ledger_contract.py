"""One set of RunLedger checks, run over the in-memory fake, RunTracker on fakeredis and
RunTracker on a real redis-server (the Lua scripts and pipelines as production runs them).

Completion must fire for exactly one caller, a redelivered result must count once, a closed run
must ignore late results, and the memo must keep only what an incremental run may trust.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from typing import Protocol, cast

import fakeredis
import pytest
import redis

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.domain.results import SyncStatus
from loyalty_worker.domain.run import PlanReport, RunRecord, RunStatus
from loyalty_worker.ports.run import RunLedger, WorkPayload
from tests.fakes import InMemoryRunLedger
from tests.results import failed, outcome, synced


class Ledger(RunLedger, Protocol):
    """The port, and the two reads that tasks and tests use beside it."""

    def last_success(self, org_id: str) -> float | None: ...

    def lock_holder(self, org_id: str) -> str | None: ...


@pytest.fixture(params=["fake", "fakeredis", pytest.param("redis", marks=pytest.mark.integration)])
def ledger(request: pytest.FixtureRequest) -> Ledger:
    if request.param == "fake":
        return InMemoryRunLedger()
    if request.param == "fakeredis":
        return RunTracker(fakeredis.FakeRedis())
    return RunTracker(request.getfixturevalue("redis_client"))


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.integration)])
def redis_for_tracker(request: pytest.FixtureRequest) -> redis.Redis:
    """For RunTracker's own additions (progress, nightly marker, kept results)."""
    if request.param == "fakeredis":
        return fakeredis.FakeRedis()
    client: redis.Redis = request.getfixturevalue("redis_client")
    return client


@pytest.fixture
def tracker(redis_for_tracker: redis.Redis) -> RunTracker:
    return RunTracker(redis_for_tracker)


# --- the port, over every implementation ---------------------------------------------------


def test_org_lock_is_exclusive_and_released_only_by_its_holder(ledger: Ledger) -> None:
    assert ledger.acquire_lock("org-1", "r1", 60) is None
    assert ledger.acquire_lock("org-1", "r2", 60) == "r1"
    assert ledger.acquire_lock("org-1", "r1", 60) is None  # its holder re-takes it (resumed)
    assert ledger.acquire_lock("org-2", "r3", 60) is None  # per org
    ledger.release_lock("org-1", "r2")
    assert ledger.acquire_lock("org-1", "r2", 60) == "r1"
    assert ledger.lock_holder("org-1") == "r1"
    ledger.release_lock("org-1", "r1")
    assert ledger.lock_holder("org-1") is None
    assert ledger.acquire_lock("org-1", "r2", 60) is None


def test_a_beat_keeps_an_open_run_and_its_lock_and_stops_once_it_is_closed(
    ledger: Ledger,
) -> None:
    assert ledger.beat("r1", "org-1", lock_ttl_s=60) is False  # no such run
    assert ledger.lock_holder("org-1") is None
    ledger.start("r1", "org-1")
    assert ledger.claim_planner("r1", holder="p1", stale_s=60) == "claimed"
    assert ledger.beat("r1", "org-1", lock_ttl_s=60, planner="p1") is True
    record = ledger.run_record("r1")
    assert record.last_beat_at is not None and record.last_beat_at > 0
    assert record.planner_beat_at == record.last_beat_at
    assert ledger.lock_holder("org-1") == "r1"  # a lost lock is taken back while it beats
    ledger.release_lock("org-1", "r1")
    assert ledger.acquire_lock("org-1", "r2", 60) is None
    assert ledger.beat("r1", "org-1", lock_ttl_s=60) is True
    assert ledger.lock_holder("org-1") == "r2"  # ... but never from another run
    ledger.finish("r1", RunStatus.COMPLETED, {})
    assert ledger.beat("r1", "org-1", lock_ttl_s=60) is False


def test_one_planner_at_a_time_until_it_stops_beating_or_the_work_is_sent(
    ledger: Ledger,
) -> None:
    ledger.start("r1", "org-1")
    # A planner's heartbeat may beat before it claims: its own beat never makes it busy.
    assert ledger.beat("r1", "org-1", lock_ttl_s=60, planner="p1") is True
    assert ledger.run_record("r1").planner_beat_at is None
    assert ledger.claim_planner("r1", holder="p1", stale_s=60) == "claimed"
    assert ledger.beat("r1", "org-1", lock_ttl_s=60, planner="p2") is True  # not the planner's
    assert ledger.claim_planner("r1", holder="p2", stale_s=60) == "busy"  # the first one beats
    assert ledger.claim_planner("r1", holder="p2", stale_s=0) == "claimed"  # it stopped
    assert ledger.run_record("r1").plan_attempts == 2
    before = ledger.run_record("r1").planner_beat_at
    time.sleep(0.01)
    assert ledger.beat("r1", "org-1", lock_ttl_s=60, planner="p1") is True  # the old one's
    assert ledger.run_record("r1").planner_beat_at == before
    ledger.update("r1", dispatchedAt=1.0)
    assert ledger.claim_planner("r1", holder="p3", stale_s=0) == "planned"
    ledger.finish("r1", RunStatus.COMPLETED, {})
    assert ledger.claim_planner("r1", holder="p3", stale_s=0) == "ended"


def test_kept_chunks_hold_their_payloads_until_dropped_or_the_run_closes(
    ledger: Ledger,
) -> None:
    ledger.start("r1", "org-1")
    chunk: list[WorkPayload] = [
        {"customer": [1, "Ann", None], "orders": [[5, "completed", "12.50", "0", "0"]]}
    ]
    ledger.keep_chunk("r1", "1", chunk)
    ledger.keep_chunk("r1", "2", [{"customer": [2, "Bo", None], "orders": []}])
    assert ledger.kept_chunks("r1")["1"] == chunk
    ledger.drop_chunk("r1", "2")
    assert list(ledger.kept_chunks("r1")) == ["1"]
    ledger.record("r1", {"1": synced(1)})
    assert ledger.has_results("r1", ["1", "2"]) == [True, False]
    ledger.finish("r1", RunStatus.COMPLETED, {})
    assert ledger.kept_chunks("r1") == {}


def test_the_run_record_reads_back_typed(ledger: Ledger) -> None:
    ledger.start("r1", "org-1", dryRun=1, since="full", startedAt=1_790_000_000.5)
    record = ledger.run_record("r1")
    assert (record.org_id, record.status, record.dry_run, record.since) == (
        "org-1",
        RunStatus.LISTING,
        True,
        "full",
    )
    assert (record.started_at, record.listed, record.plan_attempts) == (1_790_000_000.5, None, 0)
    ledger.update("r1", status="failed", listed=0, error="alleaves_auth: 401")
    record = ledger.run_record("r1")
    assert (record.status, record.listed, record.error) == (
        RunStatus.FAILED,
        0,
        "alleaves_auth: 401",
    )
    assert ledger.run_record("r-unknown") == RunRecord("r-unknown")
    assert not ledger.run_record("r-unknown").known


def test_the_record_keeps_what_the_plan_read_its_alert_and_its_recoveries(
    ledger: Ledger,
) -> None:
    ledger.start("r1", "org-1", recoveries=1, recovery1="planning sent again")
    report = PlanReport(
        orders_seen=120,
        order_pages=7,
        orders_since="2026-02-14",
        unowned_malformed=3,
        unowned_listed=("o-1", "o-2"),
    )
    ledger.note_plan("r1", report)
    ledger.keep_alert("r1", {"sent": False, "error": "discord: 503"})
    record = ledger.run_record("r1")
    assert record.plan == report
    assert record.alert == {"sent": False, "error": "discord: 503"}
    assert (record.recoveries, record.recovery_log) == (1, ("planning sent again",))


def test_only_the_result_that_completes_the_run_fires(ledger: Ledger) -> None:
    ledger.start("r1", "org-1")
    assert ledger.set_listed("r1", 3) is False
    assert ledger.run_record("r1").status is RunStatus.SYNCING
    assert [ledger.record("r1", {str(i): synced(i)}) for i in range(3)] == [False, False, True]
    assert ledger.claim_summary("r1") is False  # completion took the once-only flag


def test_a_redelivered_result_overwrites_instead_of_counting_twice(ledger: Ledger) -> None:
    ledger.start("r1", "org-1")
    ledger.set_listed("r1", 2)
    assert ledger.record("r1", {"1": failed(1)}) is False
    assert ledger.record("r1", {"1": synced(1)}) is False  # same customer again: still 1 of 2
    assert ledger.record("r1", {"2": synced(2)}) is True
    assert ledger.record("r1", {"2": synced(2)}) is False  # a late duplicate never fires again
    assert sorted(r.customer_id for r in ledger.iter_results("r1")) == [1, 2]
    assert {r.customer_id: r.status for r in ledger.iter_results("r1")}[1] is SyncStatus.SYNCED


def test_results_before_the_count_is_known_fire_at_set_listed(ledger: Ledger) -> None:
    ledger.start("r1", "org-1")
    assert ledger.record("r1", {"m1": failed("page 1 #0")}) is False
    assert ledger.set_listed("r1", 1) is True
    assert ledger.set_listed("r1", 1) is False


def test_empty_run_fires_at_once(ledger: Ledger) -> None:
    ledger.start("r1", "org-1")
    assert ledger.set_listed("r1", 0) is True


def test_a_chunk_of_results_is_recorded_at_once(ledger: Ledger) -> None:
    ledger.start("r1", "org-1")
    ledger.set_listed("r1", 5)
    assert ledger.record("r1", {str(i): synced(i) for i in range(3)}) is False
    assert ledger.record("r1", {"3": synced(3), "4": failed(4)}) is True


def test_concurrent_completions_fire_exactly_once(ledger: Ledger) -> None:
    ledger.start("r1", "org-1")
    ledger.set_listed("r1", 200)
    with ThreadPoolExecutor(8) as pool:
        fired = list(pool.map(lambda i: ledger.record("r1", {str(i): synced(i)}), range(200)))
    assert fired.count(True) == 1
    assert sorted(r.customer_id for r in ledger.iter_results("r1")) == list(range(200))


def test_results_read_back_equal_to_what_was_recorded(ledger: Ledger) -> None:
    kept = [
        synced(1, inputs="d1"),
        replace(synced(2), outcome=outcome(points=700, tier="silver", alpine=700)),
        replace(synced(3), previous_tier="silver", phone="5551230003"),
        synced(4, status=SyncStatus.UNCHANGED, carried=True, dry_run=True),
        failed(5, reason="alpine_auth"),
        failed("page 2 #4"),
    ]
    ledger.start("r1", "org-1")
    ledger.record("r1", {str(r.customer_id): r for r in kept})
    assert sorted(ledger.iter_results("r1"), key=lambda r: str(r.customer_id)) == kept


def test_the_summary_is_claimed_once_per_flag(ledger: Ledger) -> None:
    ledger.start("r1", "org-1")
    assert ledger.claim_summary("r1") is True
    assert ledger.claim_summary("r1") is False
    assert ledger.claim_summary("r1", flag="watchdogFired") is True
    assert ledger.claim_summary("r1", flag="watchdogFired") is False


def test_a_closed_run_drops_its_results_and_ignores_a_late_one(ledger: Ledger) -> None:
    ledger.start("r1", "org-1")
    ledger.set_listed("r1", 2)
    ledger.record("r1", {"1": synced(1), "2": failed(2)})
    ledger.finish("r1", RunStatus.COMPLETED, {"listed": 2, "missing": 0, "failed": 1})
    assert list(ledger.iter_results("r1")) == []
    assert ledger.record("r1", {"2": synced(2)}) is False  # a late redelivery
    assert list(ledger.iter_results("r1")) == []
    record = ledger.run_record("r1")
    assert record.status is RunStatus.COMPLETED
    assert record.summary == {"listed": 2, "missing": 0, "failed": 1}


def test_the_memo_keeps_successes_forgets_failures_and_ignores_dry_runs(ledger: Ledger) -> None:
    kept = synced(1, inputs="d1")
    ledger.remember([kept, synced(2, inputs="d2"), synced(3)])  # 3: no inputs, nothing kept
    assert ledger.recall("org-1", [1, 2, 3]) == {1: kept, 2: synced(2, inputs="d2")}
    assert ledger.recall("org-2", [1]) == {}  # per org
    assert ledger.recall("org-1", []) == {}
    ledger.remember([failed(2)])
    ledger.remember([synced(1, inputs="other", dry_run=True)])
    assert ledger.recall("org-1", [1, 2]) == {1: kept}
    newer = replace(kept, inputs="d1b", updated_at="2026-03-02T00:00:00+00:00")
    ledger.remember([newer])
    assert ledger.recall("org-1", [1]) == {1: newer}


def test_the_last_success_is_kept_per_org(ledger: Ledger) -> None:
    assert ledger.last_success("org-1") is None
    ledger.mark_success("org-1", 1772366400.5)
    assert ledger.last_success("org-1") == 1772366400.5
    assert ledger.last_success("org-2") is None


# --- RunTracker's own additions, on fakeredis and on a real redis-server --------------------


def test_progress_counts_a_redelivered_result_once(tracker: RunTracker) -> None:
    tracker.start("r1", "org-1")
    tracker.set_listed("r1", 2)
    tracker.record("r1", {"1": failed(1)})
    assert tracker.progress("r1").failed == 1
    tracker.record("r1", {"1": synced(1)})
    progress = tracker.progress("r1")
    assert (progress.status, progress.listed, progress.done, progress.failed) == (
        "syncing",
        2,
        1,
        0,
    )


def test_a_closed_runs_progress_comes_from_its_summary(tracker: RunTracker) -> None:
    tracker.start("r1", "org-1")
    tracker.set_listed("r1", 2)
    tracker.record("r1", {"1": synced(1), "2": failed(2)})
    tracker.finish("r1", RunStatus.COMPLETED, {"listed": 2, "missing": 0, "failed": 1})
    progress = tracker.progress("r1")
    assert (progress.status, progress.done, progress.failed) == ("completed", 2, 1)


def test_nightly_marker_is_once_per_org_and_day(tracker: RunTracker) -> None:
    assert tracker.mark_nightly("org-1", date(2026, 11, 25), ttl_s=60) is True
    assert tracker.mark_nightly("org-1", date(2026, 11, 25), ttl_s=60) is False
    assert tracker.mark_nightly("org-2", date(2026, 11, 25), ttl_s=60) is True
    assert tracker.mark_nightly("org-1", date(2026, 11, 26), ttl_s=60) is True


def test_an_unreadable_memo_entry_is_as_if_nothing_were_kept(
    redis_for_tracker: redis.Redis,
) -> None:
    tracker = RunTracker(redis_for_tracker)
    tracker.remember([synced(1, inputs="d1"), synced(2, inputs="d2")])
    redis_for_tracker.hset("loyalty:memo:org-1", "1", "{not json")  # written by someone else
    redis_for_tracker.hset("loyalty:memo:org-1", "2", '{"status": "synced"}')
    assert tracker.recall("org-1", [1, 2]) == {}


def test_a_closed_run_can_keep_its_results_for_inspection(
    redis_for_tracker: redis.Redis,
) -> None:
    tracker = RunTracker(redis_for_tracker, results_keep_s=600)
    tracker.start("r1", "org-1")
    tracker.set_listed("r1", 1)
    tracker.record("r1", {"1": synced(1)})
    tracker.finish("r1", RunStatus.COMPLETED, {"listed": 1, "missing": 0, "failed": 0})
    assert list(tracker.iter_results("r1")) == [synced(1)]
    assert 0 < cast(int, redis_for_tracker.ttl("loyalty:run:r1:results")) <= 600
    assert tracker.record("r1", {"1": failed(1)}) is False
    assert list(tracker.iter_results("r1")) == [synced(1)]  # a late result changes nothing


def test_a_lock_whose_run_stopped_beating_expires_and_the_next_trigger_starts(
    tracker: RunTracker,
) -> None:
    tracker.start("r1", "org-1")
    assert tracker.acquire_lock("org-1", "r1", 1) is None
    assert tracker.beat("r1", "org-1", lock_ttl_s=1)
    assert tracker.acquire_lock("org-1", "r2", 60) == "r1"  # alive: refused
    time.sleep(1.2)  # no beat since: its processes died
    assert tracker.acquire_lock("org-1", "r2", 60) is None
    assert tracker.beat("r1", "org-1", lock_ttl_s=60)  # a late beat of r1 takes nothing back
    assert tracker.lock_holder("org-1") == "r2"


def test_a_late_failure_never_replaces_a_success_of_the_same_run(ledger: Ledger) -> None:
    ledger.start("r1", "org-1")
    ledger.set_listed("r1", 3)
    assert ledger.record("r1", {"1": synced(1)}) is False
    assert ledger.record("r1", {"1": failed(1, reason="phone_not_kept")}) is False
    assert ledger.record("r1", {"2": failed(2)}) is False
    assert ledger.record("r1", {"2": synced(2)}) is False  # a success replaces a failure
    assert ledger.record("r1", {"3": failed(3)}) is True
    assert {r.customer_id: r.status for r in ledger.iter_results("r1")} == {
        1: SyncStatus.SYNCED,
        2: SyncStatus.SYNCED,
        3: SyncStatus.FAILED,
    }
    if isinstance(ledger, RunTracker):  # its set of failed customers agrees
        assert ledger.progress("r1").failed == 1


def test_opening_a_record_afresh_drops_what_a_lost_record_held(ledger: Ledger) -> None:
    # Redis lost the run; a late task left a bare record and a result under it
    ledger.record("r1", {"1": failed(1, reason="phone_not_kept")})
    ledger.keep_chunk("r1", "1", [{"customer": [1, None, None], "orders": []}])
    ledger.start("r1", "org-1")  # the run planned anew
    assert list(ledger.iter_results("r1")) == []
    assert ledger.kept_chunks("r1") == {}
    assert ledger.run_record("r1").org_id == "org-1"
