"""Nothing a command starts outlives it: the demo and ``loyalty-worker flower`` stopped with
SIGINT, SIGTERM or SIGKILL at a moment of their run leave no process behind within 15 s; a demo
that stays up after its run (the default) serves the dashboard with the token it printed until
it is stopped, and leaves nothing behind then either.

Leftovers are found by the marker every child carries in its environment (each command here
runs under a marker of its own, below the session's), not by names. The moment is drawn from a
seeded generator (``LOYALTY_TEST_SEED``, 14 by default), printed with the case.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, cast

import httpx
import pytest
import redis

from loyalty_worker import devstack
from loyalty_worker.auth_emulator import sign_in as auth_sign_in

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds processes through /proc"),
]

SEED = int(os.environ.get("LOYALTY_TEST_SEED", "14"))
GONE_WITHIN_S = 15.0
DEMO_DB = 15
DEMO_CUSTOMERS = "200"


class Command:
    """A command run as a user would, under a marker of its own."""

    def __init__(self, argv: list[str], *, cwd: Path, redis_url: str) -> None:
        self.marker = f"{devstack.run_marker()}/{uuid.uuid4().hex[:8]}"
        env = {**os.environ, devstack.MARKER_VAR: self.marker, "PYTHONUNBUFFERED": "1"}
        env["LOYALTY_REDIS_URL"] = redis_url
        # The demo starts emulators of its own.
        env.pop("FIRESTORE_EMULATOR_HOST", None)
        env.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
        self._log_path = cwd / "output.txt"
        self._log: IO[bytes] = self._log_path.open("wb")
        # A session of its own: a signal reaches it only when the test sends one.
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self._log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, *, timeout_s: float = 120.0) -> re.Match[str]:
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = regex.search(self.output())
            if match:
                return match
            assert self.process.poll() is None, f"ended early:\n{self.output()[-3000:]}"
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {timeout_s:.0f} s:\n{self.output()[-3000:]}")

    def left(self) -> dict[int, str]:
        """Its processes still running (itself included, unless reaped)."""
        return devstack.marked_processes(self.marker)

    def wait_gone(self) -> float:
        """Seconds until none of its processes is left; fails after GONE_WITHIN_S."""
        started = time.monotonic()
        while time.monotonic() - started < GONE_WITHIN_S:
            self.process.poll()  # reap the command itself
            if not self.left():
                took = time.monotonic() - started
                self.process.wait(timeout=GONE_WITHIN_S)
                return took
            time.sleep(0.1)
        raise AssertionError(f"still running after {GONE_WITHIN_S:.0f} s: {self.left()}")

    def close(self) -> None:
        for pid in self.left():  # a failed case must not leave them to the next one
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()


Start = Callable[[list[str]], Command]


@pytest.fixture
def command(tmp_path: Path, test_redis_url: str) -> Iterator[Start]:
    """Starts commands (three at most) in directories of their own; closes them at the end."""
    started: list[Command] = []

    def start(args: list[str]) -> Command:
        """``loyalty-worker *args``."""
        argv = [sys.executable, "-m", "loyalty_worker.cli", *args]
        run = Command(argv, cwd=tmp_path / f"cmd{len(started)}", redis_url=test_redis_url)
        started.append(run)
        return run

    for index in range(3):
        (tmp_path / f"cmd{index}").mkdir()
    yield start
    for run in started:
        run.close()


def _demo_db(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{DEMO_DB}")


STAGES = {
    "startup": [
        "^firestore emulator:",
        "^sandbox ",
        "^seeded Firestore",
        "^celery worker",
        "^firebase auth emulator:",
        "^api: ",
    ],
    "run": [r"^run (\S+): org"],
}


@pytest.mark.parametrize(
    ("signum", "stage"),
    [
        (signal.SIGINT, "run"),
        (signal.SIGTERM, "run"),
        (signal.SIGKILL, "run"),
        (signal.SIGTERM, "startup"),
    ],
    ids=["SIGINT-run", "SIGTERM-run", "SIGKILL-run", "SIGTERM-startup"],
)
def test_a_stopped_demo_leaves_nothing_running_and_releases_its_run(
    command: Start, test_redis_url: str, signum: signal.Signals, stage: str
) -> None:
    rng = random.Random(f"{SEED}-{signum.name}-{stage}")
    line = rng.choice(STAGES[stage])
    delay = rng.uniform(0.0, 1.2)
    print(f"seed {SEED}: {signum.name} {delay:.2f} s after {line!r}")
    demo = command(["demo", "--customers", DEMO_CUSTOMERS])
    demo.wait_for(line)
    time.sleep(delay)
    assert demo.process.poll() is None, f"the demo ended first:\n{demo.output()[-2000:]}"
    assert len(demo.left()) >= 2, demo.left()  # the demo and what it started so far

    demo.process.send_signal(signum)
    took = demo.wait_gone()
    print(f"nothing left after {took:.1f} s")

    output = demo.output()
    run = re.search(STAGES["run"][0], output, re.MULTILINE)
    if signum == signal.SIGKILL:
        assert demo.process.returncode == -signal.SIGKILL
        # Nobody could release the run: the next demo clears the database it finds abandoned.
        again = command(["demo", "--customers", "50", "--no-flower", "--exit"])
        assert again.process.wait(timeout=180) == 0, again.output()[-3000:]
        assert re.search(r"^ +status +completed", again.output(), re.MULTILINE)
        if run is not None:
            assert "cleared what a demo that was killed left behind" in again.output()
        assert again.wait_gone() < GONE_WITHIN_S
        return
    assert demo.process.returncode == 128 + signum, output[-3000:]
    assert "stopping what it started" in output
    db = _demo_db(test_redis_url)
    try:
        assert list(db.scan_iter("loyalty:lock:*")) == []
        if run is not None:
            status = cast(bytes | None, db.hget(f"loyalty:run:{run.group(1)}:meta", "status"))
            assert status in (b"incomplete", b"completed"), status
    finally:
        db.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_the_demo_stays_up_with_the_dashboard_until_stopped(
    command: Start, test_redis_url: str, signum: signal.Signals
) -> None:
    """After its run the demo keeps everything up and prints the dashboard's sign-in URL, the
    e-mail and password of its admin (an account of the local Auth emulator), which sign in,
    and a machine's token for /api (never in the URL); a stop signal then leaves nothing
    running."""
    demo = command(["demo", "--customers", "50"])
    block = demo.wait_for(
        r"^dashboard: (http://\S+)\nsign in: +(\S+)\npassword: +(\S+) .*\napi token: +(\S+)",
        timeout_s=180.0,
    )
    sign_in, email, password, token = block.groups()
    output = demo.output()
    assert re.search(r"^ +status +completed", output, re.MULTILINE), output[-3000:]
    assert re.search(r"^flower: http://\S+ \(user \S+, password \S+\)", output, re.MULTILINE)
    assert token not in sign_in and password not in sign_in
    time.sleep(1.0)
    assert demo.process.poll() is None, f"the demo ended by itself:\n{output[-2000:]}"

    base = sign_in.rsplit("/dashboard", 1)[0]
    org = re.search(r"\(admin of org (\S+),", output)
    emulator = re.search(r"^firebase auth emulator: (\S+) \(project (\S+)\)", output, re.M)
    assert org is not None and emulator is not None, output[-2000:]
    with httpx.Client(base_url=base, timeout=10.0) as http:
        overview = f"/api/loyalty/orgs/{urllib.parse.quote(org.group(1))}/overview"
        assert http.get(overview).status_code == 401
        answer = http.get(overview, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text[:500]
        # The printed credentials sign in, as the page's script does: Firebase's sign-in (the
        # emulator), then the ID token posted with the form's CSRF token.
        form = http.get(sign_in)
        assert form.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None, form.text[:2000]
        id_token = auth_sign_in(emulator.group(1), email, password, project_id=emulator.group(2))
        signed = http.post(sign_in, data={"idToken": id_token, "csrf": csrf.group(1)})
        assert signed.status_code == 303, signed.text[:2000]
        page = http.get(f"/dashboard/orgs/{urllib.parse.quote(org.group(1))}")
        assert page.status_code == 200 and email in page.text and "admin" in page.text
    db = _demo_db(test_redis_url)
    try:
        assert list(db.scan_iter("loyalty:lock:*")) == []  # the run ended: its lock is free
    finally:
        db.close()

    demo.process.send_signal(signum)
    took = demo.wait_gone()
    print(f"nothing left after {took:.1f} s")
    assert demo.process.returncode == 128 + signum, demo.output()[-3000:]
    assert "demo: stopping api" in demo.output()


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name
)
def test_a_stopped_flower_leaves_nothing_running(command: Start, signum: signal.Signals) -> None:
    rng = random.Random(f"{SEED}-flower-{signum.name}")
    before_ready = rng.random() < 0.3
    delay = rng.uniform(0.0, 1.5)
    port = devstack.free_port()
    print(f"seed {SEED}: {signum.name} {delay:.2f} s after {'start' if before_ready else 'ready'}")
    flower = command(["flower", "--no-auth", "--port", str(port)])
    if not before_ready:
        flower.wait_for(r"Visit me at|Registered tasks", timeout_s=60.0)
    time.sleep(delay)
    if flower.process.poll() is None:
        flower.process.send_signal(signum)
    flower.wait_gone()


def test_flower_is_the_commands_own_process(command: Start) -> None:
    """``loyalty-worker flower`` runs Flower in its own process: a signal for the command
    reaches Flower, and the process ends when Flower does."""
    port = devstack.free_port()
    flower = command(["flower", "--no-auth", "--port", str(port)])
    flower.wait_for(r"Visit me at", timeout_s=60.0)
    left = flower.left()
    assert list(left) == [flower.process.pid], left
    assert " flower " in left[flower.process.pid] + " "

    flower.process.send_signal(signal.SIGTERM)
    flower.wait_gone()
    assert flower.process.returncode is not None


# --- the mechanism itself, on a stand-in command -------------------------------------------

# A command that starts two children the way the demo does, then waits: ``sleeper`` ignores
# SIGTERM (a worker that does not finish in time), ``plain`` stops at once.
STAND_IN = """
import signal, sys, time
from loyalty_worker import devstack

