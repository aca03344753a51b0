"""The worker process's metrics (``prometheus_client``), in one registry served on its own port.

Names and labels follow docs/operations.md "Metrics" and the alert rules in
``deploy/prometheus/``. Every label is bounded: task and queue names, API and route groups, org
ids, outcomes; never a customer id, phone or run id (``ALLOWED_LABELS``, checked by a test).
Counters and histograms are updated where the work happens; what lives in Redis (queues, waiting
chunks, runs going) is read when Prometheus scrapes, by the collectors of ``worker_collectors``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

# Every label any metric of the project may carry: none of them grows with customers.
ALLOWED_LABELS = frozenset(
    {
        "task",
        "outcome",
        "queue",
        "api",
        "route",
        "org",
        "op",
        "kind",
        "state",
        "status",
        "tier",
        "reason",
        "threshold",
    }
)

# No ``*_created`` series: nothing reads them, and they double what each scrape carries.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)

# A sync chunk takes seconds; planning a big org takes minutes.
_TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200)

TASK_DURATION = Histogram(
    "loyalty_task_duration_seconds",
    "Celery task run time, by task name and outcome (success, failure, retry).",
    ["task", "outcome"],
    buckets=_TASK_BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_REQUESTS = Counter(
    "loyalty_upstream_requests",
    "Calls to Alleaves, Alpine IQ and Discord (each attempt), by route group and outcome.",
    ["api", "route", "outcome"],
    registry=REGISTRY,
)
UPSTREAM_DURATION = Histogram(
    "loyalty_upstream_request_duration_seconds",
    "Time of each call to Alleaves, Alpine IQ and Discord (each attempt), by route group.",
    ["api", "route"],
    registry=REGISTRY,
)
RATE_LIMIT_WAIT = Counter(
    "loyalty_rate_limit_wait_seconds",
    "Seconds spent waiting for a slot of an org's per-second limit at an API.",
    ["api", "org"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "loyalty_retries",
    "Retries: of an HTTP call inside its policy (http), of a Celery task (task).",
    ["kind"],
    registry=REGISTRY,
)
FIRESTORE_OPERATIONS = Counter(
    "loyalty_firestore_operations",
    "Firestore calls (read, write, query), by outcome (ok, error).",
    ["op", "outcome"],
    registry=REGISTRY,
)
FIRESTORE_DURATION = Histogram(
    "loyalty_firestore_operation_duration_seconds",
    "Time of each Firestore call (a streamed query: the whole stream).",
    ["op"],
    registry=REGISTRY,
)

# The names the providers' clients give themselves (``SERVICE``), as the metrics name them.
_API_NAMES = {"alleaves": "alleaves", "alpine_iq": "alpine", "discord": "discord"}


def api_name(service: str) -> str:
    """The ``api`` label of a client's service name (``alpine_iq`` is ``alpine``)."""
    return _API_NAMES.get(service, "other")


def route_group(api: str, url: str) -> str:
    """The route group of a call: a fixed word per kind of path, never a part of the path."""
    try:
        path = httpx.URL(url).path
    except httpx.InvalidURL:
        return "other"
    if api == "alleaves":
        for word in ("auth", "customer", "order"):
            if f"/{word}" in path:
                return {"auth": "login", "customer": "customers", "order": "orders"}[word]
    elif api == "alpine":
        return "contacts" if "/piis" in path else "contact"
    elif api == "discord":
        return "webhook"
    return "other"


def upstream_outcome(status: int | None, error: BaseException | None) -> str:
    """ok, client_error, rate_limited, server_error, timeout or connection_error."""
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if error is not None or status is None:
        return "connection_error"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


def record_upstream(
    api: str, route: str, seconds: float, status: int | None, error: BaseException | None
) -> None:
    """One attempt of a call: its outcome counted, its time observed."""
    UPSTREAM_REQUESTS.labels(api, route, upstream_outcome(status, error)).inc()
    UPSTREAM_DURATION.labels(api, route).observe(seconds)


@contextmanager
def firestore_operation(op: str) -> Iterator[None]:
    """Time one Firestore call (``op``: read, write or query) and count its outcome."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        FIRESTORE_OPERATIONS.labels(op, outcome).inc()
        FIRESTORE_DURATION.labels(op).observe(time.perf_counter() - started)
