"""docker-compose.yml and its Dockerfile, read as Docker would: safe as shipped and in step with
the code.

No Docker engine runs here, so the files are checked by reading them: what the stack publishes,
which secrets it demands, how Redis is run, that every command and variable it names exists, and
how the image is built (locked and hashed packages, a non-root user, exact base image versions,
a build context without the venv, node_modules or .git).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from loyalty_worker import names
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.cli import build_parser
from loyalty_worker.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = ROOT / "requirements.lock"
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
    env = {
        "LOYALTY_REDIS_PASSWORD": "Rq7Lm2Xw9Kt4Vb8Hn3Zc6Pd1",
        "LOYALTY_FLOWER_PASSWORD": "Tq8vLm2Rz5Kw9Hx4",
    }
    env |= {"LOYALTY_PHONE_HASH_KEY": "phone-key-Mn3Bv5Cx7Zl9Kj1", "LOYALTY_API_TOKENS": "{}"}
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
    (subcommands,) = [
        action.choices for action in parser._actions if isinstance(action.choices, dict)
    ]
    commands = [svc["command"] for svc in services.values() if svc.get("command")]
    ours = [command[1:] for command in commands if command[0] == "loyalty-worker"]
    assert len(ours) >= 6
    for argv in ours:
        assert argv[0] in subcommands, f"loyalty-worker has no command {argv[0]}"
        parser.parse_args(argv)  # exits (SystemExit) on an unknown command or option


def test_every_variable_the_file_sets_is_one_the_code_reads(
    services: dict[str, dict[str, Any]],
) -> None:
    known = {f"LOYALTY_{name.upper()}" for name in Settings.model_fields}
    known |= {f"LOYALTY_API_{name.upper()}" for name in ApiSettings.model_fields}
    # The Google clients' own: Firestore's and the Firebase Admin SDK's emulator addresses.
    known |= {"FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST"}
    for name, svc in services.items():
        for key in svc.get("environment") or {}:
            assert key in known, f"{name}: {key} is read by nothing"


def test_celery_commands_name_the_app_module(services: dict[str, dict[str, Any]]) -> None:
    for svc in services.values():
        command = svc.get("command") or []
        if command and command[0] == "celery":
            assert command[1:3] == ["-A", "loyalty_worker.celery_app"], shlex.join(command)


# --- the image: Dockerfile and .dockerignore ----------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` per instruction, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, arguments = (current + line).partition(" ")
        found.append((keyword.upper(), " ".join(arguments.split())))
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return found


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


def pip_installs(dockerfile: list[tuple[str, str]]) -> list[list[str]]:
    """The arguments of every ``pip install`` the image runs, in order."""
    runs = [arguments for keyword, arguments in dockerfile if keyword == "RUN"]
    found = [re.findall(r"\bpip install ([^;&|]*)", run) for run in runs]
    return [shlex.split(install) for installs in found for install in installs]


def test_compose_builds_the_image_from_the_dockerfile(compose: dict[str, Any]) -> None:
    build = compose["x-app"]["build"]
    assert build == {"context": ".", "dockerfile": "Dockerfile"}
    assert "dockerfile_inline" not in COMPOSE.read_text()


def test_python_packages_come_from_the_lock_with_their_hashes(
    dockerfile: list[tuple[str, str]],
) -> None:
    installs = pip_installs(dockerfile)
    assert installs, "the image installs nothing with pip"
    for args in installs:
        assert "-e" not in args and "--editable" not in args, args
        assert "--no-deps" in args, args  # nothing resolved: what the lock says, or nothing
        if "-r" in args:
            assert "--require-hashes" in args, args
        else:  # the project itself, built with the locked setuptools, never editable
            assert args[-1] == "." and "--no-build-isolation" in args, args
    lock_files = [args[args.index("-r") + 1] for args in installs if "-r" in args]
    assert lock_files[-1] == "requirements.lock"
    project = next(i for i, args in enumerate(installs) if "-r" not in args)
    assert project == len(lock_files), "the project goes on top of the whole lock"


def test_the_locked_pip_is_installed_first_and_alone(dockerfile: list[tuple[str, str]]) -> None:
    """The venv's pip is replaced by the lock's before it installs the rest: the lines the image
    cuts out of requirements.lock are pip's pin and hashes, nothing else."""
    runs = " && ".join(arguments for keyword, arguments in dockerfile if keyword == "RUN")
    cut = re.search(r"sed -n '([^']+)' requirements\.lock > (\S+)", runs)
    assert cut is not None, "no sed cutting pip out of the lock"
    first = pip_installs(dockerfile)[0]
    assert first[first.index("-r") + 1] == cut[2]
    lines = subprocess.run(
        ["sed", "-n", cut[1], str(LOCK)], capture_output=True, text=True, check=True
    ).stdout
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lines, re.MULTILINE)
    locked_pip = re.search(r"^pip==(\S+) \\$", LOCK.read_text(), re.MULTILINE)
    assert locked_pip is not None, "requirements.lock pins no pip"
    assert pins == [("pip", locked_pip[1])]
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", lines)) >= 1


