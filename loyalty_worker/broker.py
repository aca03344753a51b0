"""A worker must outlive its broker's restart: two fixes to kombu's Redis transport.

When a worker's connection to Redis breaks, Celery's consumer releases the connection and
connects again. The channels of the released connection are not done with, though: closing one
puts its unacknowledged messages back on their queues (with late acknowledgement, every task
running or reserved), and each task that finishes during or after the outage acknowledges its
message on the channel it came from. Both build a Redis client from the channel's connection,
which is gone by then, and kombu fails with ``AttributeError``. Celery takes that for an
unrecoverable error and the worker exits: every worker that held a message when Redis went
away, i.e. usually all of them.

``install()`` makes both what they are, a broken connection:

- closing such a channel leaves its unacknowledged messages where Redis keeps them, its
  ``unacked`` hash (with an append-only file Redis keeps it through a restart), which kombu
  restores after the visibility timeout;
- anything else it is asked raises ``redis.ConnectionError``, which Celery handles as one:
  an acknowledgement that cannot be made is logged, and its message is redelivered after the
  visibility timeout (the tasks are idempotent).

A run whose work was lost is sent it again by the watchdog long before (``services.run.watchdog``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

_original_restore: Callable[..., Any] = kombu_redis.QoS.restore_unacked
_original_connparams: Callable[..., Any] = kombu_redis.Channel._connparams


def _gone(channel: Any) -> bool:
    """Whether the channel's connection has been released."""
    return channel.connection is None or channel.connection.client is None


def _restore_unacked(self: Any, client: Any = None) -> Any:
    if client is None and _gone(self.channel):
        log.warning(
            "broker connection gone: %d unacknowledged message(s) left to Redis's redelivery",
            len(self._delivered),
        )
        self._delivered.clear()
        return None
    return _original_restore(self, client)


def _connparams(self: Any, asynchronous: bool = False) -> Any:
    if _gone(self):
        raise redis.ConnectionError("the channel's broker connection is closed")
    return _original_connparams(self, asynchronous=asynchronous)


def install() -> None:
    """Make a released connection's channels fail as a broken connection (idempotent)."""
    kombu_redis.QoS.restore_unacked = _restore_unacked  # type: ignore[method-assign]
    kombu_redis.Channel._connparams = _connparams  # type: ignore[method-assign]
