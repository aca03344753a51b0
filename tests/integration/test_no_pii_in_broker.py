"""No raw phone, name or e-mail of the dataset in the broker, the result backend or Flower.

A full batch on real parts (Redis, a Celery worker, Flower, the sandbox with its documented
Alpine IQ listing, so every customer with a phone is looked up in the chunk tasks) while Alpine
IQ fails the look-ups (all of them until a customer sent on alone has retried, then a share),
so customers go on alone and retry. Every command Redis
receives is recorded (MONITOR): each message published, moved to ``unacked``, retried, each
result written; Celery's message bodies are base64 in their envelopes and are read decoded, and
the run's kept chunks (compressed) are read decompressed from the run while it goes. At
the end every key's value and Flower's task API are read too. The one place a raw phone may
sit is the run's own side entry, ``loyalty:run:{runId}:phones``, gone once the run is summarised.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest
import redis

from loyalty_worker import devstack
from loyalty_worker.progress import watch_run
from tests.fixtures.pipeline import Stack, running_stack, wait_for

pytestmark = pytest.mark.integration

FLOWER_USER = "admin"
FLOWER_PASSWORD = "Tq8vLm2Rz5Kw9Hx4"  # a test stack's own
# Share of Alpine IQ calls failed once the run's plan is read: look-ups fail, customers retry.
LOOKUP_ERROR_RATE = 0.25
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_PHONES_KEY = re.compile(r"^loyalty:run:[^ ]+:phones$")
_CHUNKS_KEY = re.compile(r"^loyalty:run:[^ ]+:chunks$")


@dataclass
class RedisRecorder:
    """Every command a Redis receives while recording (MONITOR), kept as text."""

    client: redis.Redis
    commands: list[str] = field(default_factory=list)
    _monitor: Any = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._monitor = self.client.monitor().__enter__()  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(target=self._record, daemon=True)
        self._thread.start()

    def _record(self) -> None:
        try:
            while True:
                self.commands.append(str(self._monitor.next_command()["command"]))
        except (redis.RedisError, OSError, ValueError, AttributeError):
            return  # stopped

    def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.connection.disconnect()
        if self._thread is not None:
            self._thread.join(timeout=10)


def decoded(text: str) -> str:
    """``text`` with every base64 run in it decoded beside it (Celery message bodies)."""
    parts = [text]
    for token in _BASE64.findall(text):
        try:
            parts.append(base64.b64decode(token + "=" * (-len(token) % 4)).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError):
            continue
    return "\n".join(parts)


def is_side_entry(command: str) -> bool:
    """A command on a run's kept phones (the designed place for them)."""
    return _on_key(command, _PHONES_KEY)


def is_kept_chunk(command: str) -> bool:
    """A command on a run's kept chunks: zlib-compressed copies of its chunk messages' bodies,
    binary as MONITOR shows it (read decompressed from the run instead, ``kept_chunks_text``)."""
    return _on_key(command, _CHUNKS_KEY)


def _on_key(command: str, key: re.Pattern[str]) -> bool:
    words = command.split(" ", 2)
    return len(words) > 1 and bool(key.match(words[1]))


