"""Task messages as a broker gets them, without a broker process: a real Celery app on kombu's
in-memory transport, each message read back as Celery wrote it (``before_task_publish``).

A test sees what a worker would: the task's name, its queue, its arguments, the names Flower
shows (``argsrepr``/``kwargsrepr``) and the delivery options (expiry, countdown, results).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from celery.signals import before_task_publish

from loyalty_worker.adapters.publisher import TaskPublisher


@dataclass(frozen=True)
class Sent:
    """One published message."""

    name: str
    queue: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    headers: dict[str, Any]

    @property
    def shown(self) -> tuple[str, str]:
        """What Flower shows: ``(argsrepr, kwargsrepr)``."""
        return self.headers["argsrepr"], self.headers["kwargsrepr"]

    def _seconds_to(self, header: str) -> float | None:
        value = self.headers.get(header)
        if value is None:
            return None
        return (datetime.fromisoformat(value) - datetime.now(UTC)).total_seconds()

    @property
    def expires_in_s(self) -> float | None:
        """Seconds until the message expires (None: never)."""
        return self._seconds_to("expires")

    @property
    def countdown_s(self) -> float | None:
        """Seconds until a worker may run it (None: at once)."""
        return self._seconds_to("eta")

    @property
    def ignore_result(self) -> bool:
        return bool(self.headers.get("ignore_result"))


class Published:
    """The messages a ``TaskPublisher`` over an in-memory broker sent, in order."""

    def __init__(self) -> None:
        app = Celery("tests", broker="memory://")
        app.conf.update(task_serializer="json", accept_content=["json"])
        self.publisher = TaskPublisher(app)
        self.sent: list[Sent] = []

    def _record(
        self,
        sender: str,
        body: tuple[list[Any], dict[str, Any], dict[str, Any]],
        routing_key: str,
        headers: dict[str, Any],
        **_: object,
    ) -> None:
        args, kwargs, _embed = body
        self.sent.append(Sent(sender, routing_key, tuple(args), kwargs, dict(headers)))

    @contextmanager
    def recording(self) -> Iterator[Published]:
        before_task_publish.connect(self._record, weak=False)
        try:
            yield self
        finally:
            before_task_publish.disconnect(self._record)
