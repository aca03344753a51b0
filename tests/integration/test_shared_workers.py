"""Two orgs on one worker process (real Redis, Celery, sandbox and emulator): a small org's run
started during a big one's gets its turns and ends first; people's syncs sent meanwhile are
taken at once; the process never holds more batch messages than its batch threads."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loyalty_worker import names
from loyalty_worker.devstack import free_port
from tests.fixtures.pipeline import Stack, running_stack, wait_for
from tests.integration.test_pipeline import check_profiles

pytestmark = pytest.mark.integration

CONCURRENCY = 4
INTERACTIVE = 2  # the default LOYALTY_INTERACTIVE_THREADS


@pytest.fixture
def shared(firestore_emulator: str, test_redis_url: str) -> Iterator[Stack]:
    """org-1 with 4,000 customers, org-2 with 400, 25 customers a chunk, one worker process of
    4 threads (2 of them for batch work), the sandbox at 40 ms a call; fresh for each test, so
    that every run has all its customers to write (none settled by an earlier run)."""
    with running_stack(
        firestore_emulator,
        *("--customers", "4000", "--seed", "23", "--orgs", "2", "--latency-ms", "40"),
        redis_url=test_redis_url,
        concurrency=CONCURRENCY,
        worker_env={"LOYALTY_SYNC_CHUNK_SIZE": "25", "LOYALTY_METRICS_PORT": str(free_port())},
    ) as stack:
        yield stack


def _start(stack: Stack, org_id: str) -> str:
    run_id = f"test-{org_id}-{uuid.uuid4().hex[:8]}"
    stack.celery.send_task(names.SYNC_ORG, args=[org_id], kwargs={"run_id": run_id})
    return run_id


def _ended(stack: Stack, run_id: str) -> bool:
    return stack.tracker.run_record(run_id).status.ended


def _batch_held(stack: Stack) -> int:
    """The batch messages the worker holds now (running or reserved), as its metrics say: one
    count, read in one go."""
    response = httpx.get(f"http://127.0.0.1:{stack.env['LOYALTY_METRICS_PORT']}/metrics")
    match = re.search(r"^loyalty_worker_batch_messages (\S+)$", response.text, re.MULTILINE)
    assert match, "no loyalty_worker_batch_messages in the worker's metrics"
    return int(float(match.group(1)))


def test_a_small_run_started_during_a_big_one_ends_first(shared: Stack) -> None:
    big = _start(shared, "org-1")
    wait_for(lambda: shared.tracker.progress(big).done > 0, timeout_s=120)
    small = _start(shared, "org-2")
    wait_for(lambda: _ended(shared, small), timeout_s=300)
    big_done = shared.tracker.progress(big).done
    assert not _ended(shared, big), "the big run ended first: the small one waited its backlog"
    assert big_done < 4000 * 0.9, big_done
    wait_for(lambda: _ended(shared, big), timeout_s=300)
    for run_id, org_id in ((big, "org-1"), (small, "org-2")):
        progress = shared.tracker.progress(run_id)
        assert progress.status == "completed", progress
        summary: dict[str, Any] = dict(progress.summary or {})
        assert summary["failed"] == 0
        assert summary["synced"] + summary["unchanged"] == summary["listed"]
        assert check_profiles(shared, org_id) == summary["listed"]


def test_people_syncs_are_taken_while_batch_work_holds_only_its_threads(shared: Stack) -> None:
    run_id = _start(shared, "org-1")
    wait_for(lambda: shared.tracker.progress(run_id).done > 0, timeout_s=120)
    customers = [c["id_customer"] for c in shared.org("org-2")["customers"][:3]]
    sent = time.monotonic()
    results = [
        shared.celery.send_task(names.SYNC_CUSTOMER, args=["org-2", customer_id])
        for customer_id in customers
    ]
    held: list[int] = []
    while not all(result.ready() for result in results):
        held.append(_batch_held(shared))
        assert time.monotonic() - sent < 60, "people's syncs not done within a minute"
        time.sleep(0.02)
    synced_in = time.monotonic() - sent
    assert not _ended(shared, run_id), "the run ended before people's syncs were done"
    while not _ended(shared, run_id):
        held.append(_batch_held(shared))
        time.sleep(0.02)
    statuses = [result.get(timeout=5)["status"] for result in results]
    assert all(status in ("synced", "unchanged") for status in statuses), statuses
    seen = Counter(held)  # how often each count was read
    assert max(seen) <= CONCURRENCY - INTERACTIVE, seen
    assert max(seen) == CONCURRENCY - INTERACTIVE, seen  # the batch threads were all used
    print(f"\npeople's syncs during the run: all done in {synced_in:.2f} s; batch held {seen}")
