"""Redis (broker, result backend and run state) killed and started again mid-run, on the defaults.

Workers reconnect by themselves (``broker_connection_retry``) and go on consuming. What Redis
kept decides the rest:

- **persistent** (AOF, ``appendfsync everysec``, as docker-compose.yml runs it): the queues,
  the unacknowledged messages, the run's record, results and kept chunks come back, less at
  most a second of writes. The run goes on; whatever that second lost (a result, a message),
  the watchdog sees idle and sends again.
- **memory-only**: everything is gone (the queued chunks, the run's lock, record and results).
  The run was registered in Firestore when it started, so the watchdog finds it and sends its
  planner again with the same run id: the run is planned anew, the profiles written before the
  restart are settled in the plan, the rest are sent, and the same run completes, its summary
  counting the recovery and keeping the run's first start.

Either way the run completes without a re-run, with one summary and one Discord post. The
restart lands at a seeded random moment of the run's chunk work: a first run of the same org,
unharmed, measures how long that lasts on this machine, and the restart comes within the first
``WITHIN_CHUNK_WORK`` of it in the second run.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from loyalty_worker import devstack
from tests.chaos.helpers import (
    celery_client,
    check_run,
    phase,
    port_of,
    report,
    reset_org,
    trigger,
    wait_final,
    wait_until,
)
from tests.fixtures.pipeline import Stack, running_stack

pytestmark = pytest.mark.chaos

SEED = int(os.environ.get("LOYALTY_CHAOS_SEED", "20261202"))
CUSTOMERS = 1500
# The share of the measured chunk work the restart is drawn from: well within it.
WITHIN_CHUNK_WORK = 0.6


@pytest.mark.parametrize("persistent", [True, False], ids=["aof", "memory-only"])
def test_redis_restarted_mid_run_and_the_same_run_completes(
    firestore_emulator: str, tmp_path: Path, beat: list[Stack], persistent: bool
) -> None:
    rng = random.Random(f"{SEED}-{persistent}")
    aof_dir = tmp_path if persistent else None
    url, server = devstack.start_redis_server(aof_dir=aof_dir)
    port = port_of(url)
    servers = [server]
    try:
        with running_stack(
            firestore_emulator,
            *("--customers", str(CUSTOMERS), "--seed", "51", "--orgs", "1"),
            *("--latency-ms", "30", "--error-rate", "0.05"),
            workers=2,
            redis_url=url,
        ) as stack:
            beat.append(stack)
            chunk_work_s = _chunk_work_s(stack)
            reset_org(stack, "org-1")
            stack.sandbox.clear_messages()
            # The task's result is dropped now: a result kept past the restart would try the
            # old Redis from its finaliser, in whatever test runs next.
            run_id = trigger(stack, "org-1")[0]
            wait_until(
                lambda: phase(stack, run_id) not in ("planning", "sending"),
                timeout_s=120,
                what="the run's work is sent",
            )
            time.sleep(rng.uniform(0.0, WITHIN_CHUNK_WORK * chunk_work_s))
            landed = phase(stack, run_id)
            assert landed == "chunk work", f"the restart must land mid-run, not in {landed}"
            at_restart = stack.tracker.progress(run_id)
            servers[0].kill()  # SIGKILL: what was not yet written to the AOF is gone
            servers[0].process.wait()
            servers[0].stop()
            restarted_at, restarted_at_wall = time.monotonic(), time.time()
            servers[0] = devstack.start_redis_server(port, aof_dir=aof_dir)[1]
            stack.celery = celery_client(url)
            kept = stack.tracker.meta(run_id).get("orgId") is not None
            assert kept is persistent, stack.tracker.meta(run_id)

            progress = wait_final(stack, run_id, timeout_s=300)
            ended_after = time.monotonic() - restarted_at
            assert progress.status == "completed", progress
            outcome = check_run(stack, run_id)
            assert stack.tracker.lock_holder("org-1") is None
            summary = progress.summary
            assert summary is not None
            if not persistent:
                # The run was planned again: its summary says so, with the run's first start.
                assert summary["recoveries"] >= 1, summary
                assert summary["startedAt"] < restarted_at_wall, summary
            report(
                f"Redis restart ({'AOF' if persistent else 'memory-only'})",
                outcome,
                done_at_restart=f"{at_restart.done}/{at_restart.listed}",
                run_state_kept=kept,
                recoveries=summary["recoveries"],
                chunk_work_s=round(chunk_work_s, 1),
                restart_to_completion_s=round(ended_after, 1),
            )
    finally:
        servers[0].stop()


def _chunk_work_s(stack: Stack) -> float:
    """Seconds from a run's work being sent to its end, measured on a run of the org."""
    run_id = trigger(stack, "org-1")[0]
    assert wait_final(stack, run_id, timeout_s=300).status == "completed"
    meta = stack.tracker.meta(run_id)
    return float(meta["finishedAt"]) - float(meta["dispatchedAt"])
