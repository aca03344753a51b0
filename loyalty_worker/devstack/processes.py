"""Child processes that end with their parent, and the supervision of a command that starts them.

Every child is started the same way (``spawn``), which gives it three ways to end with its parent:

- it is registered until stopped; a command that starts children runs inside ``supervise()``,
  which turns SIGTERM, SIGHUP and SIGINT into an exception (``Stopped``) so every ``finally``
  runs, and at its end stops every child still registered (SIGTERM to the child's process group,
  SIGKILL after a bounded wait), saying what it stops;
- on Linux it is started through a tiny launcher that sets the parent-death signal (SIGKILL) and
  then execs the real program, so a parent killed with SIGKILL takes its children with it;
- its environment carries ``LOYALTY_PARENT_RUN``: the parent's marker (a random id, under the
  marker the parent itself inherited), so a test finds any process a run left behind by
  scanning ``/proc/*/environ`` (``marked_processes``) rather than by name.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Self, TextIO

MARKER_VAR = "LOYALTY_PARENT_RUN"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

# Run by the launcher before the real program: the parent-death signal, then exec. The signal
# is cleared by fork, kept by exec; a parent that died before it was set is caught by the
# parent-pid check. The launcher is started from the main thread only: the parent-death signal
# fires when the *thread* that forked ends.
_LAUNCHER = """
import ctypes, os, sys
ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""

_marker: str | None = None
_children: dict[int, tuple[str, subprocess.Popen[Any]]] = {}
_lock = threading.Lock()
_signalled = False  # a stop signal was turned into Stopped: the next ones only hurry the stop
_hurry = False  # a second stop signal came: no more graceful waiting
_deferred: list[int] = []  # stop signals received while a child was being registered
_deferring = 0


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP, SIGINT) arrived inside ``supervise()``.

    A KeyboardInterrupt, so code that already handles Ctrl-C handles the others alike."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal's number."""
        return 128 + self.signum


def run_marker() -> str:
    """This process's marker, given to every child it starts: a random id, under the marker
    this process inherited (``outer/inner``), so the outer run also finds the inner run's
    children."""
    global _marker
    if _marker is None:
        inherited = os.environ.get(MARKER_VAR)
        own = uuid.uuid4().hex[:12]
        _marker = f"{inherited}/{own}" if inherited else own
    return _marker


def marked_processes(marker: str) -> dict[int, str]:
    """Live processes other than this one whose environment carries ``marker`` or a marker under
    it: ``{pid: command line}``. Linux only (``/proc``); empty elsewhere."""
    exact = f"{MARKER_VAR}={marker}".encode()
    found: dict[int, str] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            # A zombie's environment reads empty: it is gone but for its exit code.
            variables = (entry / "environ").read_bytes().split(b"\0")
            if not any(v == exact or v.startswith(exact + b"/") for v in variables):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile, or another user's
            continue
        found[int(entry.name)] = command.strip()
    return found


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: int | IO[Any] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    text: bool = False,
) -> subprocess.Popen[Any]:
    """Start ``argv`` as a registered child in a session of its own, marked, and (Linux, main
    thread) killed by the kernel when this process dies. ``env`` is added to this process's;
    the rest is ``subprocess.Popen``'s."""
    global _deferring
    executable = shutil.which(argv[0])
    if executable is None:
        raise FileNotFoundError(f"{argv[0]}: not found")
    command = [executable, *argv[1:]]
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        command = [sys.executable, "-S", "-c", _LAUNCHER, str(os.getpid()), *command]
    environment = {**os.environ, **(env or {}), MARKER_VAR: run_marker()}
    # A stop signal between the fork and the registration would leave the child unknown to
    # the final sweep: it is held until the child is registered.
    with _lock:
        _deferring += 1
    try:
        process = subprocess.Popen(
            command,
            env=environment,
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            text=text,
            start_new_session=True,
        )
        _children[process.pid] = (name, process)
    finally:
        with _lock:
            _deferring -= 1
        if _deferred and not _deferring:
            raise Stopped(_deferred.pop())
    return process


def terminate(process: subprocess.Popen[Any], *, timeout_s: float = 10.0) -> None:
    """Stop a spawned child: SIGTERM to its process group, SIGKILL after ``timeout_s`` (at once
    after a second stop signal); what is left of its group is killed too. Safe to call twice."""
    terminate_all([process], timeout_s=timeout_s)


