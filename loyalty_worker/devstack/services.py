"""The stack's services as child processes, each returned once it is ready: a Celery worker,
Flower, the API, and Redis (an existing one when it answers, a private ``redis-server``
otherwise). The sandbox has its own module (``devstack.sandbox``)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

import httpx
import redis

from loyalty_worker.devstack.processes import ChildProcess, StartupError, free_port
from loyalty_worker.names import WORKER_QUEUES


def cli_argv(*args: str) -> list[str]:
    """``loyalty-worker *args``, run by this interpreter."""
    return [sys.executable, "-m", "loyalty_worker.cli", *args]


def celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "loyalty_worker.celery_app", *args]


def start_worker(
    env: Mapping[str, str],
    *,
    concurrency: int = 16,
    pool: str = "threads",
    name: str = "worker",
    timeout_s: float = 60.0,
    source: Path | None = None,
) -> ChildProcess:
    """A real Celery worker process consuming the worker's queues; returns once it is ready.

    ``source``: another checkout of the project whose code the worker runs (an older commit, to
    measure it against this one), with this interpreter and its packages: the checkout is the
    worker's ``PYTHONPATH`` (in place of any other) and its directory, so its ``loyalty_worker``
    and ``celeryconfig`` are the ones imported.

    Each worker serves its metrics on a free port of its own unless ``env`` names one
    (``LOYALTY_METRICS_PORT``): stacks side by side, or beside a deployed worker on 9808, never
    clash.
    """
    hostname = f"{name}-{os.getpid()}-{free_port()}@%h"
    if "LOYALTY_METRICS_PORT" not in env:
        env = {**env, "LOYALTY_METRICS_PORT": str(free_port())}
    if source is not None:
        env = {**env, "PYTHONPATH": str(source)}
    child = ChildProcess.start(
        name,
        celery_argv(
            "worker",
            "-Q",
            ",".join(WORKER_QUEUES),
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--loglevel=INFO",
            f"--hostname={hostname}",
            "--without-gossip",
            "--without-mingle",
        ),
        env=env,
        cwd=source,
    )
    child.wait_for_line(r"ready\.", timeout_s=timeout_s)
    return child


def start_flower(env: Mapping[str, str], *, port: int, auth: bool) -> ChildProcess:
    """Flower on loopback; without ``auth`` it asks for no password (local use only)."""
    argv = cli_argv("flower", "--port", str(port), "--address", "127.0.0.1")
    child = ChildProcess.start("flower", argv if auth else [*argv, "--no-auth"], env=env)
    child.wait_for_line(r"Visit me at|Registered tasks", timeout_s=60.0)
    return child


def start_api(env: Mapping[str, str], *, port: int, timeout_s: float = 60.0) -> ChildProcess:
    """``loyalty-worker api`` on loopback ``port``; returns once ``/healthz`` answers. Its
    callers' tokens come in ``env`` (``LOYALTY_API_TOKENS``), never in its argv."""
    child = ChildProcess.start(
        "api", cli_argv("api", "--host", "127.0.0.1", "--port", str(port)), env=env
    )
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{port}/healthz"
    while time.monotonic() < deadline and child.running:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return child
        time.sleep(0.1)
    output = child.output()
    child.stop()
    raise StartupError(f"api did not start:\n{output[-4000:]}")


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def start_redis_server(
    port: int | None = None, *, aof_dir: Path | None = None
) -> tuple[str, ChildProcess]:
    """A private redis-server on ``port`` (a free one by default) and its URL: memory-only, or
    with ``aof_dir`` persistent as docker-compose.yml runs it (AOF, fsync every second)."""
    server = shutil.which("redis-server")
    if server is None:
        raise StartupError(
            "redis-server is not installed: install it (Debian/Ubuntu: apt-get install "
            "redis-server; macOS: brew install redis) or set LOYALTY_REDIS_URL to a running Redis"
        )
    port = port or free_port()
    argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    if aof_dir is None:
        argv += ["--appendonly", "no"]
    else:
        argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(aof_dir)]
    if _redis_version(server) >= (6, 2):
        # Its process title would overwrite its environment, and with it the marker.
        argv += ["--set-proc-title", "no"]
    child = ChildProcess.start("redis", argv)
    child.wait_for_line(r"Ready to accept connections", timeout_s=20.0)
    return f"redis://127.0.0.1:{port}/0", child


def _redis_version(server: str) -> tuple[int, ...]:
    """``redis-server --version`` as numbers, (0,) when it does not say."""
    try:
        output = subprocess.run(
            [server, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return (0,)
    match = re.search(r"v=(\d+)\.(\d+)", output)
    return (int(match.group(1)), int(match.group(2))) if match else (0,)


def redis_database(url: str, db: int) -> str:
    """``url``'s Redis server, database ``db`` (a benchmark flushes a database of its own)."""
    return urllib.parse.urlparse(url)._replace(path=f"/{db}").geturl()


def ensure_redis(url: str) -> tuple[str, ChildProcess | None]:
    """``url`` when a Redis answers there; otherwise a private redis-server on a free port."""
    if redis_answers(url):
        return url, None
    try:
        private_url, child = start_redis_server()
    except StartupError as exc:
        raise StartupError(f"no Redis answers at {url} and {exc}") from None
    db = urllib.parse.urlparse(url).path or "/0"
    return private_url.rsplit("/", 1)[0] + db, child
