"""One contract for ``ports.WebhookLedger``, run over the in-memory fake and the Redis adapter."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import fakeredis
import pytest

from loyalty_worker.adapters.webhook_ledger import RedisWebhookLedger
from loyalty_worker.ports.webhooks import WebhookLedger
from tests.fakes import InMemoryWebhookLedger, ManualClock

SIGNATURE = "ab" * 32


def _in_memory() -> WebhookLedger:
    return InMemoryWebhookLedger(ManualClock(1_800_000_000.0))


def _redis() -> WebhookLedger:
    return RedisWebhookLedger(fakeredis.FakeRedis())


@pytest.fixture(params=[_in_memory, _redis], ids=["in_memory", "redis"])
def ledger(request: pytest.FixtureRequest) -> Iterator[WebhookLedger]:
    build: Callable[[], WebhookLedger] = request.param
    yield build()


def test_a_delivery_is_claimed_once_until_released(ledger: WebhookLedger) -> None:
    assert ledger.claim_delivery("org-1", SIGNATURE, ttl_s=600) is True
    assert ledger.claim_delivery("org-1", SIGNATURE, ttl_s=600) is False
    assert ledger.claim_delivery("org-2", SIGNATURE, ttl_s=600) is True  # per org
    ledger.release_delivery("org-1", SIGNATURE)
    assert ledger.claim_delivery("org-1", SIGNATURE, ttl_s=600) is True


def test_a_customer_is_claimed_once_until_released(ledger: WebhookLedger) -> None:
    assert ledger.claim_customer("org-1", 42, ttl_s=30) is True
    assert ledger.claim_customer("org-1", 42, ttl_s=30) is False
    assert ledger.claim_customer("org-1", 43, ttl_s=30) is True
    ledger.release_customer("org-1", 42)
    assert ledger.claim_customer("org-1", 42, ttl_s=30) is True


def test_deliveries_and_customers_do_not_collide(ledger: WebhookLedger) -> None:
    assert ledger.claim_delivery("org-1", "42", ttl_s=600) is True
    assert ledger.claim_customer("org-1", 42, ttl_s=30) is True


def test_releasing_what_was_never_claimed_is_harmless(ledger: WebhookLedger) -> None:
    ledger.release_delivery("org-1", SIGNATURE)
    ledger.release_customer("org-1", 42)
    assert ledger.claim_customer("org-1", 42, ttl_s=30) is True


def test_the_fake_expires_claims_with_its_clock() -> None:
    clock = ManualClock(1_800_000_000.0)
    ledger = InMemoryWebhookLedger(clock)
    assert ledger.claim_customer("org-1", 42, ttl_s=30)
    clock.advance(29)
    assert not ledger.claim_customer("org-1", 42, ttl_s=30)
    clock.advance(1)
    assert ledger.claim_customer("org-1", 42, ttl_s=30)


def test_redis_claims_expire_after_their_ttl() -> None:
    client = fakeredis.FakeRedis()
    ledger = RedisWebhookLedger(client)
    ledger.claim_delivery("org-1", SIGNATURE, ttl_s=600)
    ledger.claim_customer("org-1", 42, ttl_s=30)
    delivery_ttl = int(client.ttl(f"loyalty:webhook:seen:org-1:{SIGNATURE}"))  # type: ignore[arg-type]
    customer_ttl = int(client.ttl("loyalty:webhook:queued:org-1:42"))  # type: ignore[arg-type]
    assert 0 < delivery_ttl <= 600
    assert 0 < customer_ttl <= 30