def main() -> int:
    devstack.ChildProcess.start("plain", [sys.executable, "-c", "import time; time.sleep(300)"])
    devstack.ChildProcess.start("sleeper", [sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(300)"]).wait_for_line("up", timeout_s=30)
    print("ready", flush=True)
    time.sleep(300)
    return 0

sys.exit(devstack.run_supervised("stand-in", main, timeout_s=2.0))
"""


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name
)
def test_supervised_children_stop_with_their_command(
    tmp_path: Path, test_redis_url: str, signum: signal.Signals
) -> None:
    """The sleeper ignores SIGTERM: it is gone only because it was killed after the wait."""
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    run = Command([sys.executable, str(script)], cwd=tmp_path, redis_url=test_redis_url)
    try:
        run.wait_for("^ready", timeout_s=60.0)
        assert len(run.left()) == 3, run.left()  # the command and its two children

        run.process.send_signal(signum)
        took = run.wait_gone()
        if signum == signal.SIGKILL:
            assert took < 5.0  # the kernel's parent-death signal, no grace period
        else:
            assert run.process.returncode == 128 + signum
            output = run.output()
            assert "stand-in: stopping sleeper" in output and "stand-in: stopping plain" in output
            assert f"stand-in: stopped ({signum.name})" in output
    finally:
        run.close()
