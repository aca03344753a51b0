"""The worker's metrics: what each instrument counts, what the collectors read from Redis at
scrape time, the endpoint's port, and labels that never grow with customers."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import fakeredis
import httpx
import pytest
from celery.signals import task_postrun, task_prerun, task_retry
from prometheus_client import CollectorRegistry

from loyalty_worker import names, worker_metrics
from loyalty_worker.adapters import metrics
from loyalty_worker.adapters.fair_share import RedisFairShare
from loyalty_worker.adapters.http import Call, RetryPolicy, send
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.adapters.worker_collectors import (
    FairShareCollector,
    QueueCollector,
    RunsCollector,
    published_at,
)
from loyalty_worker.config import Settings
from loyalty_worker.errors import TransientError

NOW = 1_700_000_000.0


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def _message(sent: float | None) -> bytes:
    headers = {"task": names.SYNC_CHUNK} | ({"published_at": sent} if sent is not None else {})
    return json.dumps({"body": "", "headers": headers, "properties": {}}).encode()


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def registry(client: fakeredis.FakeRedis) -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    registry.register(QueueCollector(lambda: client, names.WORKER_QUEUES, clock=lambda: NOW))
    fair = RedisFairShare(client, batch_queue=names.BATCH_QUEUE, ttl_s=60)
    registry.register(FairShareCollector(lambda: fair))
    registry.register(RunsCollector(lambda: RunTracker(client)))
    yield registry


def test_queue_depth_and_the_oldest_messages_age(
    client: fakeredis.FakeRedis, registry: CollectorRegistry
) -> None:
    # kombu pushes on the left: the oldest message is the list's tail.
    client.lpush(names.BATCH_QUEUE, _message(NOW - 90), _message(NOW - 5))
    assert _value(registry, "loyalty_queue_messages", queue=names.BATCH_QUEUE) == 2
    assert _value(registry, "loyalty_queue_oldest_age_seconds", queue=names.BATCH_QUEUE) == 90
    assert _value(registry, "loyalty_queue_messages", queue=names.RUNS_QUEUE) == 0
    assert _value(registry, "loyalty_queue_oldest_age_seconds", queue=names.RUNS_QUEUE) == 0


def test_a_message_without_a_publish_time_counts_but_gives_no_age(
    client: fakeredis.FakeRedis, registry: CollectorRegistry
) -> None:
    client.lpush(names.PUBLIC_QUEUE, _message(None))
    assert _value(registry, "loyalty_queue_messages", queue=names.PUBLIC_QUEUE) == 1
    assert _value(registry, "loyalty_queue_oldest_age_seconds", queue=names.PUBLIC_QUEUE) is None
    assert published_at(b"not json") is None


def test_runs_going_show_their_progress_and_a_finished_one_shows_zero(
    client: fakeredis.FakeRedis, registry: CollectorRegistry
) -> None:
    client.set("loyalty:lock:org-1", "run-a")
    client.hset("loyalty:run:run-a:meta", mapping={"orgId": "org-1", "listed": "10"})
    client.hset("loyalty:run:run-a:results", mapping={"1": "{}", "2": "{}", "3": "{}"})
    client.sadd("loyalty:run:run-a:failed", "3")
    assert _value(registry, "loyalty_run_in_progress", org="org-1") == 1
    assert _value(registry, "loyalty_run_customers", org="org-1", state="listed") == 10
    assert _value(registry, "loyalty_run_customers", org="org-1", state="done") == 3
    assert _value(registry, "loyalty_run_customers", org="org-1", state="failed") == 1
    client.delete("loyalty:lock:org-1")
    assert _value(registry, "loyalty_run_in_progress", org="org-1") == 0


def test_waiting_chunks_are_read_from_the_fair_share(registry: CollectorRegistry) -> None:
    assert _value(registry, "loyalty_fair_waiting_chunks") == 0


def test_redis_down_leaves_the_families_out_and_the_scrape_answers() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    dead = fakeredis.FakeRedis(server=server)
    registry = CollectorRegistry()
    registry.register(QueueCollector(lambda: dead, names.WORKER_QUEUES))
    registry.register(RunsCollector(lambda: RunTracker(dead)))
    assert _value(registry, "loyalty_queue_messages", queue=names.BATCH_QUEUE) is None


def test_upstream_calls_are_counted_by_api_route_and_outcome() -> None:
    statuses = iter([503, 200])
    http = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(next(statuses))))
    before_ok = _value(metrics.REGISTRY, "loyalty_upstream_requests_total", **_ok("orders"))
    before_retries = _value(metrics.REGISTRY, "loyalty_retries_total", kind="http") or 0
    call = Call("GET", "http://alleaves.test/api/order", params={"page": 1})
    send(http, call, service="alleaves", policy=RetryPolicy(wait=False))
    assert (
        _value(metrics.REGISTRY, "loyalty_upstream_requests_total", **_ok("orders"))
        == (before_ok or 0) + 1
    )
    assert _value(metrics.REGISTRY, "loyalty_retries_total", kind="http") == before_retries + 1
    failed = {"api": "alleaves", "route": "orders", "outcome": "server_error"}
    assert (_value(metrics.REGISTRY, "loyalty_upstream_requests_total", **failed) or 0) >= 1


def _ok(route: str) -> dict[str, str]:
    return {"api": "alleaves", "route": route, "outcome": "ok"}


def test_timeouts_and_connection_errors_are_outcomes_of_their_own() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(TransientError):
        send(
            http,
            Call("POST", "http://alpine.test/api/v1.1/piis/uid"),
            service="alpine_iq",
            policy=RetryPolicy(max_attempts=1, wait=False),
        )
    labels = {"api": "alpine", "route": "contacts", "outcome": "connection_error"}
    assert (_value(metrics.REGISTRY, "loyalty_upstream_requests_total", **labels) or 0) >= 1
    timeout = httpx.ReadTimeout("slow")
    assert metrics.upstream_outcome(None, timeout) == "timeout"
    assert metrics.upstream_outcome(429, None) == "rate_limited"
    assert metrics.upstream_outcome(404, None) == "client_error"


@pytest.mark.parametrize(
    ("api", "url", "route"),
    [
        ("alleaves", "https://app.alleaves.com/api/auth", "login"),
        ("alleaves", "https://app.alleaves.com/api/customer/search", "customers"),
        ("alleaves", "https://app.alleaves.com/api/order?page=2", "orders"),
        ("alpine", "https://lab.alpineiq.com/api/v2/loyalty/lookup/5551234567", "contact"),
        ("alpine", "https://lab.alpineiq.com/api/v2/wallet", "contact"),
        ("alpine", "https://lab.alpineiq.com/api/v1.1/piis/uid", "contacts"),
        ("discord", "https://discord.com/api/webhooks/1/token", "webhook"),
    ],
)
def test_route_groups_are_fixed_words_never_parts_of_the_path(
    api: str, url: str, route: str
) -> None:
    assert metrics.route_group(api, url) == route


def test_firestore_operations_are_timed_and_counted_by_outcome() -> None:
    ops = "loyalty_firestore_operations_total"
    before = _value(metrics.REGISTRY, ops, op="write", outcome="ok")
    with metrics.firestore_operation("write"):
        pass
    with pytest.raises(RuntimeError), metrics.firestore_operation("write"):
        raise RuntimeError("refused")
    assert _value(metrics.REGISTRY, ops, op="write", outcome="ok") == (before or 0) + 1
    assert (_value(metrics.REGISTRY, ops, op="write", outcome="error") or 0) >= 1


def test_a_taken_port_stops_the_worker_naming_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit, match=f"LOYALTY_METRICS_PORT {port} is taken"):
            worker_metrics.serve(Settings(metrics_port=port))


def test_port_zero_serves_nothing() -> None:
    assert worker_metrics.serve(Settings(metrics_port=0)) is None
    assert Settings().metrics_port == 9808


def test_no_label_grows_with_customers(registry: CollectorRegistry) -> None:
    """Every label of every family, the worker's and the collectors', is one of a bounded set."""
    seen: set[str] = set()
    for source in (metrics.REGISTRY, registry):
        for family in source.collect():
            for sample in family.samples:
                seen |= set(sample.labels) - {"le"}
    for collector in (metrics.TASK_DURATION, metrics.UPSTREAM_REQUESTS, metrics.RATE_LIMIT_WAIT):
        seen |= set(collector._labelnames)
    assert seen
    assert seen <= metrics.ALLOWED_LABELS


class _Task:
    """What the task signals read of a task: its name."""

    name = "loyalty.sync_chunk"


def test_tasks_are_timed_by_name_and_outcome_and_retries_counted() -> None:
    chunk = _Task()

    def count(outcome: str) -> float:
        labels = {"task": "loyalty.sync_chunk", "outcome": outcome}
        return _value(metrics.REGISTRY, "loyalty_task_duration_seconds_count", **labels) or 0

    done, retried = count("success"), count("retry")
    retries = _value(metrics.REGISTRY, "loyalty_retries_total", kind="task") or 0
    for task_id, state in (("t1", "SUCCESS"), ("t2", "RETRY")):
        task_prerun.send(sender=chunk, task_id=task_id, task=chunk)
        task_postrun.send(sender=chunk, task_id=task_id, task=chunk, state=state)
    task_retry.send(sender=chunk, request=None, reason="later")
    assert (count("success"), count("retry")) == (done + 1, retried + 1)
    assert _value(metrics.REGISTRY, "loyalty_retries_total", kind="task") == retries + 1
