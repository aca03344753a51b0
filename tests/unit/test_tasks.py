"""The Celery tasks are wiring: registered under the shared names, routed to the shared queues,
each calling its one service, a service's RetryLater becoming a Celery retry.

Tasks run here through ``Task.apply`` (eager, in process) with the services replaced: this
checks the wiring only. What the services do is tested over fakes in their own modules, and a
real worker answers a plain client in ``tests/integration/test_public_client.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
from celery import Task

from loyalty_worker import names, tasks
from loyalty_worker.adapters.fair_share import RedisFairShare
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.celery_app import app as celery_app
from loyalty_worker.config import Settings
from loyalty_worker.domain.models import Customer
from loyalty_worker.domain.results import SyncResult, SyncStatus
from loyalty_worker.domain.run import RunStatus
from loyalty_worker.errors import TransientError
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.run import WorkPayload
from loyalty_worker.services.run.context import BatchStart, RunDispatch
from loyalty_worker.services.run.heartbeat import Heartbeat
from loyalty_worker.services.run.history_slices import HistorySlice
from loyalty_worker.services.run.start import Asked
from loyalty_worker.services.sync.inputs import CustomerWork
from loyalty_worker.services.sync.retries import Attempt, RetryLater
from tests.fakes import InMemoryProfileStore, InMemoryRunPhones, RecordingNotifier
from tests.published import Published

PHONE = "(555) 123-4567"
TASKS: dict[str, Task] = {
    names.SYNC_ORG: tasks.sync_org,
    names.SYNC_CUSTOMER: tasks.sync_customer,
    names.SYNC_CHUNK: tasks.sync_chunk,
    names.READ_ORDERS: tasks.read_orders,
    names.SUMMARIZE_RUN: tasks.summarize_run,
    names.NIGHTLY_TICK: tasks.nightly_tick,
    names.INCREMENTAL_TICK: tasks.incremental_tick,
    names.WATCHDOG: tasks.watchdog,
    names.SWEEP_AUDIT: tasks.sweep_audit,
}


@dataclass
class FakeContainer:
    """What the tasks take from ``bootstrap.container()``."""

    settings: Settings = field(default_factory=lambda: Settings(sync_max_retries=2))
    store: InMemoryProfileStore = field(default_factory=InMemoryProfileStore)
    client: fakeredis.FakeRedis = field(default_factory=fakeredis.FakeRedis)
    tracker: RunTracker = field(init=False)
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)
    run_phones: InMemoryRunPhones = field(default_factory=InMemoryRunPhones)
    heartbeat: Heartbeat = field(init=False)

    def __post_init__(self) -> None:
        self.tracker = RunTracker(self.client)
        self.heartbeat = Heartbeat(self.tracker, interval_s=10.0, lock_ttl_s=180)
        self.fair_share = RedisFairShare(self.client, batch_queue=names.BATCH_QUEUE, ttl_s=3600)

    fair_share: RedisFairShare = field(init=False)

    def queued_messages(self) -> int:
        return 0

    def org(self, org_id: str) -> SimpleNamespace:
        return SimpleNamespace(settings=OrgSettings(org_id=org_id))

    def run_ports(self) -> str:
        return "ports"  # passed through untouched

    def notifier_for(self, org_id: str) -> RecordingNotifier:
        return self.notifier


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> FakeContainer:
    fake = FakeContainer()
    monkeypatch.setattr(tasks, "container", lambda: fake)
    return fake


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Iterator[Published]:
    """What the tasks publish, read back from an in-memory broker."""
    with Published().recording() as published:
        monkeypatch.setattr(tasks, "publisher", published.publisher)
        yield published


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_task_has_its_shared_name_and_queue(name: str) -> None:
    task = TASKS[name]
    assert task.name == name
    # The module's task is a proxy of the app's registered one.
    assert celery_app.tasks[name] is task._get_current_object()
    route = celery_app.amqp.router.route({}, name)
    assert route["queue"].name == names.TASK_ROUTES[name]["queue"]


def test_workers_read_every_queue_a_task_is_routed_to_and_celerys_default() -> None:
    queues = {queue.name for queue in celery_app.conf.task_queues}
    assert queues == set(names.WORKER_QUEUES)
    assert {route["queue"] for route in names.TASK_ROUTES.values()} <= queues
    assert names.PUBLIC_QUEUE == "celery" and names.PUBLIC_QUEUE in queues


def test_sync_org_calls_start_run_and_publishes_what_it_dispatches(
    container: FakeContainer, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def start_run(org_id: str, run_id: str, asked: Asked, **kwargs: Any) -> BatchStart:
        calls.append({"org_id": org_id, "run_id": run_id, "asked": asked, **kwargs})
        dispatch: RunDispatch = kwargs["dispatch"]
        dispatch.enqueue([CustomerWork(Customer(7, None)), CustomerWork(Customer(8, PHONE))])
        dispatch.summarize("failed")
        return BatchStart(run_id, started=True, listed=2)

    monkeypatch.setattr(tasks, "start_run", start_run)
    answer = tasks.sync_org.apply(("org-1",), {"run_id": "r1", "since": "last"}).get()
    assert answer == {"runId": "r1", "started": True, "listed": 2, "message": ""}
    (call,) = calls
    assert (call["org_id"], call["run_id"], call["asked"]) == ("org-1", "r1", Asked(since="last"))
    assert call["ports"] == "ports"
    assert call["last_success"] == container.tracker.last_success
    chunk, summary = published.sent
    assert chunk.name == names.SYNC_CHUNK
    assert chunk.args[:2] == ("org-1", "r1")
    assert CustomerWork.from_payload(chunk.args[2][0]).customer.customer_id == 7
    # the phone to look up is kept beside the message, not in it; Flower shows a count
    assert "5551234567" not in str(chunk)
    assert container.run_phones.runs == {"r1": {8: "5551234567"}}
    assert chunk.shown == ("('org-1', 'r1', '<2 customers>')", "{'dry_run': False, 'chunk': '7'}")
    # kept under its key until its results are in: what the watchdog sends again if lost
    assert chunk.kwargs == {"dry_run": False, "chunk": "7"}
    assert container.tracker.kept_chunks("r1") == {"7": chunk.args[2]}
    assert (summary.name, summary.args, summary.kwargs) == (
        names.SUMMARIZE_RUN,
        ("r1",),
        {"status": "failed"},
    )
    assert summary.shown[0] == "('r1',)"


def test_a_slice_of_the_history_is_published_for_any_worker_and_read_there(
    container: FakeContainer, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatch: list[RunDispatch] = []

    def start_run(org_id: str, run_id: str, _asked: Asked, **kwargs: Any) -> BatchStart:
        dispatch.append(kwargs["dispatch"])
        return BatchStart(run_id, started=True)

    monkeypatch.setattr(tasks, "start_run", start_run)
    tasks.sync_org.apply(("org-1",), {"run_id": "r1"}).get()
    read_orders = dispatch[0].read_orders
    assert read_orders is not None
    read_orders(HistorySlice("org-1", "r1", date(2025, 1, 1), date(2025, 3, 31), 2, 8))
    (sent,) = published.sent
    args = ("org-1", "r1", "2025-01-01", "2025-03-31", 2, 8)
    assert (sent.name, sent.args, sent.kwargs) == (names.READ_ORDERS, args, {})
    # a copy that comes after the plan's budget finds no planner to read for
    budget = container.settings.plan_budget_s
    assert sent.expires_in_s is not None and budget - 10 < sent.expires_in_s <= budget
    assert sent.ignore_result

    read: list[tuple[HistorySlice, Any]] = []

    def read_run_orders(part: HistorySlice, ports: Any) -> bool:
        read.append((part, ports))
        return True

    monkeypatch.setattr(tasks, "read_run_orders", read_run_orders)
    assert tasks.read_orders.apply(args).get() is True
    assert read == [
        (HistorySlice("org-1", "r1", date(2025, 1, 1), date(2025, 3, 31), 2, 8), "ports")
    ]


def test_sync_org_names_a_new_run_when_none_is_given(
    container: FakeContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        tasks, "start_run", lambda org_id, run_id, _asked, **_: BatchStart(run_id, started=False)
    )
    answer = tasks.sync_org.apply(("org-9",)).get()
    assert answer["runId"].startswith("org-9-")


def test_sync_customer_retries_through_celery_while_the_service_asks(
    container: FakeContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[Attempt] = []
    payloads: list[WorkPayload | None] = []

    def sync_alone(org_id: str, customer_id: int, **kwargs: Any) -> SyncResult:
        attempts.append(kwargs["job"].attempt)
        payloads.append(kwargs["payload"])
        if len(attempts) < 3:
            raise RetryLater(TransientError("alpine", "503"), countdown=len(attempts))
        return SyncResult(org_id, customer_id, SyncStatus.SYNCED, "2026-03-01T00:00:00+00:00")

    monkeypatch.setattr(tasks, "sync_alone", sync_alone)
    work: WorkPayload = {"customer": [5, None, None], "orders": []}
    result = tasks.sync_customer.apply(("org-1", 5), {"work": work})
    assert result.get() == {
        "success": True,
        "status": "synced",
        "orgId": "org-1",
        "customerId": 5,
        "updatedAt": "2026-03-01T00:00:00+00:00",
        "dryRun": False,
    }
    assert payloads == [work] * 3
    assert [(a.retries, a.max_retries) for a in attempts] == [(0, 2), (1, 2), (2, 2)]


def test_sync_chunk_hands_customers_on_as_sync_customer_tasks(
    container: FakeContainer, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    def sync_run_chunk(org_id: str, run_id: str, payloads: Any, **kwargs: Any) -> dict[str, int]:
        kwargs["retry_alone"](CustomerWork.from_payload(payloads[0]))
        kwargs["job"].close_run(run_id)
        return {"results": 0, "retried": 1}

    monkeypatch.setattr(tasks, "sync_run_chunk", sync_run_chunk)
    payload = CustomerWork(Customer(3, None)).to_payload()
    counts = tasks.sync_chunk.apply(("org-1", "r1", [payload]), {"dry_run": True}).get()
    assert counts == {"results": 0, "retried": 1}
    alone, summary = published.sent
    assert (alone.name, alone.args, alone.kwargs) == (
        names.SYNC_CUSTOMER,
        ("org-1", 3),
        {"run_id": "r1", "dry_run": True, "work": payload},
    )
    assert alone.shown == (
        "('org-1', 3)",
        "{'run_id': 'r1', 'dry_run': True, 'work': '<customer 3>'}",
    )
    assert (summary.name, summary.args) == (names.SUMMARIZE_RUN, ("r1",))


def test_a_retry_keeps_the_names_its_message_was_sent_with() -> None:
    """A worker's request holds the message's argsrepr/kwargsrepr; the retry is sent with them
    (Celery would otherwise show the retried arguments in full)."""
    retried: list[dict[str, Any]] = []
    shown = {"argsrepr": "('org-1', 5)", "kwargsrepr": "{'work': '<customer 5>'}"}

    class Running:
        request = SimpleNamespace(**shown)

        def retry(self, **options: Any) -> Exception:
            retried.append(options)
            return RuntimeError("retried")

    with pytest.raises(RuntimeError, match="retried"), tasks._retried(Running()):
        raise RetryLater(TransientError("alpine", "503"), countdown=4)
    (options,) = retried
    assert options["countdown"] == 4
    assert {k: options[k] for k in shown} == shown


def test_summarize_run_forgets_the_runs_phones(
    container: FakeContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    container.run_phones.keep("r1", {8: "5551234567"})
    monkeypatch.setattr(tasks, "close_run", lambda run_id, **_: {"runId": run_id})
    assert tasks.summarize_run.apply(("r1",)).get() == {"runId": "r1"}
    assert container.run_phones.runs == {}


def test_summarize_run_calls_close_run(
    container: FakeContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def close_run(run_id: str, **kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"runId": run_id}

    monkeypatch.setattr(tasks, "close_run", close_run)
    assert tasks.summarize_run.apply(("r1",), {"status": "failed"}).get() == {"runId": "r1"}
    (call,) = calls
    assert call["status"] == "failed"
    assert call["notifier_for"]("org-1") is container.notifier
    assert call["attempt"].cap_s == tasks.SUMMARY_BACKOFF_CAP_S
    assert call["status"] is RunStatus.FAILED


def test_nightly_tick_starts_the_orgs_the_schedule_names(
    container: FakeContainer, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    def start_nightly_runs(**kwargs: Any) -> list[str]:
        assert kwargs["hour"] == container.settings.nightly_hour
        assert kwargs["window_h"] == container.settings.nightly_window_h
        kwargs["start"]("org-1")
        return ["org-1"]

    monkeypatch.setattr(tasks, "start_nightly_runs", start_nightly_runs)
    assert tasks.nightly_tick.apply().get() == ["org-1"]
    (sent,) = published.sent
    # the run id travels in the message: a redelivered planner continues the same run
    assert (sent.name, sent.args, sent.kwargs["run_id"][:6]) == (
        names.SYNC_ORG,
        ("org-1",),
        "org-1-",
    )
    assert sent.shown == ("('org-1',)", repr(sent.kwargs))
    assert sent.expires_in_s is not None and 3590 < sent.expires_in_s <= 3600
    # started as every run is: readable before a worker takes it
    assert container.tracker.progress(sent.kwargs["run_id"]).status == "queued"


def test_the_incremental_tick_starts_every_org_from_its_last_success(
    container: FakeContainer, published: Published
) -> None:
    container.store.settings = {"org-1": {}, "org-2": {}}
    assert tasks.incremental_tick.apply().get() == ["org-1", "org-2"]
    assert [(sent.args, sent.kwargs["since"]) for sent in published.sent] == [
        (("org-1",), "last"),
        (("org-2",), "last"),
    ]
    for sent in published.sent:
        assert sent.expires_in_s is not None and 590 < sent.expires_in_s <= 600
        assert container.tracker.progress(sent.kwargs["run_id"]).status == "queued"


def test_the_watchdog_sends_a_dead_planner_again_with_its_run_id(
    container: FakeContainer, published: Published
) -> None:
    started = time.time() - 2 * container.settings.redispatch_s
    container.tracker.start("r9", "org-1", dryRun=0, since="2026-11-01", startedAt=started)
    container.store.write_run_summary(
        "r9", {"runId": "r9", "orgId": "org-1", "status": "running", "startedAt": started}
    )
    assert tasks.watchdog.apply().get() == {"recovered": ["r9"], "closed": []}
    (sent,) = published.sent
    assert (sent.name, sent.args) == (names.SYNC_ORG, ("org-1",))
    assert sent.kwargs == {"run_id": "r9", "dry_run": False, "since": "2026-11-01"}
    assert sent.shown[1] == repr(sent.kwargs)
    assert container.tracker.lock_holder("org-1") == "r9"  # the run keeps its org
