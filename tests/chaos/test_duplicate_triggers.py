"""Two triggers of the same org at once, and two Beat processes at once: one batch only.

``loyalty.sync_org`` takes the org's run lock in Redis before anything else: of two triggers sent
together, one plans and runs the batch, the other starts nothing and is marked ``duplicate``,
naming the running one. Two Beats each send the nightly tick, and both ticks find the org in its
nightly window; the per-org, per-day marker (SET NX) lets only one of them start a run, so the
second tick starts nothing at all. Each Beat here starts with a schedule database whose nightly
tick last ran a day ago, as a Beat that was down finds it: the tick is due at once (instead of
5 minutes later), and the nightly hour is set to the org's local hour now.
"""

from __future__ import annotations

import ast
import math
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from loyalty_worker.config import Settings
from tests.chaos.helpers import (
    check_run,
    overdue_schedule,
    received_tasks,
    report,
    start_beat,
    start_queue_worker,
    trigger,
    wait_final,
    wait_until,
)
from tests.fixtures.pipeline import Stack, running_stack

pytestmark = pytest.mark.chaos

CUSTOMERS = 250
CHUNKS = math.ceil(CUSTOMERS / Settings().sync_chunk_size)
QUEUES = "loyalty.runs,loyalty.customers,loyalty.batch"


def run_ids(stack: Stack) -> list[str]:
    """Every run Redis knows of."""
    client = redis.Redis.from_url(stack.redis_url)
    try:
        keys = client.scan_iter("loyalty:run:*:meta")
        return sorted(
            key.decode().removeprefix("loyalty:run:").removesuffix(":meta") for key in keys
        )
    finally:
        client.close()


def registered_runs(stack: Stack) -> list[str]:
    """Every run registered (or summarised) in Firestore."""
    return sorted(doc.id for doc in stack.firestore.collection("loyalty_sync_runs").stream())


def test_two_triggers_at_once_start_one_batch(firestore_emulator: str, test_redis_url: str) -> None:
    with running_stack(
        firestore_emulator,
        *("--customers", str(CUSTOMERS), "--seed", "71", "--orgs", "1"),
        workers=0,
        redis_url=test_redis_url,
    ) as stack:
        worker = start_queue_worker(stack, QUEUES, name="w0", concurrency=8)
        (first, first_task), (second, second_task) = (
            trigger(stack, "org-1"),
            trigger(stack, "org-1"),
        )
        answers = {first: first_task.get(timeout=120), second: second_task.get(timeout=120)}
        [winner] = [run_id for run_id, answer in answers.items() if answer["started"]]
        [loser] = [run_id for run_id in answers if run_id != winner]
        assert answers[loser]["runId"] == winner, answers

        wait_final(stack, winner, timeout_s=180)
        duplicate = stack.tracker.progress(loser)
        assert duplicate.status == "duplicate", duplicate
        assert stack.tracker.meta(loser)["runningRunId"] == winner
        assert duplicate.done == 0 and duplicate.listed is None, duplicate
        outcome = check_run(stack, winner, allowed_failures=())
        assert registered_runs(stack) == [winner]
        chunks = received_tasks(worker.output(), "loyalty.sync_chunk")
        assert len(chunks) == CHUNKS and set(chunks.values()) == {1}, chunks
        report(
            "7a two triggers",
            outcome,
            other_run=duplicate.status,
        )


def test_two_beats_at_once_start_one_batch(
    firestore_emulator: str, test_redis_url: str, tmp_path: Path
) -> None:
    with running_stack(
        firestore_emulator,
        *("--customers", str(CUSTOMERS), "--seed", "73", "--orgs", "1"),
        workers=0,
        redis_url=test_redis_url,
    ) as stack:
        local = datetime.now(ZoneInfo(stack.org("org-1")["settings"]["timezone"]))
        nightly = {
            "LOYALTY_NIGHTLY_HOUR": str(local.hour),
            "LOYALTY_NIGHTLY_WINDOW_H": str(max(1, min(12, 24 - local.hour))),
        }
        worker = start_queue_worker(stack, QUEUES, name="w0", concurrency=8, env=nightly)
        beats = []
        for name in ("beat-a", "beat-b"):
            schedule_file = tmp_path / f"{name}-schedule"
            overdue_schedule(
                schedule_file, "loyalty-nightly-tick", "loyalty.nightly_tick", 300, 240
            )
            beats.append(start_beat(stack, name=name, schedule_file=schedule_file, env=nightly))

        for beat in beats:
            wait_until(
                lambda beat=beat: "Sending due task loyalty-nightly-tick" in beat.output(),  # type: ignore[misc]
                timeout_s=60,
                what=f"{beat.name} sends the nightly tick",
            )
        ticks = wait_until(
            lambda: ticked(worker.output()) if len(ticked(worker.output())) == 2 else None,
            timeout_s=120,
            what="both nightly ticks ran",
        )
        assert sorted(ticks) == [[], ["org-1"]], ticks
        [run_id] = wait_until(lambda: run_ids(stack), timeout_s=60, what="the nightly run starts")
        wait_final(stack, run_id, timeout_s=180)

        outcome = check_run(stack, run_id, allowed_failures=())
        assert run_ids(stack) == [run_id]
        assert registered_runs(stack) == [run_id]
        assert len(received_tasks(worker.output(), "loyalty.sync_org")) == 1
        chunks = received_tasks(worker.output(), "loyalty.sync_chunk")
        assert len(chunks) == CHUNKS and set(chunks.values()) == {1}, chunks
        report(
            "7b two Beats",
            outcome,
            nightly_ticks=len(ticks),
            runs_started=1,
        )


def ticked(output: str) -> list[list[str]]:
    """What each ``loyalty.nightly_tick`` the worker ran returned (the orgs it started); the
    line's log context (``[task=...]``, after the message) is not part of it."""
    return [
        ast.literal_eval(_LOG_CONTEXT.sub("", line.split(" succeeded in ", 1)[1].split(": ", 1)[1]))
        for line in output.splitlines()
        if "Task loyalty.nightly_tick[" in line and " succeeded in " in line
    ]


# The ids the text log format puts after each message (``logs.context_suffix``).
_LOG_CONTEXT = re.compile(r" \[(?:run|org|customer|task)=[^\]]*\]$")
