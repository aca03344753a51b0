"""docker-compose.yml, read as `docker compose` would: safe as shipped and in step with the code.

No Docker engine runs here, so the file is checked by reading it: what it publishes, which
secrets it demands, how Redis is run, and that every command and variable it names exists.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from loyalty_worker import names
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.cli import build_parser
from loyalty_worker.config import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|KEY")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(Exception):
    """What `docker compose config` reports for a required variable that is not set."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution (the subset the file uses)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name)
        if op in (":?", "?") and not value:
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        if op in (":-", "-") and not value:
            return str(arg)
        return value or ""

    return VARIABLE.sub(one, text)


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def test_only_the_api_and_flower_are_published_and_only_on_loopback(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {name: svc["ports"] for name, svc in services.items() if svc.get("ports")}
    assert set(published) == {"api", "flower"}
    for ports in published.values():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), port


def test_every_secret_is_required_and_none_has_a_default(compose: dict[str, Any]) -> None:
    seen = set()
    for text in strings(compose):
        for match in VARIABLE.finditer(text):
            if SECRET.search(match["name"]):
                seen.add(match["name"])
                assert match["op"] == ":?", f"{match['name']} must be ${{VAR:?message}}"
    assert {"LOYALTY_REDIS_PASSWORD", "LOYALTY_FLOWER_PASSWORD"} <= seen
    assert {"LOYALTY_PHONE_HASH_KEY", "LOYALTY_API_TOKENS"} <= seen


def test_no_secret_is_written_into_the_file(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for key, value in (svc.get("environment") or {}).items():
            if SECRET.search(key):
                assert VARIABLE.fullmatch(str(value)), f"{name}: {key} holds a literal value"


def test_without_secrets_the_stack_refuses_to_start_naming_each(compose: dict[str, Any]) -> None:
    messages = set()
    for text in strings(compose):
        try:
            interpolate(text, {})
        except MissingVariable as exc:
            messages.add(str(exc))
    for variable in (
        "LOYALTY_REDIS_PASSWORD",
        "LOYALTY_FLOWER_PASSWORD",
        "LOYALTY_PHONE_HASH_KEY",
        "LOYALTY_API_TOKENS",
    ):
        assert any(variable in message for message in messages), variable


def test_redis_needs_its_password_and_keeps_an_append_only_file(
    services: dict[str, dict[str, Any]],
) -> None:
    env = {"LOYALTY_REDIS_PASSWORD": "s3cr3tpassw0rd0123456789", "LOYALTY_FLOWER_PASSWORD": "x"}
    env |= {"LOYALTY_PHONE_HASH_KEY": "k" * 16, "LOYALTY_API_TOKENS": "{}"}
    command = [interpolate(part, env) for part in services["redis"]["command"]]
    options = dict(zip(command[1::2], command[2::2], strict=False))
    assert options["--requirepass"] == env["LOYALTY_REDIS_PASSWORD"]
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"
    assert "ports" not in services["redis"]
    for name, svc in services.items():
        url = (svc.get("environment") or {}).get("LOYALTY_REDIS_URL")
        if name != "redis":
            assert url is not None, f"{name} has no LOYALTY_REDIS_URL"
            assert interpolate(url, env).startswith(f"redis://:{env['LOYALTY_REDIS_PASSWORD']}@")


def test_every_long_running_service_is_started_again_when_it_exits(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        expected = "no" if name == "seed" else "unless-stopped"  # seed runs once
        assert service.get("restart") == expected, name


def test_the_worker_reads_every_queue_the_tasks_are_sent_to(
    services: dict[str, dict[str, Any]],
) -> None:
    command = services["worker"]["command"]
    queues = command[command.index("-Q") + 1].split(",")
    assert tuple(queues) == names.WORKER_QUEUES


def test_every_loyalty_worker_command_parses(services: dict[str, dict[str, Any]]) -> None:
    parser = build_parser()
    commands = [svc["command"] for svc in services.values() if svc.get("command")]
    ours = [command[1:] for command in commands if command[0] == "loyalty-worker"]
    assert len(ours) >= 5
    for argv in ours:
        parser.parse_args(argv)  # exits (SystemExit) on an unknown command or option


def test_every_variable_the_file_sets_is_one_the_code_reads(
    services: dict[str, dict[str, Any]],
) -> None:
    known = {f"LOYALTY_{name.upper()}" for name in Settings.model_fields}
    known |= {f"LOYALTY_API_{name.upper()}" for name in ApiSettings.model_fields}
    known |= {"FIRESTORE_EMULATOR_HOST"}
    for name, svc in services.items():
        for key in svc.get("environment") or {}:
            assert key in known, f"{name}: {key} is read by nothing"


def test_celery_commands_name_the_app_module(services: dict[str, dict[str, Any]]) -> None:
    for svc in services.values():
        command = svc.get("command") or []
        if command and command[0] == "celery":
            assert command[1:3] == ["-A", "loyalty_worker.celery_app"], shlex.join(command)
