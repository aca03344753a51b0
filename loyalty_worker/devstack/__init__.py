"""Local child processes for the demo, the tests and the benchmark: sandbox, worker, Flower, API,
Redis.

Each starts as a child of the caller, reports when it is ready, and stops with ``stop()`` (or at
the end of a ``with`` block), so a demo or a test session leaves nothing running behind it.
``processes`` starts children and supervises the command that starts them (how a child ends
with its parent); ``services`` and ``sandbox`` start the stack's pieces; ``npm`` installs the
npm packages the emulators run from. Everything is used as
``from loyalty_worker import devstack``; ``devstack.<name>``.
"""

from loyalty_worker.devstack.npm import npm_ci, require_executable, tail
from loyalty_worker.devstack.processes import (
    MARKER_VAR,
    STOP_SIGNALS,
    ChildProcess,
    StartupError,
    Stopped,
    free_port,
    marked_processes,
    run_marker,
    run_supervised,
    say,
    spawn,
    stop_all,
    stop_children,
    stopping,
    supervise,
    terminate,
    terminate_all,
)
from loyalty_worker.devstack.sandbox import Sandbox, WebhookPost, start_sandbox
from loyalty_worker.devstack.services import (
    celery_argv,
    cli_argv,
    ensure_redis,
    redis_answers,
    redis_database,
    start_api,
    start_flower,
    start_redis_server,
    start_worker,
)

__all__ = [
    "MARKER_VAR",
    "STOP_SIGNALS",
    "ChildProcess",
    "Sandbox",
    "StartupError",
    "Stopped",
    "WebhookPost",
    "celery_argv",
    "cli_argv",
    "ensure_redis",
    "free_port",
    "marked_processes",
    "npm_ci",
    "redis_answers",
    "redis_database",
    "require_executable",
    "run_marker",
    "run_supervised",
    "say",
    "spawn",
    "start_api",
    "start_flower",
    "start_redis_server",
    "start_sandbox",
    "start_worker",
    "stop_all",
    "stop_children",
    "stopping",
    "supervise",
    "tail",
    "terminate",
    "terminate_all",
]
