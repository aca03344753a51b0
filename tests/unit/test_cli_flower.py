"""`loyalty-worker flower`: basic auth from the settings, or no auth on loopback only; Flower
runs in the command's process, which ends as soon as Flower returns."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from celery.bin.celery import celery as celery_command

from loyalty_worker import cli
from loyalty_worker.config import get_settings


class Exit(Exception):
    """Raised instead of ending the test process."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Flower:
    """What Flower was started with, and how it ends."""

    runs: list[tuple[Sequence[str], str | None]] = field(default_factory=list)
    ends_with: BaseException = field(default_factory=lambda: SystemExit(0))


@pytest.fixture
def flower(monkeypatch: pytest.MonkeyPatch) -> Iterator[Flower]:
    started = Flower()

    def main(*, args: Sequence[str], **_: object) -> None:
        started.runs.append((list(args), os.environ.get("FLOWER_BASIC_AUTH")))
        raise started.ends_with

    def exit_now(code: int) -> None:
        raise Exit(code)

    monkeypatch.setattr(celery_command, "main", main)
    monkeypatch.setattr(os, "_exit", exit_now)
    monkeypatch.delenv("LOYALTY_FLOWER_PASSWORD", raising=False)
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)  # restored after the case
    get_settings.cache_clear()
    yield started
    get_settings.cache_clear()


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.0.0.5", "flower.example.test"])
def test_no_auth_is_refused_beyond_loopback(
    address: str, flower: Flower, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["flower", "--no-auth", "--address", address]) == 2
    assert flower.runs == []
    assert "loopback" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_no_auth_on_loopback_runs_flower(address: str, flower: Flower) -> None:
    with pytest.raises(Exit) as ended:
        cli.main(["flower", "--no-auth", "--address", address, "--port", "5599"])
    assert ended.value.code == 0
    ((argv, basic_auth),) = flower.runs
    assert argv[argv.index("-A") + 1 : argv.index("-A") + 3] == [
        "loyalty_worker.celery_app",
        "flower",
    ]
    assert f"--address={address}" in argv and "--port=5599" in argv
    assert basic_auth is None


def test_a_password_serves_any_address_with_basic_auth(
    flower: Flower, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_FLOWER_PASSWORD", "q7Rk2mWx9TzL4v")
    get_settings.cache_clear()
    with pytest.raises(Exit):
        cli.main(["flower", "--address", "0.0.0.0"])
    ((argv, basic_auth),) = flower.runs
    assert "--address=0.0.0.0" in argv
    assert basic_auth == "admin:q7Rk2mWx9TzL4v"
    assert "q7Rk2mWx9TzL4v" not in " ".join(argv)  # the password never shows in ps


@pytest.mark.parametrize(
    ("ends_with", "code"),
    [
        (SystemExit(0), 0),  # Flower's SIGTERM handler, or a clean return
        (SystemExit(2), 2),  # a usage error
        (SystemExit("no broker"), 1),
        (KeyboardInterrupt(), 130),  # SIGINT outside Flower's own loop
    ],
    ids=["sigterm", "usage", "message", "sigint"],
)
def test_the_process_ends_when_flower_returns(
    ends_with: BaseException, code: int, flower: Flower
) -> None:
    """However Flower returns, the process ends there with its code, not after Python's exit
    has joined every thread (one stranded by the stop signal would hold it forever)."""
    flower.ends_with = ends_with
    with pytest.raises(Exit) as ended:
        cli.main(["flower", "--no-auth"])
    assert ended.value.code == code
