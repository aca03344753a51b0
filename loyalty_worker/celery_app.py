"""The Celery app: ``celery -A loyalty_worker.celery_app worker|beat|flower``."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_init,
    worker_process_init,
)

from loyalty_worker import bootstrap, broker, lanes, logs, worker_metrics  # noqa: F401 (signals)
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
