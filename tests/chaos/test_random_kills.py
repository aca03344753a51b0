"""Worker processes killed with SIGKILL at seeded random moments of runs, on the defaults.

Two ``celery -A loyalty_worker.celery_app worker`` processes with the default settings (threads
pool, concurrency, visibility timeout, heartbeat, re-dispatch delay, lock TTL); the sandbox at
30 ms with 5% 5xx and a 150/s rate limit; 1,500 customers; a supervisor that restarts a killed
worker after 5 s; the watchdog sent every ``LOYALTY_REDISPATCH_S`` / 2, as Beat sends it. Nothing
is frozen, nothing is shortened: a kill lands wherever the run is, including a message between
BRPOP and the unacknowledged set.

Each case aims its kill at a phase of the run (planning, sending, chunk work, summarising) and
a seeded random moment within it, and kills the process doing that work (the planner's own
process while planning or sending). Whatever the kill hits, the run must complete on its own
within 5 minutes of it, and end with the full check: every listed customer accounted for once,
every profile as the rules give, one summary, one Discord post, the org's lock released. Each
case prints where the kill landed and the seconds from the kill to the run's completion.

``LOYALTY_CHAOS_SEED`` picks another schedule (the default one is fixed, so a failure can be
run again).
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from loyalty_worker import devstack
from loyalty_worker.config import Settings
from tests.chaos.helpers import (
    check_run,
    ended_tasks,
    phase,
    received_tasks,
    report,
    reset_org,
    wait_final,
    wait_until,
)
from tests.fixtures.pipeline import Stack, running_stack

pytestmark = pytest.mark.chaos

SEED = int(os.environ.get("LOYALTY_CHAOS_SEED", "20261202"))
CUSTOMERS = 1500
WORKERS = 2
RESTART_AFTER_S = 5.0
# A single crash costs a run at most 5 minutes (docs/operations.md, "What survives what").
CRASH_BUDGET_S = 300.0
# The phase each case aims at; the moment within it is drawn from the seed.
AIMS = ("planning", "sending", "chunk work", "summarising", "chunk work")
DEFAULTS = Settings()
SUMMARIZE = "loyalty.summarize_run"


@dataclass
class Kill:
    phase: str  # where the kill landed
    victim: str
    at: float  # time.monotonic() of the kill
    wall: float  # time.time() of the kill
    done: int
    listed: int | None


def planner_of(workers: list[devstack.ChildProcess], task_id: str) -> devstack.ChildProcess:
    """The worker whose log shows the planning task received."""
    pattern = re.compile(re.escape(f"loyalty.sync_org[{task_id}] received"))
    return wait_until(
        lambda: next((w for w in workers if pattern.search(w.output())), None),
        timeout_s=60,
        what="a worker receives the planner",
        poll_s=0.01,
    )


def summarising(workers: list[devstack.ChildProcess]) -> devstack.ChildProcess | None:
    """The worker running a ``loyalty.summarize_run`` (received, not yet ended), if any."""
    for worker in workers:
        output = worker.output()
        if received_tasks(output, SUMMARIZE) - Counter(ended_tasks(output, SUMMARIZE)):
            return worker
    return None


def test_a_worker_killed_at_random_moments_costs_each_run_at_most_five_minutes(
    firestore_emulator: str, test_redis_url: str, beat: list[Stack]
) -> None:
    rng = random.Random(SEED)
    with running_stack(
        firestore_emulator,
        *("--customers", str(CUSTOMERS), "--seed", "61", "--orgs", "1"),
        *("--latency-ms", "30", "--error-rate", "0.05", "--rate-limit", "150"),
        workers=WORKERS,
        concurrency=DEFAULTS.worker_concurrency,
        redis_url=test_redis_url,
    ) as stack:
        beat.append(stack)
        for case, aim in enumerate(AIMS, start=1):
            reset_org(stack, "org-1")
            stack.sandbox.clear_messages()
            run_id = f"kill-{case}-{SEED}"
            sent = stack.celery.send_task(
                "loyalty.sync_org", args=["org-1"], kwargs={"run_id": run_id}
            )
            kill = _kill_at_random(stack, run_id, sent.id, aim, rng)
            progress = wait_final(stack, run_id, timeout_s=CRASH_BUDGET_S + 120)
            ended_after = time.monotonic() - kill.at
            assert progress.status == "completed", progress
            outcome = check_run(
                stack,
                run_id,
                summariser_killed_at=kill.wall if kill.phase == "summarising" else None,
            )
            assert stack.tracker.lock_holder("org-1") is None
            assert ended_after <= CRASH_BUDGET_S, f"completed {ended_after:.0f} s after the kill"
            meta = stack.tracker.meta(run_id)
            report(
                f"{case} kill aimed at {aim}",
                outcome,
                landed_in=kill.phase,
                victim=kill.victim,
                done_at_kill=f"{kill.done}/{kill.listed}",
                recoveries=meta.get("recoveries", "0"),
                plan_attempts=meta.get("planAttempts", "1"),
                crash_to_completion_s=round(ended_after, 1),
            )


def _kill_at_random(stack: Stack, run_id: str, task_id: str, aim: str, rng: random.Random) -> Kill:
    """Wait for the run to reach ``aim``, then a random moment within it, and SIGKILL the
    process doing that work; a supervisor starts it again after ``RESTART_AFTER_S``."""
    order = ("planning", "sending", "chunk work", "summarising", "ended")
    wait_until(
        lambda: order.index(phase(stack, run_id)) >= order.index(aim),
        timeout_s=240,
        what=f"run {run_id} reaches {aim}",
        poll_s=0.002,
    )
    # Planning takes seconds, sending and summarising less than one: a moment within each.
    within_s = {"planning": 6.0, "sending": 0.3, "chunk work": 4.0, "summarising": 0.05}[aim]
    time.sleep(rng.uniform(0.0, within_s))
    landed = phase(stack, run_id)
    if landed in ("planning", "sending"):
        victim = planner_of(stack.workers, task_id)
    else:
        victim = (summarising(stack.workers) if landed == "summarising" else None) or (
            stack.workers[rng.randrange(len(stack.workers))]
        )
    progress = stack.tracker.progress(run_id)
    victim.kill(signal.SIGKILL)
    kill = Kill(landed, victim.name, time.monotonic(), time.time(), progress.done, progress.listed)
    victim.process.wait()
    victim.stop()
    print(f"{run_id}: killed {victim.name} in {landed} at {progress.done}/{progress.listed}")
    time.sleep(RESTART_AFTER_S)
    index = stack.workers.index(victim)
    stack.workers[index] = devstack.start_worker(
        stack.env, concurrency=DEFAULTS.worker_concurrency, name=f"{victim.name.split('+')[0]}+"
    )
    return kill
