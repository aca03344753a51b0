"""Local child processes for the demo, the tests and the benchmark: sandbox, worker, Flower, Redis.

Each starts as a child of the caller, reports when it is ready, and stops with ``stop()`` (or at
the end of a ``with`` block), so a demo or a test session leaves nothing running behind it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any, Self

import httpx
import redis

from loyalty_worker.names import WORKER_QUEUES


class StartupError(RuntimeError):
    """A child process did not become ready; the message carries its output."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChildProcess:
    """A started child process whose output goes to a temporary file (shown on failure)."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.name = name
        self.process = process
        self._log = log

    @classmethod
    def start(
        cls, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> ChildProcess:
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        process = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        return cls(name, process, log)

    def output(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def wait_for_line(self, pattern: str, *, timeout_s: float) -> re.Match[str]:
        """Wait until the output shows a line matching ``pattern``."""
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern, re.MULTILINE)
        while time.monotonic() < deadline:
            match = regex.search(self.output())
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        output = self.output()
        self.stop()
        raise StartupError(f"{self.name} did not start:\n{output[-4000:]}")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the process and its children (its own session)."""
        if self.running:
            os.killpg(self.process.pid, sig)

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; the output is gone afterwards."""
        if self.running:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "loyalty_worker.cli", *args]


class Sandbox:
    """A running sandbox: its URLs, and its control routes (faults, stats, Discord) as methods."""

    def __init__(self, child: ChildProcess, base_url: str) -> None:
        self.child = child
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=60.0)

    @property
    def alleaves_url(self) -> str:
        return f"{self.base_url}/alleaves"

    @property
    def alpine_url(self) -> str:
        return f"{self.base_url}/alpine"

    def webhook_url(self, id: str = "1", token: str = "t") -> str:  # noqa: S107 - not a secret
        return f"{self.base_url}/discord/webhooks/{id}/{token}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def messages(self) -> list[dict[str, Any]]:
        """Discord posts received: ``[{"webhookId", "receivedAt", "payload"}]``."""
        messages: list[dict[str, Any]] = self._call("GET", "/discord/messages")
        return messages

    def clear_messages(self) -> None:
        self._call("DELETE", "/discord/messages")

    def stats(self) -> dict[str, dict[str, int]]:
        """Per API: requests, rate_limited, server_errors, max_per_second (and Alleaves logins)."""
        stats: dict[str, dict[str, int]] = self._call("GET", "/sandbox/stats")
        return stats

    def reset_stats(self) -> None:
        self._call("POST", "/sandbox/stats/reset")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Change faults (latency_ms, error_rate, rate_limit, token_ttl_s, discord_status).

        Returns the faults now in force; with no arguments, just reads them.
        """
        current: dict[str, Any] = self._call("POST", "/sandbox/faults", faults)
        return current

    def reset_faults(self) -> dict[str, Any]:
        """Back to the faults the sandbox was started with."""
        current: dict[str, Any] = self._call("DELETE", "/sandbox/faults")
        return current

    def dataset(self) -> dict[str, Any]:
        """The dataset as currently served (orders upserted since start included)."""
        dataset: dict[str, Any] = self._call("GET", "/sandbox/dataset")
        return dataset

    def upsert_orders(self, org_id: str, orders: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Add or replace flat orders by ``id_order``; returns ``{"created", "updated"}``."""
        counts: dict[str, int] = self._call("PUT", f"/sandbox/orgs/{org_id}/orders", list(orders))
        return counts

    def output(self) -> str:
        return self.child.output()

    def stop(self) -> None:
        """Stop the process; safe to call twice."""
        self._http.close()
        self.child.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sandbox(*args: str, timeout_s: float = 60.0) -> Sandbox:
    """``loyalty-worker sandbox --port 0 *args`` as a child, once it accepts connections.

    Large generated datasets take longer to start than the default allows: pass ``timeout_s``.
    """
    child = ChildProcess.start("sandbox", _cli("sandbox", "--port", "0", *args))
    match = child.wait_for_line(r"sandbox listening on (http://\S+)", timeout_s=timeout_s)
    return Sandbox(child, match.group(1))


def celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "loyalty_worker.celery_app", *args]


def start_worker(
    env: Mapping[str, str],
    *,
    concurrency: int = 16,
    pool: str = "threads",
    name: str = "worker",
    timeout_s: float = 60.0,
) -> ChildProcess:
    """A real Celery worker process consuming the worker's queues; returns once it is ready."""
    hostname = f"{name}-{os.getpid()}-{free_port()}@%h"
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
    )
    child.wait_for_line(r"ready\.", timeout_s=timeout_s)
    return child


def start_flower(env: Mapping[str, str], *, port: int, auth: bool) -> ChildProcess:
    """Flower on loopback; without ``auth`` it asks for no password (local use only)."""
    argv = _cli("flower", "--port", str(port), "--address", "127.0.0.1")
    child = ChildProcess.start("flower", argv if auth else [*argv, "--no-auth"], env=env)
    child.wait_for_line(r"Visit me at|Registered tasks", timeout_s=60.0)
    return child


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def start_redis_server(port: int | None = None) -> tuple[str, ChildProcess]:
    """A private, memory-only redis-server on ``port`` (a free one by default) and its URL."""
    server = shutil.which("redis-server")
    if server is None:
        raise StartupError(
            "redis-server is not installed: install it (Debian/Ubuntu: apt-get install "
            "redis-server; macOS: brew install redis) or set LOYALTY_REDIS_URL to a running Redis"
        )
    port = port or free_port()
    child = ChildProcess.start(
        "redis",
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    )
    child.wait_for_line(r"Ready to accept connections", timeout_s=20.0)
    return f"redis://127.0.0.1:{port}/0", child


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


def stop_all(children: Sequence[ChildProcess | None]) -> None:
    for child in reversed(children):
        if child is not None:
            child.stop()
