"""Another service's plain Celery client, configured with nothing but the broker, gets an answer;
a run asked for an org the worker does not know ends like any failed run.

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


def test_a_run_for_an_unknown_org_fails_with_a_summary_and_one_alert(small_stack: Stack) -> None:
    before = len(small_stack.messages())
    progress = small_stack.run("no-such-org", timeout_s=60)
    assert progress.status == "failed", progress
    summary = progress.summary
    assert summary is not None
    assert str(summary["error"]).startswith("unknown_org")
    runs = small_stack.firestore.collection("loyalty_sync_runs")
    stored = runs.document(summary["runId"]).get().to_dict()
    assert stored is not None and stored["status"] == "failed"
    assert len(small_stack.messages()) == before + 1
