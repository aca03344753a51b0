"""Enqueue the worker's tasks by name through the broker: the API never runs a sync itself.

The API needs nothing of the tasks but their names and queues (as in ``celeryconfig``), so it
publishes with ``send_task`` on a bare Celery app: no task module is imported, no worker is built.
"""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from loyalty_worker.errors import TransientError
from loyalty_worker.names import CUSTOMERS_QUEUE, RUNS_QUEUE, SYNC_CUSTOMER, SYNC_ORG


def broker_app(redis_url: str) -> Celery:
    """A publish-only Celery app on the worker's broker, JSON like the worker expects."""
    app = Celery("loyalty_api", broker=redis_url, backend=redis_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # Fail a publish within seconds when Redis is down: the caller gets a 503, not a hang.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0.1,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
        broker_connection_timeout=3.0,
    )
    return app


class CeleryEnqueuer:
    """``ports.Enqueuer`` over a Celery app's ``send_task``."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def sync_org(self, org_id: str, *, run_id: str, dry_run: bool) -> None:
        self._send(SYNC_ORG, [org_id], {"run_id": run_id, "dry_run": dry_run}, RUNS_QUEUE)

    def sync_customer(
        self, org_id: str, customer_id: int, *, dry_run: bool = False, delay_s: float = 0.0
    ) -> str:
        return self._send(
            SYNC_CUSTOMER,
            [org_id, customer_id],
            {"dry_run": dry_run},
            CUSTOMERS_QUEUE,
            countdown=delay_s or None,
        )

    def _send(
        self,
        name: str,
        args: list[Any],
        kwargs: dict[str, Any],
        queue: str,
        countdown: float | None = None,
    ) -> str:
        try:
            result = self._app.send_task(
                name, args=args, kwargs=kwargs, queue=queue, countdown=countdown
            )
        except (OperationalError, redis.RedisError, OSError) as exc:
            raise TransientError(
                "broker", f"could not enqueue {name}: {type(exc).__name__}"
            ) from exc
        return str(result.id)
