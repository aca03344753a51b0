"""Each task's lines carry the ids its arguments name (``celery_app``'s ``task_prerun`` and
``task_postrun``): set when the task starts, gone when it ends, whatever it bound meanwhile.

Tasks run through ``Task.apply`` (eager, in this thread): Celery sends the same signals around
them as a worker's thread does. The threads pool itself is in the integration test
(``tests/integration/test_log_join.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from celery import Task

from loyalty_worker import log_context, tasks
from loyalty_worker.celery_app import task_log_context
from loyalty_worker.domain.results import SyncResult, SyncStatus
from loyalty_worker.services.run.context import BatchStart
from tests.unit.test_tasks import FakeContainer

PAYLOAD = {"customer": [5, "***-***-4567", None], "orders": []}


@pytest.mark.parametrize(
    ("task", "args", "kwargs", "ids"),
    [
        (tasks.sync_org, ["org-1"], {"run_id": "r1"}, {"org_id": "org-1", "run_id": "r1"}),
        (tasks.sync_org, ["org-1"], {}, {"org_id": "org-1"}),
        (
            tasks.sync_chunk,
            ["org-1", "r1", [PAYLOAD]],
            {"chunk": "5"},
            {"org_id": "org-1", "run_id": "r1"},
        ),
        (
            tasks.sync_customer,
            ["org-1", 5],
            {"run_id": "r1", "work": PAYLOAD},
            {"org_id": "org-1", "customer_id": "5", "run_id": "r1"},
        ),
        (tasks.sync_customer, ["org-2", 7], {}, {"org_id": "org-2", "customer_id": "7"}),
        (
            tasks.read_orders,
            ["org-1", "r1", "2025-01-01", "2025-03-31", 0, 4],
            {},
            {"org_id": "org-1", "run_id": "r1"},
        ),
        (tasks.summarize_run, ["r1"], {"status": "completed"}, {"run_id": "r1"}),
        (tasks.nightly_tick, [], {}, {}),
        (tasks.sync_org, [], {"unknown": 1}, {}),  # refused by the task itself
    ],
)
def test_a_task_names_the_ids_its_arguments_hold(
    task: Task, args: list[Any], kwargs: dict[str, Any], ids: dict[str, str]
) -> None:
    assert task_log_context(task, args, kwargs) == ids


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> FakeContainer:
    fake = FakeContainer()
    monkeypatch.setattr(tasks, "container", lambda: fake)
    return fake


def test_a_task_runs_in_its_own_context_and_leaves_none_behind(
    container: FakeContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Mapping[str, str]] = []

    def sync_alone(org_id: str, customer_id: int, **_: Any) -> SyncResult:
        seen.append(log_context.current())
        log_context.bind(run_id="bound-by-the-service")  # gone with the task
        seen.append(log_context.current())
        return SyncResult(org_id, customer_id, SyncStatus.SYNCED, "2026-03-01T00:00:00+00:00")

    monkeypatch.setattr(tasks, "sync_alone", sync_alone)
    with log_context.bound(run_id="outer", org_id="org-outer"):
        result = tasks.sync_customer.apply(("org-1", 5), task_id="t-1")
        assert log_context.current() == {"run_id": "outer", "org_id": "org-outer"}
    result.get()
    tasks.sync_customer.apply(("org-2", 6), task_id="t-2").get()
    assert log_context.current() == {}
    first, bound, second, _ = seen
    assert first == {
        "task_id": "t-1",
        "task_name": "loyalty.sync_customer",
        "org_id": "org-1",
        "customer_id": "5",
    }
    assert bound == {**first, "run_id": "bound-by-the-service"}
    assert second == {**first, "task_id": "t-2", "org_id": "org-2", "customer_id": "6"}


def test_a_planner_sent_without_a_run_id_carries_the_one_it_names(
    container: FakeContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``start_run`` binds the run id the task made up: its lines and the rest of the task's."""
    from loyalty_worker.services.run import start

    seen: list[Mapping[str, str]] = []

    def start_batch(request: Any, *_: Any) -> BatchStart:
        seen.append(log_context.current())
        return BatchStart(request.run_id, started=False)

    monkeypatch.setattr(start, "start_batch", start_batch)
    monkeypatch.setattr(tasks, "start_run", _start_run_without_ports(start))
    answer = tasks.sync_org.apply(("org-9",)).get()
    (context,) = seen
    assert context["run_id"] == answer["runId"] and context["org_id"] == "org-9"
    assert context["task_name"] == "loyalty.sync_org"


def _start_run_without_ports(start: Any) -> Any:
    """``start_run`` over ports that find every org (the fake container hands out none)."""

    class Ports:
        ledger = None

        def org_for(self, org_id: str) -> object:
            return object()

    def start_run(org_id: str, run_id: str, *args: Any, **kwargs: Any) -> BatchStart:
        result: BatchStart = start.start_run(org_id, run_id, *args, **{**kwargs, "ports": Ports()})
        return result

    return start_run
