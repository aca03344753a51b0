"""kombu's Redis channel after Celery's consumer released its connection (Redis went away):
with ``broker.install()`` (what ``celery_app`` runs) closing it and acknowledging on it fail
as a broken connection, which Celery survives, instead of with ``AttributeError``, which made
the worker exit; the unacknowledged message stays in Redis for redelivery. A channel closed
with its connection alive still puts its messages back on their queue."""

from __future__ import annotations

import logging
from typing import Any

import kombu
import pytest
import redis

from loyalty_worker import broker

pytestmark = pytest.mark.integration

QUEUE = "loyalty.test-broker"


def delivered_channel(url: str) -> tuple[Any, Any]:
    """A connection whose channel holds one delivered, unacknowledged message."""
    connection: Any = kombu.Connection(url)  # type: ignore[attr-defined,no-untyped-call]
    queue = connection.SimpleQueue(QUEUE)
    queue.put({"task": "x"})
    queue.get(timeout=5)
    return connection, queue.channel


def test_a_channel_whose_connection_is_gone_closes_and_leaves_its_message_to_redis(
    redis_client: redis.Redis, test_redis_url: str
) -> None:
    broker.install()
    connection, channel = delivered_channel(test_redis_url)
    # The state a broken connection is left in when the consumer closes it: no client.
    channel.connection.client = None
    channel.close()
    assert redis_client.hlen("unacked") == 1  # redelivered after the visibility timeout
    assert redis_client.llen(QUEUE) == 0
    connection.release()


def test_a_task_acknowledged_after_its_connection_is_gone_meets_a_connection_error(
    redis_client: redis.Redis, test_redis_url: str
) -> None:
    broker.install()
    connection: Any = kombu.Connection(test_redis_url)  # type: ignore[attr-defined,no-untyped-call]
    queue = connection.SimpleQueue(QUEUE)
    queue.put({"task": "x"})
    message = queue.get(timeout=5)
    queue.channel.connection.client = None
    queue.channel._pool = None  # released with its connection
    # Celery acknowledges through ``ack_log_error`` with the transport's connection errors: a
    # connection error is logged there, anything else stops the worker.
    with pytest.raises(redis.ConnectionError):
        message.ack()
    message.ack_log_error(logging.getLogger("test"), connection.connection_errors)
    assert redis_client.hlen("unacked") == 1  # not acknowledged: redelivered later
    connection.release()


def test_a_channel_closed_with_its_connection_alive_requeues_its_message(
    redis_client: redis.Redis, test_redis_url: str
) -> None:
    broker.install()
    connection, channel = delivered_channel(test_redis_url)
    channel.close()
    assert redis_client.hlen("unacked") == 0
    assert redis_client.llen(QUEUE) == 1
    connection.release()
