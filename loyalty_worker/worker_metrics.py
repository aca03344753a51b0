"""The worker process's metrics endpoint and the Celery signals that feed it.

At worker start the process serves its registry (``adapters.metrics.REGISTRY``) on
``LOYALTY_METRICS_PORT`` (9808 by default; unset or 0: off). Every worker process serves its own:
a second process on a host is given another port (9809, ...), and a port already taken stops the
worker, naming it. Tasks are timed from ``task_prerun`` to ``task_postrun`` by outcome (success,
failure, retry); ``task_retry`` counts the retries; every message sent from a process of the
project carries its publish time (the queues' oldest-message age reads it). Importing the
module connects the signals (``celery_app`` does).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    task_retry,
    worker_init,
)
from prometheus_client import start_http_server

from loyalty_worker import bootstrap, names
from loyalty_worker.adapters import metrics
from loyalty_worker.adapters.publisher import PUBLISHED_AT_HEADER
from loyalty_worker.adapters.worker_collectors import (
    FairShareCollector,
    QueueCollector,
    RunsCollector,
)
from loyalty_worker.config import Settings, get_settings

log = logging.getLogger(__name__)

# Celery's final task states, as the metrics name them.
_OUTCOMES = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry"}
_started: dict[str, float] = {}  # task id → perf_counter at prerun (one process, many threads)
_collectors_registered = False


def serve(settings: Settings) -> int | None:
    """Serve the process's metrics on ``settings.metrics_port``; the port, or None when off.

    A port already taken stops the worker (``SystemExit``, which Celery's signal dispatch does not
    swallow): two processes answering as one would hide one of them from Prometheus.
    """
    port = settings.metrics_port
    if not port:
        return None
    _register_collectors()
    try:
        start_http_server(port, registry=metrics.REGISTRY)
    except OSError as exc:
        raise SystemExit(
            f"loyalty worker not started: LOYALTY_METRICS_PORT {port} is taken ({exc.strerror}); "
            "give each worker process of a host its own port (9808, 9809, ...) or 0 for none"
        ) from exc
    log.info("metrics on :%d/metrics", port)
    return port


def _register_collectors() -> None:
    global _collectors_registered  # once per process
    if _collectors_registered:
        return
    metrics.REGISTRY.register(
        QueueCollector(lambda: bootstrap.container().redis, names.WORKER_QUEUES)
    )
    metrics.REGISTRY.register(FairShareCollector(lambda: bootstrap.container().fair_share))
    metrics.REGISTRY.register(RunsCollector(lambda: bootstrap.container().tracker))
    _collectors_registered = True


@worker_init.connect
def _serve_at_worker_start(**_: Any) -> None:
    # Each worker process its own endpoint on LOYALTY_METRICS_PORT; a port taken stops it.
    serve(get_settings())


@task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id is not None:
        _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_ended(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    started = _started.pop(task_id, None) if task_id is not None else None
    if started is None or task is None:
        return
    outcome = _OUTCOMES.get(state or "", "failure")
    metrics.TASK_DURATION.labels(str(task.name), outcome).observe(time.perf_counter() - started)


@task_retry.connect
def _task_retried(**_: Any) -> None:
    metrics.RETRIES.labels("task").inc()


@before_task_publish.connect
def _stamp_published_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # Beat's entries and any send of this process's app: the same header as TaskPublisher's.
    if headers is not None:
        headers.setdefault(PUBLISHED_AT_HEADER, time.time())
