"""The Auth emulator as a process: it answers on loopback, ends with whatever started it (stop,
Ctrl-C, a killed parent), leaves no directory behind, and serves demo projects only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loyalty_worker import auth_emulator
from loyalty_worker.auth_emulator import (
    AuthEmulatorUnavailable,
    EmulatorRefused,
    create_account,
    emulator_answers,
    sign_in,
    start_auth_emulator,
)

pytestmark = pytest.mark.integration


def gone(host: str, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while emulator_answers(host):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_private_emulator_serves_accounts_until_stopped() -> None:
    with start_auth_emulator(project_id="demo-private") as emulator:
        workdir = emulator.workdir
        assert emulator.host.startswith("127.0.0.1:")
        uid = create_account(emulator.host, "jo@example.com", "s3cret-enough")
        assert sign_in(emulator.host, "jo@example.com", "s3cret-enough")
        with pytest.raises(EmulatorRefused, match="INVALID_PASSWORD"):
            sign_in(emulator.host, "jo@example.com", "wrong")
        with pytest.raises(EmulatorRefused, match="EMAIL_EXISTS"):
            create_account(emulator.host, "jo@example.com", "another-one")
        assert uid and workdir.is_dir()

        emulator.stop()
        emulator.stop()

        assert not emulator.running()
        assert gone(emulator.host)
        assert not workdir.exists()


def test_only_a_demo_project_is_served() -> None:
    with pytest.raises(AuthEmulatorUnavailable, match="demo projects only"):
        start_auth_emulator(project_id="markitbot-prod")


def test_the_foreground_command_prints_the_host_and_stops_on_ctrl_c() -> None:
    command = [sys.executable, "-m", "loyalty_worker.cli", "auth-emulator", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        name, _, host = process.stdout.readline().strip().partition("=")
        assert name == "FIREBASE_AUTH_EMULATOR_HOST"
        assert process.stdout.readline().strip() == "project: demo-markitbot"
        assert emulator_answers(host)

        process.send_signal(signal.SIGINT)

        assert process.wait(timeout=15) == 0
    assert gone(host)


def test_the_emulator_dies_with_a_killed_parent() -> None:
    command = [
        sys.executable,
        "-c",
        "from loyalty_worker.auth_emulator import start_auth_emulator; "
        "import time; e = start_auth_emulator(); print(e.host, e.workdir, flush=True); "
        "time.sleep(60)",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        host, workdir = process.stdout.readline().split()
        assert emulator_answers(host)
        os.kill(process.pid, signal.SIGKILL)

    assert gone(host)
    # What a parent killed outright cannot remove, the next start does.
    assert Path(workdir, "firebase.json").is_file()
    deadline = time.monotonic() + 5  # its process may take a moment to be gone for good
    while Path(workdir).exists() and time.monotonic() < deadline:
        auth_emulator._remove_abandoned()
        time.sleep(0.05)
    assert not Path(workdir).exists()
