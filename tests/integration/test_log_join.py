"""A run's log lines join by its run id, from the API's trigger to the summary, across the API
process and two worker processes (real Redis, Celery, sandbox and emulator, JSON logs).

The run is triggered over HTTP (``POST /api/loyalty/sync``) on a real ``loyalty-worker api``
process; its planner, its order-history readers, its chunks and its summary run on the
workers. Nothing else runs on this stack, so every task the workers received is the run's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from loyalty_worker import devstack
from loyalty_worker.domain.run import RunStatus
from tests.fixtures.pipeline import PHONE_HASH_KEY, Stack, running_stack, wait_for

pytestmark = pytest.mark.integration

TOKEN = "log-join-caller-Qm4Zr8Tx2Wc6"
ORG = "org-1"
CUSTOMERS = 120
CHUNK = 25
RECEIVED = re.compile(r"^Task (?P<name>loyalty\.\w+)\[(?P<id>[0-9a-f-]+)\] received$")

Line = dict[str, Any]


@dataclass
class JoinedRun:
    run_id: str
    stack: Stack
    api_output: str
    worker_outputs: list[str]

    @property
    def api_lines(self) -> list[Line]:
        return json_lines(self.api_output)

    @property
    def worker_lines(self) -> list[Line]:
        return [line for output in self.worker_outputs for line in json_lines(output)]


def json_lines(output: str) -> list[Line]:
    """The JSON log lines of a process's output (Celery's banner and the like left out)."""
    lines = []
    for text in output.splitlines():
        if text.startswith("{"):
            lines.append(json.loads(text))
    return lines


@pytest.fixture(scope="module")
def joined(firestore_emulator: str, test_redis_url: str) -> Iterator[JoinedRun]:
    """org-1's run of 120 customers in chunks of 25, triggered over HTTP, followed to its
    summary; the API's and the workers' output once the summary's line is written."""
    with running_stack(
        firestore_emulator,
        *("--customers", str(CUSTOMERS), "--seed", "17"),
        workers=2,
        concurrency=4,
        worker_env={
            "LOYALTY_LOG_FORMAT": "json",
            "LOYALTY_PHONE_HASH_KEY": PHONE_HASH_KEY,
            "LOYALTY_SYNC_CHUNK_SIZE": str(CHUNK),
        },
        redis_url=test_redis_url,
    ) as stack:
        port = devstack.free_port()
        env = {**stack.env, "LOYALTY_API_TOKENS": json.dumps({TOKEN: [ORG]})}
        with devstack.start_api(env, port=port) as api:
            run_id = _run_over_http(f"http://127.0.0.1:{port}")
            summary_line = f'"run {run_id}: completed'
            wait_for(lambda: any(summary_line in w.output() for w in stack.workers))
            yield JoinedRun(run_id, stack, api.output(), [w.output() for w in stack.workers])


def _run_over_http(base_url: str) -> str:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10.0) as http:
        response = http.post("/api/loyalty/sync", json={"orgId": ORG})
        assert response.status_code == 202, response.text
        run_id: str = response.json()["runId"]

        def ended() -> bool:
            answer = http.get(f"/api/loyalty/runs/{run_id}")
            assert answer.status_code == 200, answer.text
            return RunStatus.of(answer.json()["status"]).ended

        wait_for(ended, timeout_s=180, poll_s=0.5)
        status = http.get(f"/api/loyalty/runs/{run_id}").json()
        assert status["status"] == "completed", status
    return run_id


def _of(lines: list[Line], logger: str) -> list[Line]:
    return [line for line in lines if line["logger"] == logger]


def test_the_api_lines_of_the_trigger_and_the_status_carry_the_run(joined: JoinedRun) -> None:
    lines = joined.api_lines
    (trigger,) = _of(lines, "loyalty_worker.api.routes.sync")
    assert trigger["message"].endswith(f"run {joined.run_id} enqueued")
    assert (trigger["run_id"], trigger["org_id"]) == (joined.run_id, ORG)
    requests = _of(lines, "loyalty_worker.api.app")
    posted = [line for line in requests if line["message"].startswith("POST /api/loyalty/sync")]
    polled = [line for line in requests if f"/api/loyalty/runs/{joined.run_id}" in line["message"]]
    assert len(posted) == 1 and polled
    for line in [*posted, *polled]:
        assert (line.get("run_id"), line.get("org_id")) == (joined.run_id, ORG), line


def test_every_task_line_of_the_workers_carries_the_run_and_the_org(joined: JoinedRun) -> None:
    lines = joined.worker_lines
    received: dict[str, str] = {}  # task id -> task name
    for line in lines:
        if match := RECEIVED.match(line["message"]):
            received[match["id"]] = match["name"]
    task_lines = [line for line in lines if "task_id" in line]
    assert task_lines
    for line in task_lines:
        assert (line.get("run_id"), line.get("org_id")) == (joined.run_id, ORG), line
        assert received[line["task_id"]] == line["task_name"], line
    # every task the workers were sent ran with the run's context: Celery's own line about its
    # end at least (written in the task's thread) names the task and carries the run
    assert set(received) == {line["task_id"] for line in task_lines}
    names = sorted(set(received.values()))
    assert {"loyalty.sync_org", "loyalty.sync_chunk", "loyalty.summarize_run"} <= set(names)
    chunks = [tid for tid, name in received.items() if name == "loyalty.sync_chunk"]
    assert len(chunks) >= CUSTOMERS // CHUNK, names


def test_the_planner_every_chunk_and_the_summary_say_so_in_the_run(joined: JoinedRun) -> None:
    run_lines = [line for line in joined.worker_lines if line.get("run_id") == joined.run_id]
    by_task: dict[str, list[Line]] = {}
    for line in run_lines:
        by_task.setdefault(line.get("task_name", "-"), []).append(line)
    (started,) = _of(run_lines, "loyalty_worker.services.run.start")
    assert started["task_name"] == "loyalty.sync_org" and started["outcome"] == "started"
    chunk_lines = _of(run_lines, "loyalty_worker.services.run.jobs")
    chunk_tasks = {line["task_id"] for line in by_task["loyalty.sync_chunk"]}
    assert {line["task_id"] for line in chunk_lines} == chunk_tasks
    assert all(line["message"].startswith(f"run {joined.run_id}: ") for line in chunk_lines)
    (summary,) = _of(run_lines, "loyalty_worker.services.run.closing")
    assert summary["message"].startswith(f"run {joined.run_id}: completed: {CUSTOMERS} listed")
    assert summary["task_name"] == "loyalty.summarize_run" and summary["org_id"] == ORG
    print(
        f"\n{len(run_lines)} lines of run {joined.run_id}: "
        + ", ".join(f"{name} {len(found)}" for name, found in sorted(by_task.items()))
    )


def test_no_line_carries_a_phone_number(joined: JoinedRun) -> None:
    phones: set[str] = set()
    for customer in joined.stack.org(ORG)["customers"]:
        raw = customer.get("phone") or ""
        digits = re.sub(r"\D", "", raw)
        if len(digits) >= 10:
            phones |= {digits[-10:], raw}
    assert phones
    for output in (joined.api_output, *joined.worker_outputs):
        assert sorted(phone for phone in phones if phone in output) == []
