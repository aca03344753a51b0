"""Interactive work first: a worker process keeps threads that never take batch work.

People and other services send single-customer syncs (Sync Now, webhooks, ``send_task``) to
``names.INTERACTIVE_QUEUES``; a run's planning and chunks go to the other queues. A worker
process reads every queue, but:

- each time it asks Redis for a message (kombu's ``BRPOP`` over the queues, in the order its
  channel's queue cycle gives), the interactive queues come first, so a waiting person's sync is
  taken before any chunk;
- once ``concurrency - LOYALTY_INTERACTIVE_THREADS`` of its tasks hold batch messages, it asks
  for interactive messages only, until one of them ends: those threads stay free for people.

The count is taken from Celery's own record of the process's reserved requests (every message
taken and not yet done, by the queue it came from), in the consumer's thread, just before each
``BRPOP``: the message a ``BRPOP`` brings is reserved before the next one is sent, so the
process never holds more batch messages than its batch threads. A batch thread that frees up is
seen at the consumer's next ``BRPOP``: the channel's ``BRPOP`` waits ``POLL_S`` (50 ms, kombu's
default is 1 s) before it is sent again, so a freed batch thread idles no longer. (At a quarter
second, a lane of short chunks, 25 customers at 40 ms, stood empty for half of a run.)

The process's metrics say it too (``LanesCollector``): the batch messages it holds now beside its
batch threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from celery import bootsteps
from celery.worker import state
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loyalty_worker import names
from loyalty_worker.adapters import metrics
from loyalty_worker.config import get_settings

log = logging.getLogger(__name__)

# How long one BRPOP of the task channel waits for a message before it is sent again (with the
# queues the cycle then gives): at most how long a batch thread that freed up stays idle. An
# idle process sends 20 BRPOPs a second: nothing to Redis.
POLL_S = 0.05


def batch_requests() -> int:
    """How many of the process's reserved requests came from a batch queue."""
    # tuple() copies the set in one C call: pool threads discard from it as tasks end.
    return sum(
        1
        for request in tuple(state.reserved_requests)
        if (request.delivery_info or {}).get("routing_key") not in names.INTERACTIVE_QUEUES
    )


class LaneCycle:
    """The queue order of a Redis channel's ``BRPOP`` (kombu's queue cycle interface): the
    interactive queues first; the batch queues after them while the process has a batch thread
    free (``busy() < batch_slots``), else not at all."""

    def __init__(self, batch_slots: int, busy: Callable[[], int] = batch_requests) -> None:
        self.items: list[str] = []
        self._batch_slots = batch_slots
        self._busy = busy

    def update(self, items: Iterable[str]) -> None:
        """The queues the channel consumes now."""
        self.items[:] = items

    def consume(self, n: int) -> list[str]:
        """The queues to ask for a message now, in the order to ask them."""
        queues = self.items[:n]
        first: list[str] = [queue for queue in names.INTERACTIVE_QUEUES if queue in queues]
        batch: list[str] = [queue for queue in queues if queue not in names.INTERACTIVE_QUEUES]
        if batch and self._busy() >= self._batch_slots:
            return first
        return first + batch

    def rotate(self, last_used: str) -> str:
        """The order is fixed: nothing moves."""
        return last_used

    def close(self) -> None:
        """Nothing to release."""


def batch_slots(concurrency: int, interactive_threads: int) -> int:
    """The threads of a process that may take batch work; ValueError when none would."""
    slots = concurrency - interactive_threads
    if slots < 1:
        raise ValueError(
            f"LOYALTY_INTERACTIVE_THREADS={interactive_threads} leaves no thread for batch work "
            f"at a concurrency of {concurrency}: raise the concurrency or lower the setting"
        )
    return slots


class LanesCollector(Collector):
    """``loyalty_worker_batch_messages`` (the batch messages the process holds now, running or
    reserved) and ``loyalty_worker_batch_threads`` (as many as it may hold), read at scrape time:
    the two equal for long means batch work is waiting for threads."""

    def __init__(self, batch_slots: int, busy: Callable[[], int] = batch_requests) -> None:
        self._batch_slots = batch_slots
        self._busy = busy

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "loyalty_worker_batch_messages",
            "Batch messages the worker process holds (running or reserved).",
            value=self._busy(),
        )
        yield GaugeMetricFamily(
            "loyalty_worker_batch_threads",
            "Threads of the worker process that may take batch work.",
            value=self._batch_slots,
        )


_collector: LanesCollector | None = None  # one per process, registered at the first start


class InteractiveLanes(bootsteps.StartStopStep):  # type: ignore[misc]
    """The consumer step that gives the task channel its ``LaneCycle`` (after Celery's own
    task consumer is set up, and again after every reconnection)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c: Any) -> None:
        reserved = get_settings().interactive_threads
        if reserved == 0:
            return
        channel = c.task_consumer.channel
        if not hasattr(channel, "_queue_cycle"):
            log.warning("interactive threads need the Redis broker; batch work may take them all")
            return
        slots = batch_slots(c.pool.num_processes, reserved)
        channel._queue_cycle = LaneCycle(slots)
        channel._update_queue_cycle()
        channel.brpop_timeout = POLL_S
        global _collector  # the consumer starts again after every reconnection
        if _collector is None:
            _collector = LanesCollector(slots)
            metrics.REGISTRY.register(_collector)
        log.info("%d threads for batch work; %d kept for interactive syncs", slots, reserved)
