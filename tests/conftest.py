"""Shared fixtures: each real service has its own plugin module under tests/fixtures/.

The session runs under ``devstack.supervise``: SIGTERM and SIGHUP end it like Ctrl-C, so every
fixture's teardown runs. Every process it starts carries its marker (``LOYALTY_PARENT_RUN``);
one still alive when the session ends fails the session (and is killed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from loyalty_worker import devstack

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.firestore",
    "tests.fixtures.auth_emulator",
    "tests.fixtures.pipeline",
]

_SUPERVISION = pytest.StashKey[contextlib.ExitStack]()
_LEFT = pytest.StashKey[dict[int, str]]()
# How long processes of the session may take to exit once their parents are gone.
LEFTOVER_GRACE_S = 10.0


def pytest_configure(config: pytest.Config) -> None:
    # Set in this process's environment too: what a test starts itself inherits the marker.
    os.environ[devstack.MARKER_VAR] = devstack.run_marker()
    stack = contextlib.ExitStack()
    stack.enter_context(devstack.supervise("tests"))
    config.stash[_SUPERVISION] = stack


def pytest_unconfigure(config: pytest.Config) -> None:
    stack = config.stash.get(_SUPERVISION, None)
    if stack is not None:
        stack.close()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """After every fixture's teardown: no process this session started may still be running."""
    marker = devstack.run_marker()
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    left = devstack.marked_processes(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = devstack.marked_processes(marker)
    if left:
        session.config.stash[_LEFT] = left
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    left = terminalreporter.config.stash.get(_LEFT, None)
    if left:
        terminalreporter.section("processes left running by this session", red=True)
        for pid, command in sorted(left.items()):
            terminalreporter.write_line(f"pid {pid}: {command}")
        terminalreporter.write_line("(killed now; the session fails)")
