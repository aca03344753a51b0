"""Every task message goes out here, by the names and queues in ``names``, each shown by what it
names rather than what it carries.

The workers, Beat's ticks, the API, the dashboard, the CLI, the demo and
``enqueue_customer_sync`` all publish through ``TaskPublisher``: by name with ``send_task``, so
a process that only publishes (the API) imports no task code and builds no worker. Each message
names its arguments for display (``argsrepr``/``kwargsrepr``: what Flower and the workers' logs
show), so a chunk shows as a count of customers and a customer's work as its id, never a phone.
A broker that refuses a message is a ``TransientError`` ("broker"), whoever publishes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import cast

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from loyalty_worker import names
from loyalty_worker.errors import TransientError
from loyalty_worker.ports.run import WorkPayload

# Every message says when it was sent (unix seconds): the workers' metrics report the age of a
# queue's oldest message from it (``worker_collectors``). A message another service sends without
# it counts in its queue's depth but gives no age.
PUBLISHED_AT_HEADER = "published_at"

# A JSON value: what a message carries (the workers accept JSON only).
Json = str | int | float | bool | None | list["Json"] | dict[str, "Json"]


def broker_app(redis_url: str) -> Celery:
    """A publish-only Celery app on the workers' broker, JSON like the workers expect."""
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


@dataclass(frozen=True)
class _Message:
    """One task message: the task's arguments, how they are shown, and how it is delivered."""

    name: str
    args: tuple[Json, ...]
    kwargs: dict[str, Json] = field(default_factory=dict)
    # What Flower shows instead of the arguments (None: the arguments themselves).
    shown_args: tuple[Json, ...] | None = None
    shown_kwargs: dict[str, Json] | None = None
    countdown_s: float | None = None
    expires_s: float | None = None
    ignore_result: bool = False
    # Where it goes when not where its task is routed (``names.TASK_ROUTES``).
    queue: str | None = None


def _json(payload: WorkPayload) -> Json:
    """A customer's work as the JSON it is (rows of plain values, amounts as text)."""
    return cast(Json, payload)


class TaskPublisher:
    """``ports.triggers.Enqueuer``, and every message a run hands on, over a Celery app."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def sync_org(
        self,
        org_id: str,
        *,
        run_id: str,
        dry_run: bool = False,
        since: str | None = None,
        expires_s: float | None = None,
        selection: str | None = None,
    ) -> None:
        """An org's planner for ``run_id`` (``since``: an incremental run's start, when given;
        ``selection``: a partial run's customers, as ids); a message no worker took within
        ``expires_s`` is dropped."""
        kwargs: dict[str, Json] = {"run_id": run_id, "dry_run": dry_run}
        if since is not None:
            kwargs["since"] = since
        if selection is not None:
            kwargs["selection"] = selection
        self._send(_Message(names.SYNC_ORG, (org_id,), kwargs, expires_s=expires_s))

    def sync_customer(
        self, org_id: str, customer_id: int, *, dry_run: bool = False, delay_s: float = 0.0
    ) -> str:
        """One customer's sync, on its own, after ``delay_s``; its task id."""
        return self._send(
            _Message(
                names.SYNC_CUSTOMER,
                (org_id, customer_id),
                {"dry_run": dry_run},
                countdown_s=delay_s or None,
            )
        )

    def sync_run_customer(
        self, org_id: str, run_id: str, customer_id: int, work: WorkPayload, *, dry_run: bool
    ) -> None:
        """A run's customer synced on its own after its chunk could not (its ``work`` payload
        holds no phone), a second later: shown by its id, not its work. Batch work: it goes
        with the chunks, not ahead of people's syncs."""
        kwargs: dict[str, Json] = {"run_id": run_id, "dry_run": dry_run}
        self._send(
            _Message(
                names.SYNC_CUSTOMER,
                (org_id, customer_id),
                {**kwargs, "work": _json(work)},
                shown_kwargs={**kwargs, "work": f"<customer {customer_id}>"},
                countdown_s=1,
                ignore_result=True,
                queue=names.BATCH_QUEUE,
            )
        )

    def sync_chunk(
        self,
        org_id: str,
        run_id: str,
        dry_run: bool,
        key: str,
        payloads: Sequence[WorkPayload],
    ) -> None:
        """A chunk of a run's customers (``key``: its first customer's id, under which the run
        keeps it), shown as a count of customers."""
        kwargs: dict[str, Json] = {"dry_run": dry_run, "chunk": key}
        self._send(
            _Message(
                names.SYNC_CHUNK,
                (org_id, run_id, [_json(payload) for payload in payloads]),
                kwargs,
                shown_args=(org_id, run_id, f"<{len(payloads)} customers>"),
                ignore_result=True,
            )
        )

    def read_orders(
        self,
        org_id: str,
        run_id: str,
        start: date,
        end: date,
        index: int,
        count: int,
        *,
        expires_s: float,
    ) -> None:
        """Slice ``index`` of ``count`` of a run's order history, for any worker to read for its
        planner; past ``expires_s`` (the plan's budget) the planner has given up on it."""
        args = (org_id, run_id, start.isoformat(), end.isoformat(), index, count)
        self._send(_Message(names.READ_ORDERS, args, expires_s=expires_s, ignore_result=True))

    def summarize_run(self, run_id: str, status: str = "completed") -> None:
        """The run's summary and its one alert, once its results are all in (or it ends)."""
        self._send(_Message(names.SUMMARIZE_RUN, (run_id,), {"status": status}))

    def _send(self, message: _Message) -> str:
        args = message.shown_args if message.shown_args is not None else message.args
        kwargs = message.shown_kwargs if message.shown_kwargs is not None else message.kwargs
        try:
            result = self._app.send_task(
                message.name,
                args=message.args,
                kwargs=message.kwargs,
                queue=message.queue or names.TASK_ROUTES[message.name]["queue"],
                countdown=message.countdown_s,
                expires=message.expires_s,
                ignore_result=message.ignore_result,
                argsrepr=repr(args),
                kwargsrepr=repr(kwargs),
                headers={PUBLISHED_AT_HEADER: time.time()},
            )
        except (OperationalError, redis.RedisError, OSError) as exc:
            raise TransientError(
                "broker", f"could not enqueue {message.name}: {type(exc).__name__}"
            ) from exc
        return str(result.id)
