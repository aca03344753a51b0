"""The names the worker, the API, the CLI and the demo share: tasks, queues, run ids, and the
local Firebase project.

Nothing here imports Celery or builds a client: a process that only publishes (the API, the
CLI, another service) needs these strings, not the task code.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

SYNC_ORG: Final = "loyalty.sync_org"
SYNC_CUSTOMER: Final = "loyalty.sync_customer"
SYNC_CHUNK: Final = "loyalty.sync_chunk"
READ_ORDERS: Final = "loyalty.read_orders"
SUMMARIZE_RUN: Final = "loyalty.summarize_run"
NIGHTLY_TICK: Final = "loyalty.nightly_tick"
INCREMENTAL_TICK: Final = "loyalty.incremental_tick"
WATCHDOG: Final = "loyalty.watchdog"
SWEEP_AUDIT: Final = "loyalty.sweep_audit"

RUNS_QUEUE: Final = "loyalty.runs"
# Single-customer syncs that people and other services send (Sync Now, webhooks, send_task):
# interactive work, taken before any batch work (``lanes``).
CUSTOMERS_QUEUE: Final = "loyalty.customers"
# A run's chunks, released a few at a time in turn across the runs going (``services.run.fair``),
# and a run's customers retried alone.
BATCH_QUEUE: Final = "loyalty.batch"
# Celery's own default queue: a plain client (``Celery(broker=...).send_task(name, args)``)
# publishes there when it names no queue, so the workers read it too.
PUBLIC_QUEUE: Final = "celery"
WORKER_QUEUES: Final = (RUNS_QUEUE, CUSTOMERS_QUEUE, PUBLIC_QUEUE, BATCH_QUEUE)
# The queues a worker's reserved threads take from, first, in this order; the others are
# batch work (planning, chunks), taken only by the threads left.
INTERACTIVE_QUEUES: Final = (CUSTOMERS_QUEUE, PUBLIC_QUEUE)

TASK_ROUTES: Final = {
    SYNC_ORG: {"queue": RUNS_QUEUE},
    READ_ORDERS: {"queue": RUNS_QUEUE},
    SUMMARIZE_RUN: {"queue": RUNS_QUEUE},
    NIGHTLY_TICK: {"queue": RUNS_QUEUE},
    INCREMENTAL_TICK: {"queue": RUNS_QUEUE},
    WATCHDOG: {"queue": RUNS_QUEUE},
    SWEEP_AUDIT: {"queue": RUNS_QUEUE},
    SYNC_CUSTOMER: {"queue": CUSTOMERS_QUEUE},
    SYNC_CHUNK: {"queue": BATCH_QUEUE},
}

# The Firebase project of Markitbot's accounts on a developer's machine (the demo, the tests):
# a ``demo-`` project exists only in Firebase's emulators, and the Admin SDK accepts their
# unsigned tokens, so an API with an emulator refuses any other (``adapters.accounts``).
DEMO_FIREBASE_PROJECT: Final = "demo-markitbot"
# The Admin SDK's own variable: ``host:port`` of the Auth emulator it talks to instead of Google.
AUTH_EMULATOR_HOST_VAR: Final = "FIREBASE_AUTH_EMULATOR_HOST"


def new_run_id(org_id: str) -> str:
    """Sortable and unique: ``{org}-{UTC time}-{random}``."""
    return f"{org_id}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
