"""The Celery app: ``celery -A loyalty_worker.celery_app worker|beat|flower``."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from loyalty_worker import bootstrap

app = Celery("loyalty_worker")
app.config_from_object("celeryconfig")
app.autodiscover_tasks(["loyalty_worker"], related_name="tasks", force=True)


@worker_process_init.connect
def _fresh_clients_per_process(**_: Any) -> None:
    # A prefork child must not reuse its parent's sockets or gRPC channels.
    bootstrap.reset()
