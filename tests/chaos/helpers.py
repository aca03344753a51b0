"""What the chaos cases share: Redis servers, workers on chosen queues, Beat, the checks.

Every case ends with ``check_run``: every listed customer accounted for exactly once, every synced
profile equal to what the rules give (``tests.reference``), one summary and one Discord post for
the run. ``report`` prints each case's figures and keeps them for the end of the session.
"""

from __future__ import annotations

import json
import os
import shelve
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import celery
import redis
from celery import Celery
from celery.beat import ScheduleEntry
from celery.result import AsyncResult
from celery.schedules import schedule

from loyalty_worker import devstack
from loyalty_worker.adapters.run_state import Progress
from tests.fixtures.pipeline import Stack
from tests.reference import LOYALTY_KEYS, expected_profiles

T = TypeVar("T")

FINAL_STATUSES = frozenset({"completed", "failed", "incomplete", "duplicate"})
QUEUES = ("loyalty.runs", "loyalty.customers", "loyalty.batch")
# Lines of each worker's log printed when a run does not end in time.
WORKER_LOG_TAIL = 150

# One line per case, printed as it ends and again at the end of the session.
REPORT: list[str] = []


def report(case: str, outcome: Outcome, **figures: object) -> None:
    """The case's counts (listed, synced, unchanged, failed, Discord posts), then ``figures``."""
    figures = {
        "listed": outcome.listed,
        "synced": outcome.synced,
        "unchanged": outcome.unchanged,
        "failed": outcome.failed,
        "discord_posts": outcome.posts,
        **figures,
    }
    line = f"{case}: " + ", ".join(f"{name.replace('_', ' ')} {v}" for name, v in figures.items())
    REPORT.append(line)
    print(line)


# --- processes -----------------------------------------------------------------------------


def port_of(url: str) -> int:
    port = urllib.parse.urlparse(url).port
    assert port is not None
    return port


def start_queue_worker(
    stack: Stack,
    queues: str,
    *,
    name: str,
    concurrency: int = 4,
    env: Mapping[str, str] | None = None,
) -> devstack.ChildProcess:
    """A worker consuming only ``queues`` (comma-separated); the stack stops it at its end."""
    hostname = f"{name}-{os.getpid()}-{devstack.free_port()}@%h"
    child = devstack.ChildProcess.start(
        name,
        devstack.celery_argv(
            "worker",
            "-Q",
            queues,
            "--pool=threads",
            f"--concurrency={concurrency}",
            "--loglevel=INFO",
            f"--hostname={hostname}",
            "--without-gossip",
            "--without-mingle",
        ),
        # Each worker its own metrics port: several on one host never clash.
        env={**stack.env, "LOYALTY_METRICS_PORT": str(devstack.free_port()), **(env or {})},
    )
    stack.workers.append(child)
    child.wait_for_line(r"ready\.", timeout_s=60.0)
    return child


def start_beat(
    stack: Stack, *, name: str, schedule_file: Path, env: Mapping[str, str] | None = None
) -> devstack.ChildProcess:
    """``celery -A loyalty_worker.celery_app beat`` with its own schedule database."""
    child = devstack.ChildProcess.start(
        name,
        devstack.celery_argv("beat", "--loglevel=INFO", f"--schedule={schedule_file}"),
        # Each worker its own metrics port: several on one host never clash.
        env={**stack.env, "LOYALTY_METRICS_PORT": str(devstack.free_port()), **(env or {})},
    )
    stack.workers.append(child)
    child.wait_for_line(r"beat: Starting", timeout_s=60.0)
    return child


def overdue_schedule(path: Path, entry: str, task: str, every_s: float, expires_s: float) -> None:
    """A Beat schedule database whose ``entry`` last ran long ago, as a Beat that was down finds
    it: such an entry is due the moment Beat starts (and once, however many ticks it missed)."""
    with shelve.open(str(path)) as db:  # noqa: S301 - Beat's own format, written here
        db["entries"] = {
            entry: ScheduleEntry(
                name=entry,
                task=task,
                last_run_at=datetime.now(UTC) - timedelta(days=1),
                schedule=schedule(every_s),
                options={"expires": expires_s},
            )
        }
        db["__version__"] = celery.__version__
        db["tz"] = "UTC"
        db["utc_enabled"] = True


# --- waiting -------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T | None], *, timeout_s: float, what: str, poll_s: float = 0.05
) -> T:
    """Poll until ``predicate()`` is truthy; its value. AssertionError naming ``what`` after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(poll_s)


def trigger(stack: Stack, org_id: str, **kwargs: Any) -> tuple[str, AsyncResult]:
    """Send ``loyalty.sync_org`` with a fresh run id; the run id and the task's result."""
    run_id = f"chaos-{uuid.uuid4().hex[:10]}"
    result = stack.celery.send_task(
        "loyalty.sync_org", args=[org_id], kwargs={"run_id": run_id, **kwargs}
    )
    return run_id, result


