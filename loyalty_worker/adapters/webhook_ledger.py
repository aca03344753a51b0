"""The webhook's claims in Redis, shared by every API process (``ports.WebhookLedger``).

A claim is a key set only if absent, expiring after its time to live; the service decides the
times. Redis errors are left to the caller (the API answers 503).
"""

from __future__ import annotations

import redis


class RedisWebhookLedger:
    """Seen deliveries and queued customers as expiring Redis keys."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def claim_delivery(self, org_id: str, signature: str, *, ttl_s: int) -> bool:
        return self._claim(_delivery_key(org_id, signature), ttl_s)

    def release_delivery(self, org_id: str, signature: str) -> None:
        self._redis.delete(_delivery_key(org_id, signature))

    def claim_customer(self, org_id: str, customer_id: int, *, ttl_s: int) -> bool:
        return self._claim(_customer_key(org_id, customer_id), ttl_s)

    def release_customer(self, org_id: str, customer_id: int) -> None:
        self._redis.delete(_customer_key(org_id, customer_id))

    def _claim(self, key: str, ttl_s: int) -> bool:
        return bool(self._redis.set(key, "1", nx=True, ex=ttl_s))


def _delivery_key(org_id: str, signature: str) -> str:
    return f"loyalty:webhook:seen:{org_id}:{signature}"


def _customer_key(org_id: str, customer_id: int) -> str:
    return f"loyalty:webhook:queued:{org_id}:{customer_id}"
