"""A run's phones in Redis, beside its task messages (``ports.RunPhones``).

One hash per run, ``loyalty:run:{runId}:phones`` (customer id → 10 digits), written in one
round trip per chunk of customers and expiring ``ttl_s`` after the last write: long enough for
the run's last task and its retries, short enough that no phone outlives its use by much. The
run's summary drops it at once. A Redis error is transient: the task that reads is tried again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import redis

from loyalty_worker.errors import TransientError


class RedisRunPhones:
    """Each run's kept phones as one expiring Redis hash."""

    def __init__(self, client: redis.Redis, *, ttl_s: int) -> None:
        self._redis = client
        self._ttl_s = ttl_s

    @staticmethod
    def key(run_id: str) -> str:
        return f"loyalty:run:{run_id}:phones"

    def keep(self, run_id: str, phones: Mapping[int, str]) -> None:
        if not phones:
            return
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(self.key(run_id), mapping={str(cid): phone for cid, phone in phones.items()})
        pipe.expire(self.key(run_id), self._ttl_s)
        pipe.execute()

    def phones(self, run_id: str, customer_ids: Sequence[int]) -> dict[int, str]:
        if not customer_ids:
            return {}
        try:
            raw = cast(
                list[bytes | None],
                self._redis.hmget(self.key(run_id), [str(cid) for cid in customer_ids]),
            )
        except redis.RedisError as exc:
            raise TransientError("redis", f"run {run_id}: phones unread: {exc}") from exc
        return {
            cid: value.decode()
            for cid, value in zip(customer_ids, raw, strict=True)
            if value is not None
        }

    def forget(self, run_id: str) -> None:
        self._redis.delete(self.key(run_id))