def terminate_all(processes: Sequence[subprocess.Popen[Any]], *, timeout_s: float = 10.0) -> None:
    """``terminate`` several children side by side: one bounded wait for all of them."""
    try:
        running = [process for process in processes if process.poll() is None]
        for process in running:
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not _hurry:
            if all(process.poll() is not None for process in running):
                break
            time.sleep(0.05)
        for process in running:
            # Also what is left of its group (grandchildren its leader left behind): the group
            # id cannot be reused while any of them lives, and this follows the leader's end.
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
    finally:
        for process in processes:
            _children.pop(process.pid, None)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def say(message: str, out: TextIO | None = None) -> None:
    """Print a line while stopping: a closed terminal (SIGHUP) must not cut the stop short."""
    with contextlib.suppress(OSError, ValueError):
        print(message, file=out or sys.stderr, flush=True)


def stop_children(*, out: TextIO | None = None, label: str = "", timeout_s: float = 10.0) -> None:
    """Stop every registered child, newest first; ``out`` is told which."""
    for pid, (name, process) in reversed(list(_children.items())):
        if process.poll() is None and out is not None:
            say(f"{label}stopping {name} (pid {pid})", out)
        terminate(process, timeout_s=timeout_s)


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    global _signalled, _hurry
    if _signalled:
        _hurry = True  # a second signal cuts the graceful waits short, interrupts nothing
        return
    _signalled = True
    if _deferring:
        _deferred.append(signum)
        return
    raise Stopped(signum)


def stopping() -> None:
    """Cleanup starts: from now on a stop signal only cuts its graceful waits short, it no
    longer interrupts it."""
    global _signalled
    _signalled = True


@contextlib.contextmanager
def supervise(label: str, *, out: TextIO = sys.stderr, timeout_s: float = 10.0) -> Iterator[None]:
    """Run a command that starts children: SIGTERM, SIGHUP and SIGINT raise ``Stopped`` (once;
    a second signal only cuts the graceful waits short), and every child still running at the
    end, for whatever reason it comes, is stopped, saying so. Handlers are only installed in
    the main thread. ``timeout_s``: each child's graceful wait in that final stop."""
    global _signalled, _hurry
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        _signalled = _hurry = False
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, _on_stop_signal)
    try:
        yield
    finally:
        stopping()
        try:
            stop_children(out=out, label=f"{label}: ", timeout_s=timeout_s)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            _signalled = _hurry = False


def run_supervised(label: str, main: Callable[[], int], *, timeout_s: float = 10.0) -> int:
    """``main()`` inside ``supervise(label, timeout_s=...)``: a stop signal ends it with the
    signal's exit code (130 for SIGINT), saying so, after every child it started is stopped."""
    with supervise(label, timeout_s=timeout_s):
        try:
            return main()
        except Stopped as exc:
            print(f"{label}: stopped ({exc})", file=sys.stderr)
            return exc.exit_code


@atexit.register
def _stop_leftovers() -> None:
    """A child nobody stopped does not outlive a normal interpreter exit."""
    stop_children(timeout_s=5.0)


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
        cls,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ChildProcess:
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        process = spawn(
            name,
            argv,
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return cls(name, process, log)

    def output(self) -> str:
        """Everything the process wrote so far. Read with ``pread``: the child writes through
        the same open file, so moving its offset (a seek) would make its next lines overwrite
        the start of the log."""
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

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
        try:
            terminate(self.process, timeout_s=timeout_s)
        finally:
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


def stop_all(
    children: Sequence[ChildProcess | None],
    *,
    out: TextIO | None = None,
    label: str = "",
    timeout_s: float = 10.0,
) -> None:
    """Stop ``children`` side by side (SIGTERM to all, one bounded wait, SIGKILL to the rest);
    ``out`` is told which. Children that must stop before others (a worker before the services
    it uses) go in an earlier call."""
    started = [child for child in reversed(children) if child is not None]
    for child in started:
        if child.running and out is not None:
            say(f"{label}stopping {child.name} (pid {child.process.pid})", out)
    try:
        terminate_all([child.process for child in started], timeout_s=timeout_s)
    finally:
        for child in started:
            child.stop()