def watchdog(stack: Stack) -> list[str]:
    """One pass of ``loyalty.watchdog``, sent as Beat sends it; the runs it closed."""
    passed: dict[str, list[str]] = stack.celery.send_task(
        "loyalty.watchdog", queue="loyalty.runs"
    ).get(timeout=60)
    return passed["closed"]


def celery_client(redis_url: str) -> Celery:
    """A client like the stack's own, on fresh connections (after Redis was restarted)."""
    app = Celery("tests", broker=redis_url, backend=redis_url)
    app.conf.task_routes = {
        "loyalty.sync_org": {"queue": "loyalty.runs"},
        "loyalty.sync_customer": {"queue": "loyalty.customers"},
    }
    return app


def wait_final(stack: Stack, run_id: str, *, timeout_s: float) -> Progress:
    """The run's progress once it has ended (completed, failed, incomplete or duplicate)."""

    def ended() -> Progress | None:
        progress = stack.tracker.progress(run_id)
        return progress if progress.status in FINAL_STATUSES else None

    try:
        return wait_until(ended, timeout_s=timeout_s, what=f"run {run_id} ends", poll_s=0.2)
    except AssertionError:
        # What the run's records say and what the workers did is the only account of why.
        client = redis.Redis.from_url(stack.redis_url)
        try:
            queued = {q: client.llen(q) for q in QUEUES} | {"unacked": client.hlen("unacked")}
        finally:
            client.close()
        record = stack.firestore.collection("loyalty_sync_runs").document(run_id).get().to_dict()
        print(
            f"--- run {run_id}: Redis {stack.tracker.meta(run_id)}",
            f"Firestore {record}",
            f"broker {queued}",
            sep="\n",
        )
        for worker in stack.workers:
            tail = worker.output().splitlines()[-WORKER_LOG_TAIL:]
            print(f"--- {worker.name}, last {len(tail)} lines ---", *tail, sep="\n")
        raise


def phase(stack: Stack, run_id: str) -> str:
    """Where the run is, from its record: planning, sending, chunk work, summarising, ended."""
    meta = stack.tracker.meta(run_id)
    if "summary" in meta:
        return "ended"
    if meta.get("fired") == "1":
        return "summarising"
    if "dispatchedAt" in meta:
        return "chunk work"
    if "listedAt" in meta:
        return "sending"
    return "planning"


def reset_org(stack: Stack, org_id: str) -> None:
    """The org's profiles as the dataset seeds them: the next run has every customer to write."""
    org = stack.org(org_id)
    profiles = stack.firestore.collection("customers")
    ids = [c["id_customer"] for c in org["customers"] if c.get("id_customer") is not None]
    for start in range(0, len(ids), 400):
        batch = stack.firestore.batch()
        for cid in ids[start : start + 400]:
            batch.delete(profiles.document(f"{org_id}_{cid}"))
        batch.commit()
    batch = stack.firestore.batch()
    for profile in org["profiles"]:
        fields = {k: v for k, v in profile.items() if k != "customerId"}
        batch.set(profiles.document(f"{org_id}_{profile['customerId']}"), fields)
    batch.commit()


def broker_idle(stack: Stack) -> bool:
    """No task message left in the broker: none queued, none held by a worker (a retry waiting
    for its countdown is held unacknowledged, so it counts as held)."""
    client = redis.Redis.from_url(stack.redis_url)
    try:
        return all(client.llen(q) == 0 for q in QUEUES) and client.hlen("unacked") == 0
    finally:
        client.close()


def received_tasks(output: str, task: str) -> Counter[str]:
    """Task ids a worker's log shows as received, with how many times."""
    ids: Counter[str] = Counter()
    for line in output.splitlines():
        if f"Task {task}[" in line and line.rstrip().endswith("] received"):
            ids[line.split(f"Task {task}[", 1)[1].split("]", 1)[0]] += 1
    return ids


def ended_tasks(output: str, task: str) -> set[str]:
    """Task ids a worker's log shows as ended (succeeded or retried)."""
    ids = set()
    for line in output.splitlines():
        if f"Task {task}[" in line and (" succeeded in " in line or " retry: " in line):
            ids.add(line.split(f"Task {task}[", 1)[1].split("]", 1)[0])
    return ids


# --- the checks ----------------------------------------------------------------------------


def posts_for(stack: Stack, run_id: str) -> list[devstack.WebhookPost]:
    """The Discord posts the sandbox received about ``run_id``."""
    return [m for m in stack.messages() if run_id in json.dumps(m["payload"])]


def read_profiles(stack: Stack, org_id: str, ids: Collection[int]) -> dict[int, dict[str, Any]]:
    """The stored profiles of ``ids`` (missing ones left out), read in batches."""
    profiles = stack.firestore.collection("customers")
    found: dict[int, dict[str, Any]] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), 300):
        refs = [profiles.document(f"{org_id}_{cid}") for cid in wanted[start : start + 300]]
        for snapshot in stack.firestore.get_all(refs):
            if snapshot.exists:
                found[int(snapshot.id.rsplit("_", 1)[1])] = snapshot.to_dict() or {}
    return found


