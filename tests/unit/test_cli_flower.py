"""`loyalty-worker flower`: basic auth from the settings, or no auth on loopback only."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import pytest

from loyalty_worker import cli
from loyalty_worker.config import get_settings


class Exec(Exception):
    """Raised instead of replacing the test process with Flower."""


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Sequence[str], dict[str, str]]]]:
    calls: list[tuple[Sequence[str], dict[str, str]]] = []

    def execve(path: str, argv: Sequence[str], env: dict[str, str]) -> None:
        calls.append((argv, env))
        raise Exec

    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.delenv("LOYALTY_FLOWER_PASSWORD", raising=False)
    get_settings.cache_clear()
    yield calls
    get_settings.cache_clear()


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.0.0.5", "flower.example.test"])
def test_no_auth_is_refused_beyond_loopback(
    address: str,
    execs: list[tuple[Sequence[str], dict[str, str]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["flower", "--no-auth", "--address", address]) == 2
    assert execs == []
    assert "loopback" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_no_auth_on_loopback_becomes_flower(
    address: str, execs: list[tuple[Sequence[str], dict[str, str]]]
) -> None:
    with pytest.raises(Exec):
        cli.main(["flower", "--no-auth", "--address", address, "--port", "5599"])
    ((argv, env),) = execs
    assert argv[argv.index("-A") + 1 : argv.index("-A") + 3] == [
        "loyalty_worker.celery_app",
        "flower",
    ]
    assert f"--address={address}" in argv and "--port=5599" in argv
    assert env.get("FLOWER_BASIC_AUTH") == os.environ.get("FLOWER_BASIC_AUTH")


def test_a_password_serves_any_address_with_basic_auth(
    execs: list[tuple[Sequence[str], dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_FLOWER_PASSWORD", "q7Rk2mWx9TzL4v")
    get_settings.cache_clear()
    with pytest.raises(Exec):
        cli.main(["flower", "--address", "0.0.0.0"])
    ((argv, env),) = execs
    assert "--address=0.0.0.0" in argv
    assert env["FLOWER_BASIC_AUTH"] == "admin:q7Rk2mWx9TzL4v"
    assert "q7Rk2mWx9TzL4v" not in " ".join(argv)  # the password never shows in ps
