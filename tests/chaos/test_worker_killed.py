"""A worker process killed with SIGKILL in the middle of a 1,000-customer run.

What Celery guarantees: ``loyalty.sync_chunk`` is acknowledged late (``task_acks_late``, with
``task_reject_on_worker_lost``), so the messages a killed worker had taken stay in Redis's unacked
set and go back to their queue once they are older than the broker's visibility timeout
(``LOYALTY_VISIBILITY_TIMEOUT_S``, 15 s here). Kombu looks for such messages when a worker starts
consuming, and then only every ~100 s (``unacked_restore_interval`` 10 s × throttle 10): the case
restarts the killed worker after the timeout, as a supervisor would, and its start-up sweep hands
the lost chunks back. Meanwhile another worker takes the rest of the queue.

What Celery does not guarantee: a message that Redis has already handed to a worker (BRPOP) but
that the worker has not yet written to the unacked set is lost with the worker. So the kill lands
only when the victim is full: frozen with SIGSTOP, its log shows as many chunks received and not
finished as it may hold (concurrency × prefetch multiplier 1), so no BRPOP of its is outstanding,
and no restore sweep of its holds kombu's ``unacked_mutex``. Which chunks were lost is read from
that log while it is frozen, so the case knows the kill landed mid-task.
"""

from __future__ import annotations

import signal
import time

import pytest
import redis

from tests.chaos.helpers import (
    broker_idle,
    check_run,
    ended_tasks,
    received_tasks,
    report,
    start_queue_worker,
    trigger,
    wait_final,
    wait_until,
)
from tests.fixtures.pipeline import running_stack

pytestmark = pytest.mark.chaos

VISIBILITY_TIMEOUT_S = 15
CHUNK = "loyalty.sync_chunk"
VICTIM_CONCURRENCY = 8  # with worker_prefetch_multiplier 1: the most chunks it may hold


def test_a_worker_killed_mid_run_loses_nothing_and_duplicates_nothing(
    firestore_emulator: str, test_redis_url: str
) -> None:
    with running_stack(
        firestore_emulator,
        *("--customers", "1000", "--seed", "21", "--orgs", "1", "--latency-ms", "20"),
        workers=0,
        redis_url=test_redis_url,
        worker_env={
            # shortened on purpose, out of the deadlines' order: start anyway, with a warning
            "LOYALTY_DEADLINE_CHECK": "warn",
            "LOYALTY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
        },
    ) as stack:
        broker = redis.Redis.from_url(test_redis_url)
        start_queue_worker(stack, "loyalty.runs", name="planner")
        victim = start_queue_worker(
            stack, "loyalty.customers", name="w0", concurrency=VICTIM_CONCURRENCY
        )
        other = start_queue_worker(stack, "loyalty.customers", name="w1", concurrency=8)
        run_id, _ = trigger(stack, "org-1")

        def in_flight() -> set[str]:
            output = victim.output()
            return set(received_tasks(output, CHUNK)) - ended_tasks(output, CHUNK)

        def full() -> bool:
            return len(in_flight()) == VICTIM_CONCURRENCY and not broker.exists("unacked_mutex")

        lost: set[str] = set()
        deadline = time.monotonic() + 180
        while not lost:
            assert time.monotonic() < deadline, "the victim never held a full set of chunks"
            progress = stack.tracker.progress(run_id)
            assert progress.status != "completed", "ended before the kill"
            if progress.done > 0 and full():
                victim.kill(signal.SIGSTOP)  # frozen: what it holds now is what the kill loses
                time.sleep(0.2)  # its last log lines reach the file
                if full():
                    lost = in_flight()
                else:
                    victim.kill(signal.SIGCONT)
            time.sleep(0.01)
        at_kill = stack.tracker.progress(run_id)
        victim.kill(signal.SIGKILL)
        killed_at = time.monotonic()
        print(f"killed w0 at {at_kill.done}/{at_kill.listed} done, holding {len(lost)} chunks")

        # The other worker drains the queue; the lost chunks wait for the visibility timeout.
        wait_until(
            lambda: broker.llen("loyalty.customers") == 0,
            timeout_s=120,
            what="the other worker drains the queue",
            poll_s=0.2,
        )
        time.sleep(max(0.0, killed_at + VISIBILITY_TIMEOUT_S + 1 - time.monotonic()))
        before_restart = stack.tracker.progress(run_id)
        restarted = start_queue_worker(stack, "loyalty.customers", name="w0-restarted")
        progress = wait_final(stack, run_id, timeout_s=120)
        assert progress.status == "completed", progress

        redelivered = set(received_tasks(restarted.output(), CHUNK)) | set(
            received_tasks(other.output(), CHUNK)
        )
        assert lost <= redelivered, f"never redelivered: {lost - redelivered}"
        outcome = check_run(stack, run_id, allowed_failures=())
        assert outcome.synced + outcome.unchanged == outcome.listed == 1000
        wait_until(lambda: broker_idle(stack), timeout_s=60, what="nothing left in the broker")
        report(
            "1 worker SIGKILL",
            outcome,
            chunks_lost_and_redelivered=len(lost),
            done_before_restart=f"{before_restart.done}/{before_restart.listed}",
        )
