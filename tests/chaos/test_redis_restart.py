"""Redis (broker, result backend and run state) restarted mid-run, without persistence.

What Celery guarantees here: little. Workers reconnect to the new Redis by themselves
(``broker_connection_retry``) and go on consuming, and the tasks they were running finish; but
late acknowledgement only protects messages Redis still holds. A memory-only Redis loses every
queued chunk, every unacknowledged one (so nothing comes back after the visibility timeout) and
the run's own state (its lock, progress and results): the run can never complete by itself, and
no summary would ever fire. (Only Redis persistence, AOF, would keep them.)

What the worker guarantees instead: the run is registered in Firestore when it starts, so the
watchdog (``loyalty.watchdog``, from Beat; called here as Beat would, with ``LOYALTY_RUN_STALL_S``
at 3 s) finds it, closes it as ``incomplete`` with one alert that says its state was lost, and
counts every listed customer as missing: nothing goes silently missing. A second watchdog pass
posts nothing more, and a re-run of the org completes it (checked in full).

To restart Redis mid-run for certain, the customers' worker is frozen (SIGSTOP) while Redis is
killed and started again on the same port, then resumed.
"""

from __future__ import annotations

import json
import signal

import pytest

from loyalty_worker import devstack
from tests.chaos.helpers import (
    celery_client,
    check_run,
    port_of,
    posts_for,
    report,
    start_queue_worker,
    trigger,
    wait_final,
    wait_until,
    watchdog,
)
from tests.fixtures.pipeline import running_stack

pytestmark = pytest.mark.chaos

STALL_S = 3
CUSTOMERS = 300


def test_redis_restarted_mid_run_is_reported_incomplete_and_a_rerun_completes(
    firestore_emulator: str,
) -> None:
    url, server = devstack.start_redis_server()
    port = port_of(url)
    servers = [server]
    try:
        with running_stack(
            firestore_emulator,
            *("--customers", str(CUSTOMERS), "--seed", "51", "--orgs", "1"),
            workers=0,
            redis_url=url,
            worker_env={
                # shortened on purpose, out of the deadlines' order: start anyway, with a warning
                "LOYALTY_DEADLINE_CHECK": "warn",
                "LOYALTY_RUN_STALL_S": str(STALL_S),
            },
        ) as stack:
            planner = start_queue_worker(stack, "loyalty.runs", name="planner")
            worker = start_queue_worker(stack, "loyalty.customers", name="w0", concurrency=2)
            run_id, started = trigger(stack, "org-1")
            assert started.get(timeout=120)["started"] is True
            wait_until(
                lambda: stack.tracker.progress(run_id).done > 0,
                timeout_s=120,
                what="the first results",
            )
            worker.kill(signal.SIGSTOP)
            at_restart = stack.tracker.progress(run_id)
            assert at_restart.status == "syncing" and at_restart.done < CUSTOMERS, at_restart
            servers[0].kill()  # SIGKILL: everything Redis held is gone
            servers[0].process.wait()
            servers[0].stop()
            servers[0] = devstack.start_redis_server(port)[1]
            worker.kill(signal.SIGCONT)
            for child in (planner, worker):
                wait_until(
                    lambda child=child: child.output().count("Connected to redis://") >= 2,  # type: ignore[misc]
                    timeout_s=60,
                    what=f"{child.name} reconnects",
                )
            stack.celery = celery_client(url)
            assert stack.tracker.meta(run_id).get("orgId") is None  # the run's state is gone

            closed = wait_until(
                lambda: watchdog(stack),
                timeout_s=60,
                what="the watchdog closes the run",
                poll_s=0.5,
            )
            assert closed == [run_id]
            assert watchdog(stack) == []  # closed once
            lost = stack.firestore.collection("loyalty_sync_runs").document(run_id).get().to_dict()
            assert lost is not None
            assert lost["status"] == "incomplete", lost
            assert lost["listed"] == lost["missing"] == CUSTOMERS, lost
            assert "lost from Redis" in lost["error"] and lost["alert"]["sent"] is True, lost
            [post] = posts_for(stack, run_id)
            assert "Loyalty sync incomplete" in json.dumps(post["payload"])

            rerun_id, _ = trigger(stack, "org-1")
            wait_final(stack, rerun_id, timeout_s=180)
            outcome = check_run(stack, rerun_id, allowed_failures=())
            assert outcome.synced + outcome.unchanged == outcome.listed == CUSTOMERS
            report(
                "5 Redis restart",
                outcome,
                first_run=f"{lost['status']} ({lost['missing']} missing, 1 post)",
                done_at_restart=f"{at_restart.done}/{at_restart.listed}",
            )
    finally:
        servers[0].stop()
