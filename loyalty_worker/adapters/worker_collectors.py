"""What the worker's metrics read from Redis when Prometheus scrapes: nothing is counted ahead.

- the broker's queues: each queue's length (``LLEN``) and the age of its oldest message, the
  list's tail, from the ``published_at`` header ``TaskPublisher`` sets (a message another
  service sent without it counts in the depth and gives no age);
- the chunks waiting their turn (``RedisFairShare.waiting``);
- the runs going: the run holding each org's lock and its progress (``RunTracker.progress``).

Each collector reaches its client through a callable, so that a process's clients (rebuilt after a
fork) are the ones read. Redis failing under a scrape leaves that collector's families out, so
the scrape still answers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loyalty_worker.adapters.fair_share import RedisFairShare
from loyalty_worker.adapters.publisher import PUBLISHED_AT_HEADER
from loyalty_worker.adapters.run_state import RunTracker

log = logging.getLogger(__name__)


def published_at(message: bytes | None) -> float | None:
    """The publish time a broker message carries, or None (no header, not a Celery message)."""
    if message is None:
        return None
    try:
        headers = json.loads(message).get("headers") or {}
        value = headers.get(PUBLISHED_AT_HEADER)
        return float(value) if value is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


class QueueCollector(Collector):
    """``loyalty_queue_messages`` and ``loyalty_queue_oldest_age_seconds`` per queue."""

    def __init__(
        self,
        client: Callable[[], redis.Redis],
        queues: Sequence[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._queues = tuple(queues)
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "loyalty_queue_messages", "Messages waiting in the broker queue.", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "loyalty_queue_oldest_age_seconds",
            "Age of the queue's oldest waiting message (0 when empty; none when it has no "
            "publish time).",
            labels=["queue"],
        )
        try:
            pipe = self._client().pipeline(transaction=False)
            for queue in self._queues:
                pipe.llen(queue)
                pipe.lindex(queue, -1)  # kombu pushes on the left and takes from the right
            answers = pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics: queues not read: %s", type(exc).__name__)
            return
        now = self._clock()
        for index, queue in enumerate(self._queues):
            length, oldest = int(answers[2 * index]), answers[2 * index + 1]
            depth.add_metric([queue], length)
            sent = published_at(oldest)
            if length == 0:
                age.add_metric([queue], 0.0)
            elif sent is not None:
                age.add_metric([queue], max(now - sent, 0.0))
        yield depth
        yield age


class FairShareCollector(Collector):
    """``loyalty_fair_waiting_chunks``: chunks waiting their turn to reach the batch queue."""

    def __init__(self, fair_share: Callable[[], RedisFairShare]) -> None:
        self._fair_share = fair_share

    def collect(self) -> Iterator[Metric]:
        try:
            waiting = self._fair_share().waiting()
        except redis.RedisError as exc:
            log.warning("metrics: waiting chunks not read: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(
            "loyalty_fair_waiting_chunks", "Chunks waiting their turn in Redis.", value=waiting
        )


class RunsCollector(Collector):
    """``loyalty_run_in_progress`` and ``loyalty_run_customers`` of the runs going, per org.

    An org whose run this process has seen going, and that has none now, shows 0.
    """

    def __init__(self, tracker: Callable[[], RunTracker]) -> None:
        self._tracker = tracker
        self._seen: set[str] = set()

    def collect(self) -> Iterator[Metric]:
        going = GaugeMetricFamily(
            "loyalty_run_in_progress", "1 while a run of the org is going.", labels=["org"]
        )
        customers = GaugeMetricFamily(
            "loyalty_run_customers",
            "Customers of the org's run going: listed, done, failed.",
            labels=["org", "state"],
        )
        try:
            tracker = self._tracker()
            progress = {org: tracker.progress(run) for org, run in tracker.running_runs().items()}
        except redis.RedisError as exc:
            log.warning("metrics: runs going not read: %s", type(exc).__name__)
            return
        self._seen |= progress.keys()
        for org in sorted(self._seen):
            now = progress.get(org)
            going.add_metric([org], 0 if now is None else 1)
            if now is not None:
                customers.add_metric([org, "listed"], now.listed or 0)
                customers.add_metric([org, "done"], now.done)
                customers.add_metric([org, "failed"], now.failed)
        yield going
        yield customers
