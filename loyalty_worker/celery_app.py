"""The Celery app: ``celery -A loyalty_worker.celery_app worker|beat|flower``."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from celery import Celery, Task
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
)

from loyalty_worker import (  # noqa: F401 (worker_metrics: its signals)
    bootstrap,
    broker,
    lanes,
    log_context,
    logs,
    worker_metrics,
)
from loyalty_worker.config import get_settings
from loyalty_worker.deadlines import check_at_worker_start

broker.install()  # a worker must survive Redis restarting under it (``broker``)

app = Celery("loyalty_worker")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["loyalty_worker"], related_name="tasks", force=True)
app.steps["consumer"].add(lanes.InteractiveLanes)  # threads kept for people's syncs


@worker_process_init.connect
def _fresh_clients_per_process(**_: Any) -> None:
    # A prefork child must not reuse its parent's sockets or gRPC channels.
    bootstrap.reset()


@worker_init.connect
def _deadlines_hold_together(**_: Any) -> None:
    # The threads pool enforces no time limit: the tasks' own bounds must fit the timeouts.
    check_at_worker_start(get_settings(), logging.getLogger(__name__))


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redacted_logs(logger: logging.Logger, **_: Any) -> None:
    # Celery has set up its handlers: every line they write is redacted (and JSON if asked).
    logs.install(logger, json_format=get_settings().log_format == "json")


# The task arguments that name the work, on every line the task logs (``log_context``):
# ``sync_org(org_id, run_id=...)``, ``sync_chunk(org_id, run_id, ...)``,
# ``sync_customer(org_id, customer_id, run_id=...)``, ``read_orders(org_id, run_id, ...)``,
# ``summarize_run(run_id)``. Found by name in the task's signature, so a task added later that
# takes them needs nothing here. None of them is ever a phone or a name.
_CONTEXT_ARGUMENTS = ("org_id", "run_id", "customer_id")
# Where a running task keeps the token of its context: on its request, which Celery pushes
# before ``task_prerun`` and pops after ``task_postrun``, in the thread that runs the task.
_REQUEST_ATTRIBUTE = "loyalty_log_context"


@cache
def _signature(task: Task) -> inspect.Signature:
    return inspect.signature(task.run)


def task_log_context(
    task: Task, args: Sequence[object], kwargs: Mapping[str, object]
) -> dict[str, str]:
    """The ids a task's arguments name (``_CONTEXT_ARGUMENTS``), found by its signature."""
    try:
        given = _signature(task).bind_partial(*args, **kwargs).arguments
    except TypeError:  # arguments the task refuses: it fails on its own, without these ids
        return {}
    return {
        name: str(value)
        for name in _CONTEXT_ARGUMENTS
        if isinstance(value := given.get(name), str | int)
    }


@task_prerun.connect
def _task_log_context(
    task_id: str, task: Task, args: Sequence[object], kwargs: Mapping[str, object], **_: Any
) -> None:
    # A fresh scope, whatever an earlier task on this thread left: the task's own ids only.
    ids = task_log_context(task, args or (), kwargs or {})
    token = log_context.begin(task_id=task_id, task_name=task.name, **ids)
    setattr(task.request, _REQUEST_ATTRIBUTE, token)


@task_postrun.connect
def _task_log_context_closed(task: Task, **_: Any) -> None:
    # The thread goes back to the pool: its next task, or its idle lines, carry nothing of this.
    token = getattr(task.request, _REQUEST_ATTRIBUTE, None)
    if token is not None:
        log_context.end(token)
