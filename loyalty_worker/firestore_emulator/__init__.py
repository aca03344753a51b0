"""A local Firestore for development, tests and the demo, run from Python.

Google's own emulator needs Java and a download at run time; the npm package
``@firestore-emulator/server`` (pinned in ``package.json``, started by ``start.mjs``) needs only
Node and serves everything the worker uses to ``google-cloud-firestore``. Point a client at it
with ``FIRESTORE_EMULATOR_HOST=127.0.0.1:PORT``; its data lives in memory and dies with it.
"""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from loyalty_worker import devstack

EMULATOR_DIR = Path(__file__).resolve().parent
START_SCRIPT = EMULATOR_DIR / "start.mjs"
_INSTALLED_MARKER = (
    EMULATOR_DIR / "node_modules" / "@firestore-emulator" / "server" / "package.json"
)
_READY_PREFIX = "firestore emulator listening on "
_LOOPBACK = "127.0.0.1"


class EmulatorUnavailable(RuntimeError):
    """The emulator cannot be installed or started (Node or npm missing, npm or Node failing)."""


def ensure_installed(*, timeout_s: float = 300.0) -> None:
    """Install the emulator's npm packages from the lock file, once, when they are missing
    (``devstack.npm_ci``: concurrent callers wait for the first)."""
    try:
        devstack.npm_ci(
            EMULATOR_DIR,
            installed=_INSTALLED_MARKER,
            needed_by="the Firestore emulator",
            timeout_s=timeout_s,
        )
    except devstack.StartupError as exc:
        raise EmulatorUnavailable(str(exc)) from None


class EmulatorProcess:
    """A running emulator: ``host`` for ``FIRESTORE_EMULATOR_HOST``, ``stop()`` when done."""

    def __init__(self, process: subprocess.Popen[str], port: int, log: IO[bytes]) -> None:
        self._process = process
        self.port = port
        self._log = log

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the value for ``FIRESTORE_EMULATOR_HOST``."""
        return f"{_LOOPBACK}:{self.port}"

    def running(self) -> bool:
        """Whether the Node process is still alive."""
        return self._process.poll() is None

    def wait(self) -> int:
        """Block until the emulator exits; its exit code."""
        return self._process.wait()

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop the emulator (SIGTERM, then SIGKILL after ``timeout_s``); safe to call twice."""
        devstack.terminate(self._process, timeout_s=timeout_s)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_emulator(
    port: int | None = None, *, bind: str = _LOOPBACK, timeout_s: float = 30.0
) -> EmulatorProcess:
    """Start an emulator on ``127.0.0.1:port`` (a free port when None) and wait until it answers.

    The emulator exits when this process does: it watches its stdin, which only this process
    holds, and it is started like every other child (``devstack.spawn``: registered, marked, and
    on Linux killed with its parent), so a test run killed with SIGKILL does not leave Node
    servers behind.
    """
    ensure_installed()
    try:
        node = devstack.require_executable("node", needed_by="the Firestore emulator")
    except devstack.StartupError as exc:
        raise EmulatorUnavailable(str(exc)) from None
    # Node's errors go to a file rather than a pipe nobody drains, so a chatty emulator can
    # never block on a full pipe; the file's tail explains a failed start.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - EmulatorProcess.stop closes it
    process = devstack.spawn(
        "firestore emulator",
        [node, str(START_SCRIPT), str(port or 0), f"--host={bind}", "--exit-with-stdin"],
        cwd=EMULATOR_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    deadline = time.monotonic() + timeout_s
    emulator = EmulatorProcess(process, port or 0, log)
    try:
        emulator.port = _read_bound_port(process, timeout_s)
        _wait_for_connection(emulator, deadline=deadline)
    except EmulatorUnavailable as exc:
        log.seek(0)
        output = log.read().decode(errors="replace")
        emulator.stop()
        raise EmulatorUnavailable(f"{exc}\n{devstack.tail(output)}".rstrip()) from None
    except BaseException:
        emulator.stop()
        raise
    return emulator


def main_emulator(port: int | None = None, *, bind: str = _LOOPBACK) -> int:
    """Run an emulator in the foreground until Ctrl-C (``loyalty-worker firestore-emulator``).

    ``bind`` is the address it listens on: loopback, unless a container must expose it.
    """
    with devstack.supervise("firestore emulator"):
        try:
            emulator = start_emulator(port, bind=bind)
        except EmulatorUnavailable as exc:
            print(f"firestore emulator: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:  # SIGTERM and SIGHUP too (devstack.Stopped)
            return 0
        try:
            print(f"FIRESTORE_EMULATOR_HOST={emulator.host}", flush=True)
            return emulator.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            emulator.stop()


def _read_bound_port(process: subprocess.Popen[str], timeout_s: float) -> int:
    """The port from the emulator's ready line, or EmulatorUnavailable if it exits or stalls."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue(maxsize=1)
    stdout = process.stdout
    reader = threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True)
    reader.start()
    try:
        line = lines.get(timeout=timeout_s)
    except queue.Empty:
        raise EmulatorUnavailable(
            f"emulator did not report ready within {timeout_s:.0f}s"
        ) from None
    if not line.startswith(_READY_PREFIX):
        try:
            code: int | None = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        raise EmulatorUnavailable(f"emulator did not start (exit code {code})")
    return int(line.strip().rsplit(":", 1)[1])


def _wait_for_connection(emulator: EmulatorProcess, *, deadline: float) -> None:
    """Block until the gRPC port accepts a TCP connection."""
    while True:
        try:
            with socket.create_connection((_LOOPBACK, emulator.port), timeout=1.0):
                return
        except OSError:
            if not emulator.running() or time.monotonic() > deadline:
                raise EmulatorUnavailable(
                    f"emulator is not accepting connections on {emulator.host}"
                ) from None
            time.sleep(0.05)