def test_the_image_runs_as_a_non_root_user(
    dockerfile: list[tuple[str, str]], services: dict[str, dict[str, Any]]
) -> None:
    final_stage = dockerfile[max(i for i, (k, _) in enumerate(dockerfile) if k == "FROM") :]
    users = [
        (i, arguments) for i, (keyword, arguments) in enumerate(final_stage) if keyword == "USER"
    ]
    assert users, "the final stage has no USER: its processes run as root"
    where, user = users[-1]
    assert user.split(":")[0] not in {"root", "0"}
    assert all(keyword != "RUN" for keyword, _ in final_stage[where:]), "RUN as root after USER"
    created = [a for k, a in final_stage[:where] if k == "RUN" and "useradd" in a]
    assert created and re.search(rf"useradd .*--system .*\b{re.escape(user)}$", created[-1])
    for name, svc in services.items():
        assert str(svc.get("user", user)).split(":")[0] not in {"root", "0"}, name


# A tag naming one release (1.2.3, with a variant such as -slim-bookworm), optionally its digest.
EXACT_TAG = re.compile(
    r"^(?P<name>[a-z0-9./_-]+):(?P<version>\d+\.\d+\.\d+)(?:-[a-z0-9.-]+)?"
    r"(?:@sha256:[0-9a-f]{64})?$"
)


def base_images(dockerfile: list[tuple[str, str]]) -> list[str]:
    """The images the Dockerfile's stages start from (an earlier stage's name is no image)."""
    stages: set[str] = set()
    images = []
    for keyword, arguments in dockerfile:
        if keyword != "FROM":
            continue
        parts = arguments.split()
        if parts[0] not in stages:
            images.append(parts[0])
        if len(parts) == 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
    return images


def test_every_image_goes_by_an_exact_version_tag(
    dockerfile: list[tuple[str, str]], services: dict[str, dict[str, Any]]
) -> None:
    pulled = [svc["image"] for svc in services.values() if "build" not in svc]
    images = base_images(dockerfile) + pulled
    assert len(images) >= 3  # node, python, redis
    texts = DOCKERFILE.read_text() + COMPOSE.read_text()
    for image in images:
        assert EXACT_TAG.match(image), f"{image}: not an exact version (no bare major, no latest)"
        if "@sha256:" not in image:  # where the digest could not be written, how to pin it
            assert f"docker buildx imagetools inspect {image} --format" in texts, image


def test_the_image_runs_the_python_the_lock_was_made_for(
    dockerfile: list[tuple[str, str]],
) -> None:
    locked = re.search(r"autogenerated by pip-compile with Python (\d+\.\d+)", LOCK.read_text())
    assert locked is not None
    (python,) = [image for image in base_images(dockerfile) if image.startswith("python:")]
    match = EXACT_TAG.match(python)
    assert match is not None and match["version"].startswith(f"{locked[1]}.")


def test_the_image_carries_every_npm_tree_from_its_lock_file(
    dockerfile: list[tuple[str, str]],
) -> None:
    runs = " && ".join(arguments for keyword, arguments in dockerfile if keyword == "RUN")
    loop = re.search(r"for tree in ([^;]+);", runs)
    assert loop is not None, "no loop over the npm trees"
    trees = set(loop[1].split())
    assert trees == {"firestore_emulator", "auth_emulator", "api/browser"}
    assert "npm ci --omit=dev" in runs
    assert "npm install" not in runs  # only the lock files' versions
    for tree in trees:  # the trees of this checkout (others arrive with their own branches)
        if (ROOT / "loyalty_worker" / tree).is_dir():
            for name in ("package.json", "package-lock.json"):
                assert (ROOT / "loyalty_worker" / tree / name).is_file(), f"{tree}/{name}"


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path, or a directory above it, decides."""
    ignored = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        regex = re.escape(body).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            ignored = not keep
    return ignored


def test_the_build_context_keeps_the_venv_node_modules_and_git_out() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "node_modules/x/index.js",
        "loyalty_worker/firestore_emulator/node_modules/@grpc/grpc-js/package.json",
        "loyalty_worker/api/browser/node_modules/firebase/package.json",
        "loyalty_worker/__pycache__/config.cpython-311.pyc",
        ".env",
        ".demo/worker.log",
        "tests/unit/test_compose.py",
    ):
        assert dockerignored(path, patterns), f"{path} goes into the build context"
    for path in (
        "pyproject.toml",
        "requirements.lock",
        "README.md",
        "celeryconfig.py",
        "loyalty_worker/config.py",
        "loyalty_worker/firestore_emulator/package-lock.json",
        "loyalty_worker/api/templates/base.html",
    ):
        assert not dockerignored(path, patterns), f"{path} is left out of the build context"


def test_the_auth_emulator_is_reachable_inside_the_network_only(
    services: dict[str, dict[str, Any]],
) -> None:
    auth = services["auth"]
    assert "ports" not in auth
    command = auth["command"]
    assert command[:2] == ["loyalty-worker", "auth-emulator"]
    options = dict(zip(command[2::2], command[3::2], strict=True))
    assert options == {"--host": "0.0.0.0", "--port": "9099"}
    api = services["api"]
    assert "auth" in api["depends_on"]
    assert api["environment"]["FIREBASE_AUTH_EMULATOR_HOST"] == f"auth:{options['--port']}"
    # Firebase keeps demo-* projects to the emulators: no real project is reached from here.
    assert api["environment"]["LOYALTY_FIREBASE_PROJECT_ID"].startswith("demo-")


def test_the_api_answers_to_its_service_name_and_the_loopback_names(
    services: dict[str, dict[str, Any]],
) -> None:
    hosts = json.loads(services["api"]["environment"]["LOYALTY_API_TRUSTED_HOSTS"])
    assert {"api", "127.0.0.1", "localhost"} <= set(hosts)
