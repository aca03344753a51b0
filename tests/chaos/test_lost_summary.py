"""A finished run's summary callback is lost: its ``loyalty.summarize_run`` message vanishes from
the broker (a flushed queue, a broker that lost it) before any worker takes it.

Every customer's result is in, and the last one fired the summary, which never runs. On the
defaults, the watchdog (``loyalty.watchdog``, sent here as Beat sends it) finds the run still
registered as running in Firestore, idle for ``LOYALTY_REDISPATCH_S``, its summary fired but
never written, and closes it as ``completed`` with all its results: one summary, one alert. A
second watchdog pass, and the lost message turning up late after all, post nothing more.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from loyalty_worker.config import Settings
from tests.chaos.helpers import (
    broker_idle,
    check_run,
    ended_tasks,
    report,
    start_queue_worker,
    trigger,
    wait_until,
    watchdog,
)
from tests.fixtures.pipeline import running_stack

pytestmark = pytest.mark.chaos


def test_a_lost_summary_callback_is_closed_by_the_watchdog_once(
    firestore_emulator: str, test_redis_url: str
) -> None:
    with running_stack(
        firestore_emulator,
        *("--customers", "250", "--seed", "91", "--orgs", "1"),
        workers=0,
        redis_url=test_redis_url,
    ) as stack:
        broker = redis.Redis.from_url(test_redis_url)
        planner = start_queue_worker(stack, "loyalty.runs", name="planner")
        run_id, started = trigger(stack, "org-1")
        assert started.get(timeout=120)["started"] is True
        planner.stop()  # nothing consumes loyalty.runs now: the summary message waits there
        # Only now are the customers synced: had they all finished before the planner stopped,
        # it could have taken the summary message itself.
        start_queue_worker(stack, "loyalty.batch", name="w0", concurrency=8)

        wait_until(
            lambda: stack.tracker.meta(run_id).get("fired") == "1",
            timeout_s=180,
            what="every result in, the summary fired",
        )
        wait_until(
            lambda: broker.llen("loyalty.runs") == 1, timeout_s=30, what="the summary is queued"
        )
        lost = broker.lpop("loyalty.runs")
        assert isinstance(lost, bytes)
        message: dict[str, Any] = json.loads(lost)
        assert message["headers"]["task"] == "loyalty.summarize_run", message["headers"]
        assert stack.tracker.progress(run_id).status == "syncing"

        runs = start_queue_worker(stack, "loyalty.runs", name="runs")
        closed = wait_until(
            lambda: watchdog(stack),
            timeout_s=Settings().redispatch_s + 60,
            what="the watchdog closes the run",
            poll_s=5.0,
        )
        assert closed == [run_id]
        assert watchdog(stack) == []  # closed once

        broker.lpush("loyalty.runs", lost)  # the lost callback turns up after all
        wait_until(
            lambda: ended_tasks(runs.output(), "loyalty.summarize_run"),
            timeout_s=60,
            what="the late callback has run",
        )
        wait_until(lambda: broker_idle(stack), timeout_s=60, what="nothing left in the broker")

        outcome = check_run(stack, run_id, allowed_failures=())
        assert outcome.summary["missing"] == 0
        assert outcome.synced + outcome.unchanged == outcome.listed == 250
        report(
            "9 lost summary callback",
            outcome,
            status=outcome.summary["status"],
        )
