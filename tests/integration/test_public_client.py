"""Another service's plain Celery client, configured with nothing but the broker, gets an answer.

Such a client names no queue: ``send_task`` publishes to Celery's default queue, ``celery``,
which the workers read beside their own (``names.WORKER_QUEUES``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery

from tests.fixtures.pipeline import Stack, running_stack
from tests.reference import expected_profiles

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small_stack(firestore_emulator: str, test_redis_url: str) -> Iterator[Stack]:
    """A worker over a small generated org: this module syncs one customer."""
    with running_stack(
        firestore_emulator, "--customers", "20", "--seed", "5", redis_url=test_redis_url
    ) as running:
        yield running


def test_a_plain_client_gets_a_customers_result(small_stack: Stack) -> None:
    org = small_stack.org("org-1")
    cid = org["customers"][0]["id_customer"]
    client = Celery(broker=small_stack.redis_url, backend=small_stack.redis_url)
    try:
        # No routes, no queues: the message goes to Celery's default queue.
        assert client.amqp.router.route({}, "loyalty.sync_customer")["queue"].name == "celery"
        result = client.send_task("loyalty.sync_customer", ["org-1", cid]).get(timeout=60)
    finally:
        client.close()
    assert result["success"] is True
    assert (result["orgId"], result["customerId"]) == ("org-1", cid)
    profile = small_stack.profile("org-1", cid)
    assert profile is not None
    assert profile["points"] == expected_profiles(org)[cid]["points"]
