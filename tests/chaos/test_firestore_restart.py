"""The Firestore emulator stopped for a few seconds mid-run, then started again on its port.

The run is planned and registered (reads of settings, the run's registration) before the stop;
its chunks are taken only once Firestore is down (the worker is told to consume
``loyalty.batch`` then, with the org's settings already cached), so every chunk of the run
meets the outage in its Firestore calls (the bulk read of its profiles, then the batched write):
it fails as ``firestore_unavailable``, and the chunk task retries with its backoff
(``LOYALTY_SYNC_MAX_RETRIES``, 1, 2, 4, 8, 16 s) until Firestore is back.

What is checked: the emulator keeps its data in memory, so the restart loses everything it held
(Markitbot's settings and profiles, and the run's registration). While the worker is frozen
(SIGSTOP), the test writes back what Markitbot had before the run (the dataset's settings and
profiles, as the stack seeded them), then resumes it. Then every customer must be accounted for
once, with no failure, and every profile must hold what the rules give and Markitbot's own fields
untouched: no write was lost. The summary, written in full at the end, replaces the lost
registration.

A second test has Firestore stop answering (the emulator frozen with SIGSTOP: no data lost) just
as the run's summary is written: the summary task retries until Firestore answers again, and the
run still posts exactly one alert.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from google.cloud import firestore

from loyalty_worker import devstack
from loyalty_worker.adapters.seed import seed_firestore
from loyalty_worker.config import Settings
from loyalty_worker.firestore_emulator import START_SCRIPT, EmulatorProcess, start_emulator
from loyalty_worker.sandbox.data import validate_dataset
from tests.chaos.helpers import (
    check_run,
    posts_for,
    report,
    start_queue_worker,
    trigger,
    wait_final,
    wait_until,
)
from tests.fixtures.pipeline import running_stack

pytestmark = pytest.mark.chaos

CUSTOMERS = 250
CHUNKS = math.ceil(CUSTOMERS / Settings().sync_chunk_size)


@pytest.fixture
def own_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EmulatorProcess]]:
    """An emulator of this case's own on a fixed port (the case restarts it there)."""
    emulators = [start_emulator(devstack.free_port())]
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulators[0].host)
    try:
        yield emulators
    finally:
        emulators[-1].stop()


def firestore_retries(output: str) -> int:
    """Chunk tasks retried because their profile read or write found Firestore unavailable."""
    return sum(
        1
        for line in output.splitlines()
        if "Task loyalty.sync_chunk[" in line and " retry: " in line and "firestore" in line
    )


def test_a_firestore_restart_mid_run_loses_no_write(
    own_emulator: list[EmulatorProcess], test_redis_url: str
) -> None:
    emulator = own_emulator[0]
    with running_stack(
        emulator.host,
        *("--customers", str(CUSTOMERS), "--seed", "45", "--orgs", "1"),
        workers=0,
        redis_url=test_redis_url,
    ) as stack:
        broker = redis.Redis.from_url(test_redis_url)
        worker = start_queue_worker(stack, "loyalty.runs", name="w0", concurrency=8)
        run_id, started = trigger(stack, "org-1")
        assert started.get(timeout=120)["started"] is True
        assert broker.llen("loyalty.batch") == CHUNKS

        emulator.stop()
        replies = stack.celery.control.add_consumer("loyalty.batch", reply=True, timeout=10)
        assert len(replies) == 1, replies
        wait_until(
            lambda: firestore_retries(worker.output()) >= 3,
            timeout_s=60,
            what="chunks meet the outage",
        )
        worker.kill(signal.SIGSTOP)
        own_emulator.append(start_emulator(emulator.port))
        stack.firestore = firestore.Client(project=stack.env["LOYALTY_FIRESTORE_PROJECT"])
        seed_firestore(stack.firestore, validate_dataset(stack.dataset))
        worker.kill(signal.SIGCONT)
        retried = firestore_retries(worker.output())

        wait_final(stack, run_id, timeout_s=180)
        outcome = check_run(stack, run_id, allowed_failures=())
        assert outcome.synced + outcome.unchanged == outcome.listed == CUSTOMERS
        report(
            "4 Firestore restart",
            outcome,
            chunks_retried_in_outage=retried,
        )


@pytest.fixture
def freezable_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[devstack.ChildProcess]:
    """An emulator of this case's own, as a child process the case can freeze (SIGSTOP)."""
    node = shutil.which("node")
    assert node is not None, "the Firestore emulator needs Node.js"
    port = devstack.free_port()
    child = devstack.ChildProcess.start(
        "firestore", [node, str(START_SCRIPT), str(port), "--host=127.0.0.1"]
    )
    try:
        child.wait_for_line(r"firestore emulator listening on", timeout_s=30.0)
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}")
        yield child
    finally:
        child.kill(signal.SIGCONT)
        child.stop()


def summary_retries(output: str) -> int:
    """``loyalty.summarize_run`` attempts retried (Firestore did not take the summary)."""
    return sum(
        1
        for line in output.splitlines()
        if "Task loyalty.summarize_run[" in line and " retry: " in line
    )


def test_firestore_unavailable_when_the_summary_is_written_still_posts_one_alert(
    freezable_emulator: devstack.ChildProcess, test_redis_url: str
) -> None:
    emulator = freezable_emulator
    with running_stack(
        os.environ["FIRESTORE_EMULATOR_HOST"],
        *("--customers", str(CUSTOMERS), "--seed", "47", "--orgs", "1"),
        workers=0,
        redis_url=test_redis_url,
    ) as stack:
        broker = redis.Redis.from_url(test_redis_url)
        worker = start_queue_worker(stack, "loyalty.runs", name="w0", concurrency=8)
        run_id, started = trigger(stack, "org-1")
        assert started.get(timeout=120)["started"] is True
        # The chunks go on; the summary waits in its queue until Firestore stops answering.
        control = stack.celery.control
        assert len(control.cancel_consumer("loyalty.runs", reply=True, timeout=10)) == 1
        assert len(control.add_consumer("loyalty.batch", reply=True, timeout=10)) == 1
        wait_until(
            lambda: stack.tracker.meta(run_id).get("fired") == "1",
            timeout_s=120,
            what="every result in, the summary fired",
        )
        wait_until(
            lambda: broker.llen("loyalty.runs") == 1, timeout_s=30, what="the summary is queued"
        )
        emulator.kill(signal.SIGSTOP)
        assert len(control.add_consumer("loyalty.runs", reply=True, timeout=10)) == 1
        wait_until(
            lambda: summary_retries(worker.output()) >= 2,
            timeout_s=90,
            what="the summary meets the outage",
        )
        emulator.kill(signal.SIGCONT)
        answering_again = datetime.now(UTC)

        wait_final(stack, run_id, timeout_s=120)
        outcome = check_run(stack, run_id, allowed_failures=())
        [post] = posts_for(stack, run_id)
        # posted by the first attempt, during the outage; the retries that wrote it posted nothing
        assert datetime.fromisoformat(post["receivedAt"]) < answering_again, post["receivedAt"]
        report(
            "4b Firestore frozen at summary",
            outcome,
            summary_retries=summary_retries(worker.output()),
        )
