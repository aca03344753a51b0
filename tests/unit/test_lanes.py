"""A worker asks for interactive messages first, and for batch messages only while it has a
batch thread free (``lanes``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery.worker import state
from prometheus_client import CollectorRegistry

from loyalty_worker import names
from loyalty_worker.lanes import LaneCycle, LanesCollector, batch_requests, batch_slots

CONSUMED = [names.RUNS_QUEUE, names.CUSTOMERS_QUEUE, names.PUBLIC_QUEUE, names.BATCH_QUEUE]


def test_interactive_queues_are_asked_first_then_the_batch_queues() -> None:
    cycle = LaneCycle(batch_slots=14, busy=lambda: 13)
    cycle.update(CONSUMED)
    assert cycle.consume(len(CONSUMED)) == [
        names.CUSTOMERS_QUEUE,
        names.PUBLIC_QUEUE,
        names.RUNS_QUEUE,
        names.BATCH_QUEUE,
    ]
    cycle.rotate(names.CUSTOMERS_QUEUE)  # a message came from it: the order stays
    assert cycle.consume(len(CONSUMED))[0] == names.CUSTOMERS_QUEUE


def test_with_every_batch_thread_busy_only_interactive_queues_are_asked() -> None:
    busy = [14]
    cycle = LaneCycle(batch_slots=14, busy=lambda: busy[0])
    cycle.update(CONSUMED)
    assert cycle.consume(len(CONSUMED)) == [names.CUSTOMERS_QUEUE, names.PUBLIC_QUEUE]
    busy[0] = 13  # one batch task ended
    assert names.BATCH_QUEUE in cycle.consume(len(CONSUMED))


def test_a_worker_of_batch_queues_only_asks_nothing_while_they_are_busy() -> None:
    cycle = LaneCycle(batch_slots=2, busy=lambda: 2)
    cycle.update([names.BATCH_QUEUE])
    assert cycle.consume(1) == []


def test_a_setting_that_leaves_no_batch_thread_is_refused_by_name() -> None:
    assert batch_slots(16, 2) == 14
    with pytest.raises(ValueError, match=r"LOYALTY_INTERACTIVE_THREADS=4 .* concurrency of 4"):
        batch_slots(4, 4)


class _Request:
    """What ``batch_requests`` reads of Celery's reserved requests (held weakly by Celery)."""

    def __init__(self, queue: str | None) -> None:
        self.delivery_info = None if queue is None else {"routing_key": queue}


@pytest.fixture
def reserved() -> Iterator[list[_Request]]:
    """Requests put in Celery's record of reserved requests, removed after the test."""
    kept: list[_Request] = []
    try:
        yield kept
    finally:
        for request in kept:
            state.reserved_requests.discard(request)


def test_batch_requests_counts_what_came_from_other_than_interactive_queues(
    reserved: list[_Request],
) -> None:
    # the runs queue (planners), the batch queue twice, and one with no delivery info
    reserved.extend(_Request(queue) for queue in (*CONSUMED, names.BATCH_QUEUE, None))
    for request in reserved:
        state.reserved_requests.add(request)
    assert batch_requests() == 4


def test_the_metrics_read_the_batch_messages_held_at_each_scrape() -> None:
    busy = [1]
    registry = CollectorRegistry()
    registry.register(LanesCollector(batch_slots=2, busy=lambda: busy[0]))
    assert registry.get_sample_value("loyalty_worker_batch_messages") == 1
    busy[0] = 2
    assert registry.get_sample_value("loyalty_worker_batch_messages") == 2
    assert registry.get_sample_value("loyalty_worker_batch_threads") == 2