@dataclass(frozen=True)
class Outcome:
    listed: int
    synced: int
    unchanged: int
    failed: int
    posts: int
    summary: dict[str, Any]
    failed_by_reason: dict[str, int]


def check_run(
    stack: Stack,
    run_id: str,
    org_id: str = "org-1",
    *,
    org: dict[str, Any] | None = None,
    status: str = "completed",
    allowed_failures: Collection[str] = ("malformed",),
    alert_sent: bool = True,
    summariser_killed_at: float | None = None,
) -> Outcome:
    """The end of every case: accounted once each, profiles as the rules give, one summary and
    one post (none when ``alert_sent`` is False: the summary records the failed alert).

    The alert is at least once: a worker killed (at ``summariser_killed_at``, a wall-clock
    time) after Discord took its post and before it kept that it did leaves the summary to the
    watchdog, which posts again. A second post is accepted then, and only when the first was
    received before the kill.

    A ``failed`` run stops before it lists anyone: it accounts for no customer and writes no
    profile."""
    org = org or stack.org(org_id)
    progress = stack.tracker.progress(run_id)
    assert progress.status == status, progress
    assert progress.summary is not None, progress
    summary: dict[str, Any] = dict(progress.summary)
    customers = [] if status == "failed" else org["customers"]
    listed = len(customers)

    # every listed customer accounted for exactly once
    assert summary["listed"] == listed, summary
    assert summary["synced"] + summary["unchanged"] + summary["failed"] == listed, summary
    assert summary["missing"] == 0, summary
    results = [result.to_dict() for result in stack.tracker.iter_results(run_id)]
    keys = Counter(str(r["customerId"]) for r in results)
    assert [k for k, n in keys.items() if n > 1] == [], "a customer counted twice"
    with_id = {str(c["id_customer"]) for c in customers if c.get("id_customer") is not None}
    assert set(keys) >= with_id, f"not accounted: {sorted(with_id - set(keys))[:10]}"
    assert len(keys) == listed, (len(keys), listed)

    # every synced profile as the rules give; failures only of the allowed kinds
    by_customer = {str(r["customerId"]): r for r in results}
    failed = {k: r for k, r in by_customer.items() if r["status"] == "failed"}
    unexpected = {
        k: r.get("reason") for k, r in failed.items() if r["reason"] not in allowed_failures
    }
    assert unexpected == {}, f"failures: {dict(list(unexpected.items())[:10])}"
    expected = expected_profiles({**org, "customers": customers})
    wanted = {cid: want for cid, want in expected.items() if str(cid) not in failed}
    stored = read_profiles(stack, org_id, wanted)
    seeded = {p["customerId"]: p for p in org["profiles"]}
    codes = {c.get("id_customer"): c.get("alpine_user_code") for c in customers}
    for cid, want in wanted.items():
        got = stored.get(cid)
        assert got is not None, f"customer {cid} has no profile"
        assert {k: got.get(k) for k in LOYALTY_KEYS} == want, f"customer {cid}"
        assert got["orgId"] == org_id and got["alleavesCustomerId"] == cid
        assert got.get("alpineUserId") == (codes[cid] or None)
        for name, value in seeded.get(cid, {}).items():  # Markitbot's own fields untouched
            if name != "customerId":
                assert got[name] == value, f"customer {cid}: {name} clobbered"

    if status == "failed":
        ids = [c["id_customer"] for c in org["customers"] if c.get("id_customer") is not None]
        touched = [
            cid
            for cid, got in read_profiles(stack, org_id, ids).items()
            if got.get("lastLoyaltySyncRunId") == run_id
        ]
        assert touched == [], f"a failed run wrote profiles: {touched[:10]}"

    # one summary (the stored one is the run's only one) and one Discord post
    stored_summary = (
        stack.firestore.collection("loyalty_sync_runs").document(run_id).get().to_dict()
    )
    assert stored_summary is not None, f"no summary stored for {run_id}"
    for name in ("status", "listed", "synced", "unchanged", "failed", "finishedAt"):
        assert stored_summary[name] == summary[name], name
    assert stored_summary["alert"]["sent"] is alert_sent, stored_summary["alert"]
    posts = posts_for(stack, run_id)
    posts_expected = 1 if alert_sent else 0
    if alert_sent and summariser_killed_at is not None and len(posts) == 2:
        first = datetime.fromisoformat(posts[0]["receivedAt"].replace("Z", "+00:00"))
        assert first.timestamp() <= summariser_killed_at, posts
        posts_expected = 2
    assert len(posts) == posts_expected, posts
    return Outcome(
        listed=listed,
        synced=summary["synced"],
        unchanged=summary["unchanged"],
        failed=summary["failed"],
        posts=len(posts),
        summary=summary,
        failed_by_reason=dict(summary["failedByReason"]),
    )
