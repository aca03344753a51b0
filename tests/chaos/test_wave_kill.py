"""Two orgs' runs started in the same moment, Beat running, and a worker killed mid-wave.

Two ``celery -A loyalty_worker.celery_app worker`` processes with the default settings (threads
pool, concurrency, visibility timeout, heartbeat, re-dispatch delay, lock TTL) and a real
``celery beat`` with the project's schedule, so the watchdog is sent as in every deployment;
the sandbox at 30 ms with 5% 5xx and a 150/s rate limit, which both orgs' calls share; 1,500
customers in each org. Nothing is shortened: what the kill loses comes back the way it does in
production, through the watchdog Beat sends.

The first wave is the nightly one: Beat starts with its nightly tick overdue (as a Beat that
was down finds it) and the nightly hour set to the orgs' local hour now, and that one tick
starts both orgs' runs. It runs unharmed, is checked in full, and measures on this machine how
long both runs go side by side: from the later start to the earlier end. The next wave is
started the way the tick starts its runs (``enqueue_org_run``, one org after the other), and at
a moment drawn from the seed over that whole span, one of the two workers, also drawn from the
seed, is killed with SIGKILL, whatever it holds; a supervisor starts it again after 5 s. A wave
may go faster than the one measured (the nightly one starts cold: logins, connections) and end
before the drawn moment: it is then checked unharmed, its own span measured, and the next wave
draws again. The moment is never moved into a part of the wave thought survivable.

Both runs must complete on their own within 5 minutes of the kill (docs/operations.md, "What
survives what"), each with the full check: every listed customer accounted for once, every
profile as the rules give, one summary, the org's lock released. Each run posts exactly one
Discord alert, and Discord receives nothing else: unlike ``test_random_kills``, which aims a kill
at the summary and accepts a second post there, a kill landing between Discord taking a run's
post and the run keeping that it did (a window of milliseconds) fails this case.

The seed is fresh for every session and printed; ``LOYALTY_CHAOS_SEED`` runs it again (the same
share of the span, the same victim; the span itself is measured anew).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from loyalty_worker import devstack, names
from loyalty_worker.adapters.publisher import TaskPublisher, broker_app
from loyalty_worker.config import Settings
from loyalty_worker.sandbox.data import dump_dataset, generate_dataset
from loyalty_worker.services.run.nightly import night_of
from loyalty_worker.services.run.triggers import enqueue_org_run
from tests.chaos.helpers import (
    check_run,
    ended_tasks,
    overdue_schedule,
    phase,
    received_tasks,
    report,
    reset_org,
    start_beat,
    wait_final,
    wait_until,
)
from tests.fixtures.pipeline import Stack, running_stack

pytestmark = pytest.mark.chaos

SEED = int(os.environ.get("LOYALTY_CHAOS_SEED") or random.SystemRandom().randrange(10**9))
DATASET_SEED = 81
CUSTOMERS = 1500
ORGS = ("org-1", "org-2")
WORKERS = 2
RESTART_AFTER_S = 5.0
# A single crash costs a run at most 5 minutes (docs/operations.md, "What survives what").
CRASH_BUDGET_S = 300.0
# The kill's moment is drawn over the whole span both runs of the wave before went side by side.
# A wave faster than that one may end first: it is then checked unharmed, its span measured, and
# the next wave draws again, at most this many times.
MAX_KILL_WAVES = 4
DEFAULTS = Settings()
IN_PROGRESS = frozenset({"listing", "syncing", "summarizing"})
# The tasks a killed worker may be holding, for the report.
RUN_TASKS = (
    names.SYNC_ORG,
    names.READ_ORDERS,
    names.SYNC_CHUNK,
    names.SYNC_CUSTOMER,
    names.SUMMARIZE_RUN,
)


@dataclass(frozen=True)
class Kill:
    victim: str
    held: str  # the tasks the victim had received and not ended
    at: float  # time.time() of the kill
    phases: dict[str, str]  # run id: where the run was
    done: dict[str, str]  # run id: done/listed


def test_a_worker_killed_mid_wave_costs_neither_run_more_than_five_minutes(
    firestore_emulator: str, test_redis_url: str, tmp_path: Path
) -> None:
    print(f"wave kill: seed {SEED} (LOYALTY_CHAOS_SEED={SEED} runs it again)")
    rng = random.Random(SEED)
    dataset = tmp_path / "dataset.json"
    nightly = _nightly_now(_write_equal_orgs(dataset))
    with running_stack(
        firestore_emulator,
        *("--dataset", str(dataset)),
        *("--latency-ms", "30", "--error-rate", "0.05", "--rate-limit", "150"),
        workers=WORKERS,
        concurrency=DEFAULTS.worker_concurrency,
        worker_env=nightly,
        redis_url=test_redis_url,
    ) as stack:
        workers = list(stack.workers)
        schedule_file = tmp_path / "beat-schedule"
        overdue_schedule(schedule_file, "loyalty-nightly-tick", names.NIGHTLY_TICK, 300, 240)
        start_beat(stack, name="beat", schedule_file=schedule_file, env=nightly)
        runs = wait_until(
            lambda: _holders(stack),
            timeout_s=120,
            what="Beat's nightly tick starts both orgs' runs",
        )
        overlap_s = _unharmed_overlap_s(stack, runs, "nightly wave")

        publisher = TaskPublisher(broker_app(stack.redis_url))
        for wave in range(2, 2 + MAX_KILL_WAVES):
            runs = _start_wave(stack, publisher)
            at_s, victim = rng.uniform(0.0, overlap_s), rng.randrange(WORKERS)
            time.sleep(at_s)
            kill = _kill_if_both_going(stack, workers, victim, runs)
            if kill is not None:
                break
            print(f"wave {wave}: a run ended before {at_s:.1f} s (drawn of {overlap_s:.1f} s)")
            overlap_s = _unharmed_overlap_s(stack, runs, f"wave {wave}, no kill")
        else:
            raise AssertionError(f"{MAX_KILL_WAVES} waves each ended before the moment drawn")

        for org_id, run_id in runs.items():
            progress = wait_final(stack, run_id, timeout_s=CRASH_BUDGET_S + 120)
            assert progress.status == "completed", progress
            outcome = check_run(stack, run_id, org_id)
            assert stack.tracker.lock_holder(org_id) is None, org_id
            meta = stack.tracker.meta(run_id)
            ended_after = float(meta["finishedAt"]) - kill.at
            assert ended_after <= CRASH_BUDGET_S, f"{run_id}: completed {ended_after:.0f} s after"
            report(
                f"wave kill, {org_id}",
                outcome,
                seed=SEED,
                wave=wave,
                kill_at_s=f"{at_s:.1f} of {overlap_s:.1f}",
                landed_in=kill.phases[run_id],
                done_at_kill=kill.done[run_id],
                victim=kill.victim,
                victim_held=kill.held,
                recoveries=meta.get("recoveries", "0"),
                plan_attempts=meta.get("planAttempts", "1"),
                crash_to_completion_s=round(ended_after, 1),
            )
        # One post per run and nothing else: no second run of either org, no repeated alert.
        assert len(stack.messages()) == len(runs), stack.messages()


def _write_equal_orgs(path: Path) -> list[str]:
    """Write a dataset of two orgs of ``CUSTOMERS`` customers each; the orgs' timezones.

    The generator gives every org after the first a tenth of the first's customers, so org-2 is
    taken from a dataset ten times larger: each org keeps its own settings and random stream."""
    day = datetime.now(UTC).date()
    first = generate_dataset(CUSTOMERS, DATASET_SEED, orgs=1, as_of=day)["orgs"][0]
    second = generate_dataset(CUSTOMERS * 10, DATASET_SEED, orgs=2, as_of=day)["orgs"][1]
    assert [first["orgId"], second["orgId"]] == list(ORGS)
    assert len(first["customers"]) == len(second["customers"]) == CUSTOMERS
    path.write_text(dump_dataset({"asOf": day.isoformat(), "orgs": [first, second]}))
    return [first["settings"]["timezone"], second["settings"]["timezone"]]


def _nightly_now(timezones: list[str]) -> dict[str, str]:
    """``LOYALTY_NIGHTLY_HOUR`` and ``LOYALTY_NIGHTLY_WINDOW_H`` (the default window) that put
    every org in its nightly window now and for the next ten minutes: the tick starts them all."""
    window_h = DEFAULTS.nightly_window_h
    zones = [ZoneInfo(name) for name in timezones]
    now = datetime.now(UTC)
    for hour in sorted({now.astimezone(zone).hour for zone in zones}):
        if all(
            night_of(moment, zone, hour, window_h) is not None
            for zone in zones
            for moment in (now, now + timedelta(minutes=10))
        ):
            return {"LOYALTY_NIGHTLY_HOUR": str(hour), "LOYALTY_NIGHTLY_WINDOW_H": str(window_h)}
    raise AssertionError(f"no nightly hour holds {timezones} in one {window_h}-hour window")


def _unharmed_overlap_s(stack: Stack, runs: dict[str, str], wave: str) -> float:
    """Seconds both runs of an unharmed wave went side by side (the later start to the earlier
    end), once both are fully checked."""
    for org_id, run_id in runs.items():
        assert wait_final(stack, run_id, timeout_s=CRASH_BUDGET_S).status == "completed"
        check_run(stack, run_id, org_id)
    assert len(stack.messages()) == len(runs), stack.messages()
    metas = [stack.tracker.meta(run_id) for run_id in runs.values()]
    started = max(float(meta["startedAt"]) for meta in metas)
    ended = min(float(meta["finishedAt"]) for meta in metas)
    print(f"{wave} {sorted(runs.values())}: both going for {ended - started:.1f} s")
    return ended - started


def _start_wave(stack: Stack, publisher: TaskPublisher) -> dict[str, str]:
    """Both orgs' runs, their profiles as seeded, started one after the other as the nightly
    tick starts them; returns (each org's run id) once a worker has taken both."""
    for org_id in ORGS:
        reset_org(stack, org_id)
    stack.sandbox.clear_messages()
    runs = {org_id: names.new_run_id(org_id) for org_id in ORGS}
    for org_id, run_id in runs.items():
        enqueue_org_run(org_id, run_id, runs=stack.tracker, enqueuer=publisher)
    wait_until(
        lambda: all(_in_progress(stack, run_id) for run_id in runs.values()),
        timeout_s=120,
        what="a worker takes both runs of the wave",
        poll_s=0.002,
    )
    return runs


def _holders(stack: Stack) -> dict[str, str] | None:
    """Each org's running run (the holder of its run lock), once every org has one."""
    holders = {org_id: stack.tracker.lock_holder(org_id) for org_id in ORGS}
    return {o: run_id for o, run_id in holders.items() if run_id} if all(holders.values()) else None


def _in_progress(stack: Stack, run_id: str) -> bool:
    """A worker has taken the run and it has not ended."""
    return stack.tracker.progress(run_id).status in IN_PROGRESS


def _kill_if_both_going(
    stack: Stack, workers: list[devstack.ChildProcess], index: int, runs: dict[str, str]
) -> Kill | None:
    """SIGKILL ``workers[index]`` now, whatever it holds, if both runs are still going (None,
    and no kill, if one has ended); a supervisor starts it again after ``RESTART_AFTER_S``."""
    victim = workers[index]
    progress = {run_id: stack.tracker.progress(run_id) for run_id in runs.values()}
    if any(p.status not in IN_PROGRESS for p in progress.values()):
        return None
    phases = {run_id: phase(stack, run_id) for run_id in runs.values()}
    victim.kill(signal.SIGKILL)
    at = time.time()
    victim.process.wait()
    output = victim.output()
    held: Counter[str] = Counter()
    for task in RUN_TASKS:
        held[task] = (received_tasks(output, task) - Counter(ended_tasks(output, task))).total()
    kill = Kill(
        victim=victim.name,
        held=" ".join(f"{task.removeprefix('loyalty.')}:{n}" for task, n in held.items() if n)
        or "nothing",
        at=at,
        phases=phases,
        done={run_id: f"{p.done}/{p.listed}" for run_id, p in progress.items()},
    )
    victim.stop()
    print(f"wave kill: killed {victim.name} holding {kill.held}; runs in {phases}, {kill.done}")
    time.sleep(RESTART_AFTER_S)
    replacement = devstack.start_worker(
        stack.env, concurrency=DEFAULTS.worker_concurrency, name=f"{victim.name}+"
    )
    workers[index] = replacement
    stack.workers[stack.workers.index(victim)] = replacement
    return kill
