"""Alleaves and Alpine IQ answer 5% of calls with a 5xx, and come in bursts of 429 with
``Retry-After: 1`` (a rate limit of 10 requests per second, switched on and off while the run
goes; it also covers the Discord webhook).

Every call is retried within the HTTP policy (``LOYALTY_HTTP_MAX_ATTEMPTS``, here 5, and a total
time budget): a 429 waits exactly what ``Retry-After`` asks, a 5xx a jittered backoff. A planning
read that still fails starts the plan again a bounded number of times, and a task retries at most
``LOYALTY_SYNC_MAX_RETRIES`` times. So every customer is eventually synced, no retry goes past
its bound, and once the run has ended nothing is left to retry: the broker holds no message.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

import pytest

from tests.chaos.helpers import (
    broker_idle,
    check_run,
    report,
    trigger,
    wait_final,
    wait_until,
)
from tests.fixtures.pipeline import Stack, running_stack

pytestmark = pytest.mark.chaos

MAX_ATTEMPTS = 5
SYNC_MAX_RETRIES = 5
BURST_LIMIT = 10  # requests per second during a burst
BURST_S, CALM_S = 1.5, 2.5
HTTP_RETRY = re.compile(r"(\w+): .*?\((\d{3})\); retry (\d+)/(\d+) in ([\d.]+)s")


def bursts_of_429(stack: Stack, stop: threading.Event) -> int:
    """Switch the rate limit on and off until ``stop``; how many bursts there were.

    A burst lasts until it has refused a call, then ``BURST_S`` more: however late the run's
    first calls come, the first burst meets them."""
    bursts = 0
    while not stop.is_set():
        refused = rate_limited(stack)
        stack.sandbox.set_faults(rate_limit=BURST_LIMIT)
        bursts += 1
        while not stop.is_set() and rate_limited(stack) == refused:
            stop.wait(0.05)
        stop.wait(BURST_S)
        stack.sandbox.set_faults(rate_limit=None)
        stop.wait(CALM_S)
    return bursts


def rate_limited(stack: Stack) -> int:
    return sum(api["rate_limited"] for api in stack.sandbox.stats().values())


def test_5xx_and_bursts_of_429_are_retried_within_bounds_until_all_synced(
    firestore_emulator: str, test_redis_url: str
) -> None:
    with running_stack(
        firestore_emulator,
        *("--customers", "300", "--seed", "41", "--orgs", "1"),
        *("--latency-ms", "20", "--error-rate", "0.05"),
        redis_url=test_redis_url,
        worker_env={
            "LOYALTY_HTTP_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "LOYALTY_SYNC_MAX_RETRIES": str(SYNC_MAX_RETRIES),
        },
    ) as stack:
        stop = threading.Event()
        bursts: list[int] = []
        toggler = threading.Thread(target=lambda: bursts.append(bursts_of_429(stack, stop)))
        toggler.start()
        try:
            run_id, _ = trigger(stack, "org-1")
            wait_final(stack, run_id, timeout_s=240)
        finally:
            stop.set()
            toggler.join()
        stack.sandbox.reset_faults()

        outcome = check_run(stack, run_id, allowed_failures=())
        assert outcome.synced + outcome.unchanged == outcome.listed == 300
        wait_until(lambda: broker_idle(stack), timeout_s=60, what="nothing left to retry")

        stats = stack.sandbox.stats()
        server_errors = stats["alleaves"]["server_errors"] + stats["alpine"]["server_errors"]
        refused = sum(api["rate_limited"] for api in stats.values())
        assert server_errors > 0 and refused > 0, stats

        log = "\n".join(worker.output() for worker in stack.workers)
        retries = HTTP_RETRY.findall(log)
        assert retries, "no call was retried"
        for _, status, attempt, most, delay in retries:
            assert int(attempt) <= int(most) == MAX_ATTEMPTS - 1
            if status == "429":
                assert float(delay) == 1.0, "Retry-After not honoured"
        task_retries = Counter(re.findall(r"Task loyalty\.\w+\[([\w-]+)\] retry: ", log))
        assert max(task_retries.values(), default=0) <= SYNC_MAX_RETRIES, task_retries
        report(
            "2 5% 5xx + 429 bursts",
            outcome,
            server_errors=server_errors,
            rate_limited=refused,
            http_retries=len(retries),
            task_retries=sum(task_retries.values()),
            bursts=bursts[0],
        )