def key_values(client: redis.Redis) -> dict[str, str]:
    """Every key's value, whatever its type, as text."""
    values: dict[str, str] = {}
    for raw_key in client.scan_iter(count=1000):
        key = raw_key.decode()
        kind = _text(client.type(raw_key))
        value: Any
        if kind == "string":
            value = client.get(raw_key)
        elif kind == "list":
            value = client.lrange(raw_key, 0, -1)
        elif kind == "hash":
            value = client.hgetall(raw_key)
        elif kind == "set":
            value = client.smembers(raw_key)
        elif kind == "zset":
            value = client.zrange(raw_key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(raw_key)
        else:
            value = kind
        values[key] = decoded(_text(value))
    return values


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return " ".join(f"{_text(k)} {_text(v)}" for k, v in value.items())
    if isinstance(value, list | set | tuple):
        return " ".join(_text(item) for item in value)
    return str(value)


@dataclass(frozen=True)
class Pii:
    """What of the dataset must never show: phones (10 digits and as the dataset writes them),
    names and e-mails, each with the pattern that finds it."""

    patterns: dict[str, re.Pattern[str]]
    masked: set[str]

    @classmethod
    def of(cls, dataset: dict[str, Any]) -> Pii:
        patterns: dict[str, re.Pattern[str]] = {}
        masked: set[str] = set()

        def phone(shown: str | None) -> None:
            digits = re.sub(r"\D", "", shown or "")
            if len(digits) < 10:
                return  # no phone ("12345", "0000": not a number anyone could call)
            ten = digits[-10:]
            patterns[ten] = re.compile(rf"(?<!\d){ten}(?!\d)")
            patterns[shown or ten] = re.compile(re.escape(shown or ten))
            masked.add(f"***-***-{ten[-4:]}")

        def word(text: str | None) -> None:
            if text and text != "guest":  # walk-ins' placeholder, not a name
                patterns[text] = re.compile(rf"(?<![\w'.]){re.escape(text)}(?![\w'])")

        for org in dataset["orgs"]:
            for customer in org["customers"]:
                phone(customer.get("phone"))
                word(customer.get("name_first"))
                word(customer.get("name_last"))
                if customer.get("email"):
                    patterns[customer["email"]] = re.compile(re.escape(customer["email"]))
            for contact in org["alpineContacts"]:
                phone(contact.get("phone"))
                word(contact.get("firstName"))
                word(contact.get("lastName"))
        return cls(patterns, masked)

    def found_in(self, text: str) -> list[str]:
        return sorted(value for value, pattern in self.patterns.items() if pattern.search(text))


@pytest.fixture(scope="module")
def pii_stack(firestore_emulator: str, test_redis_url: str) -> Iterator[Stack]:
    """120 customers (seed 13), the documented Alpine IQ listing, 5 customers a chunk, one
    HTTP attempt per call (a failed look-up is the task's to retry), the look-ups all the
    tasks' (``LOYALTY_PLAN_LOOKUPS`` off)."""
    with running_stack(
        firestore_emulator,
        *("--customers", "120", "--seed", "13", "--orgs", "1", "--latency-ms", "20"),
        redis_url=test_redis_url,
        worker_env={
            "LOYALTY_SYNC_CHUNK_SIZE": "5",
            "LOYALTY_HTTP_MAX_ATTEMPTS": "1",
            # Every look-up made by a task, none by the plan: the phones a task must look up
            # (and a customer's retry alone) are what this test follows through the broker.
            "LOYALTY_PLAN_LOOKUPS": "false",
            "LOYALTY_FLOWER_PASSWORD": FLOWER_PASSWORD,
        },
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def flower(pii_stack: Stack) -> Iterator[str]:
    """Flower (basic auth, as in production) on the stack's broker; its base URL."""
    port = devstack.free_port()
    child = devstack.start_flower(pii_stack.env, port=port, auth=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _flower_tasks(url) is not None, timeout_s=60)
        yield url
    finally:
        child.stop()


def _flower_tasks(url: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{url}/api/tasks", auth=(FLOWER_USER, FLOWER_PASSWORD), timeout=10)
    except httpx.HTTPError:
        return None
    return cast(dict[str, Any], response.json()) if response.status_code == 200 else None


def _alone_retried(flower: str, run_id: str) -> bool:
    """Flower shows a customer of the run sent on alone and retried at least once."""
    tasks = _flower_tasks(flower) or {}
    return any(
        t.get("name") == "loyalty.sync_customer"
        and run_id in str(t.get("kwargs"))
        and t.get("retries")
        for t in tasks.values()
    )


def _fail_look_ups_once_planned(stack: Stack, run_id: str, flower: str) -> str:
    """The plan reads Alleaves and Alpine IQ's listing (one attempt per call here): the faults
    start once it has sent its work, so that only the tasks' look-ups fail. Every call fails
    until a customer sent on alone has been retried (so a retry is certain, whatever the
    timing), then a share of them for the rest of the run.

    Returns the run's kept chunks at that moment, decompressed (those of the customers still
    waiting for a result), as text."""
    wait_for(lambda: stack.tracker.meta(run_id).get("status") == "syncing", poll_s=0.01)
    stack.sandbox.set_faults(error_rate=1.0)
    try:
        wait_for(lambda: _alone_retried(flower, run_id), timeout_s=120, poll_s=0.2)
        return json.dumps(stack.tracker.kept_chunks(run_id))
    finally:
        stack.sandbox.set_faults(error_rate=LOOKUP_ERROR_RATE)


def test_no_raw_phone_name_or_email_in_redis_or_flower(pii_stack: Stack, flower: str) -> None:
    stack = pii_stack
    client = redis.Redis.from_url(stack.redis_url)
    pii = Pii.of(stack.dataset)
    assert len(pii.patterns) > 100  # the dataset has phones, names and e-mails to look for
    recorder = RedisRecorder(redis.Redis.from_url(stack.redis_url))
    recorder.start()
    stack.sandbox.reset_stats()
    run_id = f"pii-{uuid.uuid4().hex[:10]}"
    try:
        stack.celery.send_task("loyalty.sync_org", args=["org-1"], kwargs={"run_id": run_id})
        kept_chunks = _fail_look_ups_once_planned(stack, run_id, flower)
        progress = watch_run(stack.tracker, run_id, timeout_s=240)
        stack.sandbox.reset_faults()
        # a public single-customer sync too: its result sits in the result backend
        cid = stack.org("org-1")["customers"][0]["id_customer"]
        stack.celery.send_task("loyalty.sync_customer", args=["org-1", cid]).get(timeout=60)
        time.sleep(1.0)  # the last events reach Flower, the last commands the recorder
    finally:
        recorder.stop()
    assert progress.status == "completed", progress
    assert progress.summary is not None

    # The run did what the test is about: per-customer look-ups, some failing and retried.
    stats = stack.sandbox.stats()["alpine"]
    assert stats["server_errors"] > 0, stats
    contacts = {c["phone"] for c in stack.org("org-1")["alpineContacts"]}
    assert stats["requests"] > len(contacts) // 2, stats
    commands = recorder.commands
    side_entry = [c for c in commands if is_side_entry(c)]
    assert any(c.upper().startswith("HSET") for c in side_entry)
    assert any(c.upper().startswith("HMGET") for c in side_entry)

    # Every command Redis received, message bodies decoded, kept chunks decompressed: no PII
    # outside the side entry.
    assert any(c.upper().startswith("HSET") for c in commands if is_kept_chunk(c))
    assert '"orders"' in kept_chunks  # payloads, read while their customers still waited
    sent = "\n".join(decoded(c) for c in commands if not (is_side_entry(c) or is_kept_chunk(c)))
    corpus = sent + "\n" + kept_chunks
    assert "loyalty.sync_chunk" in corpus and "loyalty.sync_customer" in corpus
    assert "<5 customers>" in corpus  # argsrepr, in the message headers
    assert any(m in corpus for m in pii.masked)  # bodies were read: their masked phones show
    assert pii.found_in(corpus) == []

    # What is left in Redis: queues, unacked, results, run state, memo. The side entry is gone.
    values = key_values(client)
    assert not any(_PHONES_KEY.match(key) for key in values), sorted(values)
    assert any(key.startswith("celery-task-meta-") for key in values)
    assert {key: pii.found_in(text) for key, text in values.items() if pii.found_in(text)} == {}

    # Flower's task view: arguments, results, exceptions and tracebacks of every task.
    tasks = _flower_tasks(flower)
    assert tasks is not None
    names = {task.get("name") for task in tasks.values()}
    assert {"loyalty.sync_org", "loyalty.sync_chunk", "loyalty.sync_customer"} <= names
    chunk_args = {t.get("args") for t in tasks.values() if t.get("name") == "loyalty.sync_chunk"}
    assert f"('org-1', '{run_id}', '<5 customers>')" in chunk_args
    alone = [
        t
        for t in tasks.values()
        if t.get("name") == "loyalty.sync_customer" and run_id in str(t.get("kwargs"))
    ]
    assert alone, "no customer went on alone"
    assert any(t.get("retries") for t in alone)  # Celery retries, ...
    assert all("'work': '<customer " in str(t.get("kwargs")) for t in alone)  # ...shown as sent
    assert pii.found_in(json.dumps(tasks)) == []
