"""The watchdog sends an idle run's lost work again (bounded), closes what cannot go on once,
and leaves live runs alone."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from loyalty_worker.domain.run import RunStatus
from loyalty_worker.ports.run import WorkPayload
from loyalty_worker.services.run.watchdog import Recovery, Watched, watch_runs
from tests.fakes import InMemoryProfileStore, InMemoryRunLedger, RecordingNotifier
from tests.results import synced

STALL_S = 3600.0
IDLE_S = 60.0


@dataclass
class Parts:
    store: InMemoryProfileStore = field(default_factory=InMemoryProfileStore)
    ledger: InMemoryRunLedger = field(default_factory=InMemoryRunLedger)
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)
    replans: list[tuple[str, str, bool, str | None, str | None]] = field(default_factory=list)
    resent: dict[str, list[WorkPayload]] = field(default_factory=dict)
    queued: int = 0

    def watch(self, now: float, *, attempts: int = 3) -> Watched:
        return watch_runs(
            store=self.store,
            ledger=self.ledger,
            notifier_for=lambda _: self.notifier,
            recovery=Recovery(
                replan=lambda *args: self.replans.append(args),
                resend=lambda org, run, dry, key, payloads: self.resent.update({key: payloads}),
                queued=lambda: self.queued,
                idle_s=IDLE_S,
                attempts=attempts,
            ),
            now=now,
            stall_s=STALL_S,
        )


@pytest.fixture
def parts() -> Parts:
    return Parts()


def payload(cid: int) -> WorkPayload:
    return {"customer": [cid, "Ann", None, None], "orders": []}


def open_run(parts: Parts, run_id: str, listed: int, *, since: str = "full") -> None:
    """A run registered as ``open_run`` registers it, planned and dispatched in chunks of 5."""
    parts.ledger.acquire_lock("org-1", run_id, 180)
    parts.ledger.start(run_id, "org-1", dryRun=0, since=since)
    parts.store.write_run_summary(
        run_id, {"runId": run_id, "orgId": "org-1", "status": "running", "startedAt": time.time()}
    )
    parts.ledger.claim_planner(run_id, holder="p1", stale_s=IDLE_S)
    parts.ledger.set_listed(run_id, listed)
    for first in range(0, listed, 5):
        chunk = [payload(cid) for cid in range(first, min(first + 5, listed))]
        parts.ledger.keep_chunk(run_id, str(first), chunk)
    parts.ledger.update(run_id, dispatchedAt=time.time())


def test_a_live_run_is_left_alone(parts: Parts) -> None:
    open_run(parts, "r1", 10)
    parts.ledger.beat("r1", "org-1", lock_ttl_s=180)
    assert parts.watch(time.time() + IDLE_S / 2) == Watched()
    assert parts.resent == {} and parts.replans == []


def test_lost_customers_are_sent_again_then_the_run_closes_naming_them(parts: Parts) -> None:
    open_run(parts, "r1", 10)
    parts.ledger.record("r1", {str(i): synced(i) for i in (0, 1, 2, 5, 6, 7, 8, 9)})
    parts.ledger.drop_chunk("r1", "5")  # its chunk was all done
    now = time.time() + IDLE_S + 1
    assert parts.watch(now).recovered == ["r1"]
    # only the chunk's customers without a result, under the chunk's key
    assert {k: [p["customer"][0] for p in v] for k, v in parts.resent.items()} == {"0": [3, 4]}
    record = parts.ledger.run_record("r1")
    assert (record.recoveries, record.recovery_log) == (1, ("2 customers sent again",))
    assert parts.watch(now + 1) == Watched()  # a re-send is progress: idle counts again
    for attempt in (2, 3):
        now += IDLE_S + 1
        assert parts.watch(now).recovered == ["r1"], attempt
    now += IDLE_S + 1
    assert parts.watch(now).closed == ["r1"]
    summary = parts.store.run_summaries["r1"]
    assert (summary["status"], summary["missing"], summary["recoveries"]) == ("incomplete", 2, 3)
    assert summary["missingCustomerIds"] == [3, 4]
    assert summary["recoveryLog"] == ["2 customers sent again"] * 3
    (alert,) = parts.notifier.alerts
    assert alert.severity == "error"
    assert ("Missing customers", ["3, 4"]) in alert.sections
    assert ("Recovered", ["2 customers sent again"] * 3) in alert.sections
    assert parts.ledger.lock_holder("org-1") is None
    assert parts.watch(now + 7200) == Watched()  # closed once
    assert parts.ledger.record("r1", {"3": synced(3)}) is False  # a late result changes nothing


def test_a_resent_customer_completes_the_run(parts: Parts) -> None:
    open_run(parts, "r1", 5)
    parts.ledger.record("r1", {str(i): synced(i) for i in range(4)})
    assert parts.watch(time.time() + IDLE_S + 1).recovered == ["r1"]
    assert [p["customer"][0] for p in parts.resent["0"]] == [4]
    assert parts.ledger.record("r1", {"4": synced(4)}) is True  # fires the summary once
    assert parts.ledger.record("r1", {"4": synced(4)}) is False


def test_work_waiting_in_the_broker_is_not_lost(parts: Parts) -> None:
    open_run(parts, "r1", 10)
    parts.queued = 3
    parts.ledger.release_lock("org-1", "r1")
    assert parts.watch(time.time() + IDLE_S + 1) == Watched()
    assert parts.ledger.lock_holder("org-1") == "r1"  # the waiting run keeps its org
    # ... until the stall timeout: then it is closed whatever waits
    assert parts.watch(time.time() + STALL_S + 1).closed == ["r1"]
    assert parts.store.run_summaries["r1"]["missing"] == 10


def test_a_lost_planner_is_sent_again_with_the_run_id_and_since(parts: Parts) -> None:
    parts.ledger.acquire_lock("org-1", "r2", 180)
    parts.ledger.start("r2", "org-1", dryRun=1, since="2026-11-01")
    parts.store.write_run_summary("r2", {"runId": "r2", "orgId": "org-1", "status": "running"})
    parts.ledger.claim_planner("r2", holder="p1", stale_s=IDLE_S)
    assert parts.watch(time.time() + IDLE_S + 1).recovered == ["r2"]
    assert parts.replans == [("org-1", "r2", True, "2026-11-01", None)]
    assert parts.ledger.run_record("r2").recovery_log == ("planning sent again",)


def test_a_lost_partial_planner_is_sent_again_with_its_selection(parts: Parts) -> None:
    parts.ledger.acquire_lock("org-1", "p1", 180)
    parts.ledger.start(
        "p1", "org-1", dryRun=0, since="full", selection="first:10", scope="first 10"
    )
    parts.store.write_run_summary("p1", {"runId": "p1", "orgId": "org-1", "status": "running"})
    parts.ledger.claim_planner("p1", holder="p1", stale_s=IDLE_S)
    assert parts.watch(time.time() + IDLE_S + 1).recovered == ["p1"]
    assert parts.replans == [("org-1", "p1", False, None, "first:10")]


def test_a_run_whose_summary_was_lost_is_closed_completed(parts: Parts) -> None:
    open_run(parts, "r3", 2)
    assert parts.ledger.record("r3", {"0": synced(0), "1": synced(1)}) is True  # fired, lost
    assert parts.watch(time.time() + IDLE_S + 1).closed == ["r3"]
    summary = parts.store.run_summaries["r3"]
    assert (summary["status"], summary["synced"], summary["missing"]) == ("completed", 2, 0)
    assert len(parts.notifier.alerts) == 1


def test_a_run_lost_from_redis_is_planned_again_then_reported(parts: Parts) -> None:
    started = time.time() - 7200
    parts.store.write_run_summary(
        "gone",
        {"runId": "gone", "orgId": "org-1", "status": "running", "startedAt": started},
    )
    parts.store.write_run_summary("gone", {"listed": 1000, "since": "full"})
    now = time.time()
    assert parts.watch(now, attempts=1).recovered == ["gone"]
    assert parts.replans == [("org-1", "gone", False, None, None)]
    assert parts.watch(now + 1, attempts=1) == Watched()  # a re-plan is progress
    assert parts.watch(now + IDLE_S + 1, attempts=1).closed == ["gone"]
    summary = parts.store.run_summaries["gone"]
    assert (summary["status"], summary["missing"]) == ("incomplete", 1000)
    assert "lost from Redis" in summary["error"]
    assert summary["alert"] == {"sent": True}
    assert len(parts.notifier.alerts) == 1


def test_a_finished_run_whose_summary_missed_firestore_is_written(parts: Parts) -> None:
    parts.ledger.start("r4", "org-1")
    parts.store.write_run_summary("r4", {"runId": "r4", "orgId": "org-1", "status": "running"})
    parts.ledger.finish(
        "r4", RunStatus.COMPLETED, {"runId": "r4", "status": "completed", "listed": 0}
    )
    assert parts.watch(time.time()) == Watched()
    assert parts.store.run_summaries["r4"]["status"] == "completed"
    assert parts.notifier.alerts == []
