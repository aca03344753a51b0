"""A local Firebase Authentication for development, tests and the demo, run from Python.

Google's own emulator, from ``firebase-tools`` (pinned in ``package.json``; Node only, no Java):
``firebase emulators:start --only auth`` for a ``demo-`` project, which the CLI serves entirely
offline. Point the Admin SDK at it with ``FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:PORT``, the
browser SDK with ``connectAuthEmulator``; its accounts live in memory and die with it. It holds
as many projects as it is asked for: each test works in a project of its own.

It never reaches the network. Each emulator gets a private directory (its ``firebase.json``, its
home, config, cache and temporary directories, removed when it stops; one whose emulator was
killed with its parent is removed by the next start), so the CLI finds no login, no
usage-reporting consent and no other emulator's hub there; ``NO_UPDATE_NOTIFIER`` stops the
update check and ``CI`` the message-of-the-day fetch; the Emulator UI (a download) is off.
npm installs it without optional packages or install scripts (``re2`` would fetch a binary from
GitHub, then compile).

``create_account`` and ``sign_in`` make people in an emulator as a person would be: an account
with an e-mail and a password, and the ID token a sign-in gives them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from loyalty_worker import devstack
from loyalty_worker.names import AUTH_EMULATOR_HOST_VAR, DEMO_FIREBASE_PROJECT

EMULATOR_DIR = Path(__file__).resolve().parent
FIREBASE_CLI = EMULATOR_DIR / "node_modules" / "firebase-tools" / "lib" / "bin" / "firebase.js"
# What ``make install`` and ``ensure_installed`` give npm: nothing optional, no install script.
NPM_ARGS = ("--omit=optional", "--ignore-scripts")
_LOOPBACK = "127.0.0.1"
_WORKDIR_PREFIX = "loyalty-auth-emulator-"
_OWNER_FILE = "emulator.pid"
_NEEDED_BY = "the Firebase Auth emulator"
# The emulator grants its own admin rights to this bearer token (any project it holds).
_OWNER = {"Authorization": "Bearer owner"}


class AuthEmulatorUnavailable(devstack.StartupError):
    """The emulator cannot be installed or started (Node or npm missing, npm or the CLI
    failing), or was asked for a project that is not a ``demo-`` one."""


class EmulatorRefused(RuntimeError):
    """The emulator refused a request about its accounts; ``message`` is its code for why
    (``EMAIL_EXISTS``, ``INVALID_PASSWORD``, ...)."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(f"the Auth emulator refused to {what}: {message}")
        self.message = message


def ensure_installed(*, timeout_s: float = 300.0) -> None:
    """Install ``firebase-tools`` from the lock file, once, when it is missing (``make install``
    does it ahead; concurrent callers wait for the first)."""
    try:
        devstack.npm_ci(
            EMULATOR_DIR,
            installed=FIREBASE_CLI,
            needed_by=_NEEDED_BY,
            args=NPM_ARGS,
            timeout_s=timeout_s,
        )
    except devstack.StartupError as exc:
        raise AuthEmulatorUnavailable(str(exc)) from None


class AuthEmulator:
    """A running emulator: ``host`` for ``FIREBASE_AUTH_EMULATOR_HOST``, ``stop()`` when done."""

    def __init__(
        self, child: devstack.ChildProcess, port: int, project_id: str, workdir: Path
    ) -> None:
        self.child = child
        self.port = port
        self.project_id = project_id
        self.workdir = workdir

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the value for ``FIREBASE_AUTH_EMULATOR_HOST``."""
        return f"{_LOOPBACK}:{self.port}"

    def running(self) -> bool:
        """Whether the CLI's process is still alive."""
        return self.child.running

    def answers(self) -> bool:
        """Whether it serves requests (its root says it is ready)."""
        return emulator_answers(self.host)

    def wait_until_ready(self, timeout_s: float = 60.0) -> None:
        """Block until it answers; stopped, and AuthEmulatorUnavailable with its output's tail,
        when it exits or stays silent for ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        try:
            while not self.answers():
                if not self.running() or time.monotonic() > deadline:
                    output = self.child.output()
                    problem = "exited" if not self.running() else f"no answer in {timeout_s:.0f}s"
                    raise AuthEmulatorUnavailable(
                        f"the Firebase Auth emulator did not start on {self.host} ({problem}):\n"
                        f"{devstack.tail(output)}".rstrip()
                    )
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    def wait(self) -> int:
        """Block until the emulator exits; its exit code."""
        return self.child.process.wait()

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop it (SIGTERM to its process group, SIGKILL after ``timeout_s``) and remove its
        directory; safe to call twice."""
        try:
            self.child.stop(timeout_s=timeout_s)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def launch_auth_emulator(
    port: int | None = None, *, bind: str = _LOOPBACK, project_id: str = DEMO_FIREBASE_PROJECT
) -> AuthEmulator:
    """Start an emulator on ``port`` (a free one when None) without waiting for it: call
    ``wait_until_ready()`` before using it (the demo starts other things meanwhile).

    It is started like every other child (``devstack.spawn``: registered, in a process group of
    its own, and on Linux killed with its parent), so it ends with whatever started it.
    ``bind`` is the address it listens on: loopback, unless a container must expose it.
    """
    if not project_id.startswith("demo-"):
        raise AuthEmulatorUnavailable(
            f"the Auth emulator serves demo projects only (demo-...), not {project_id!r}: the "
            "CLI would reach Google for any other"
        )
    ensure_installed()
    try:
        node = devstack.require_executable("node", needed_by=_NEEDED_BY)
    except devstack.StartupError as exc:
        raise AuthEmulatorUnavailable(str(exc)) from None
    port = port or devstack.free_port()
    _remove_abandoned()
    workdir = Path(tempfile.mkdtemp(prefix=_WORKDIR_PREFIX))
    try:
        config = _write_config(workdir, port=port, bind=bind)
        argv = [str(node), str(FIREBASE_CLI), "emulators:start", "--only", "auth"]
        argv += ["--project", project_id, "--config", str(config)]
        child = devstack.ChildProcess.start(
            "firebase auth emulator", argv, env=_offline_env(workdir), cwd=workdir
        )
        (workdir / _OWNER_FILE).write_text(str(child.process.pid))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return AuthEmulator(child, port, project_id, workdir)


def start_auth_emulator(
    port: int | None = None,
    *,
    bind: str = _LOOPBACK,
    project_id: str = DEMO_FIREBASE_PROJECT,
    timeout_s: float = 60.0,
) -> AuthEmulator:
    """Start an emulator on ``port`` (a free one when None) and wait until it answers."""
    emulator = launch_auth_emulator(port, bind=bind, project_id=project_id)
    emulator.wait_until_ready(timeout_s)
    return emulator


def main_auth_emulator(
    port: int | None = None, *, bind: str = _LOOPBACK, project_id: str = DEMO_FIREBASE_PROJECT
) -> int:
    """Run an emulator in the foreground until Ctrl-C (``loyalty-worker auth-emulator``)."""
    with devstack.supervise("auth emulator"):
        try:
            emulator = start_auth_emulator(port, bind=bind, project_id=project_id)
        except AuthEmulatorUnavailable as exc:
            print(f"auth emulator: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:  # SIGTERM and SIGHUP too (devstack.Stopped)
            return 0
        try:
            print(f"{AUTH_EMULATOR_HOST_VAR}={emulator.host}", flush=True)
            print(f"project: {project_id}", flush=True)
            return emulator.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            emulator.stop()


def emulator_answers(host: str) -> bool:
    """Whether an Auth emulator answers at ``host`` (``host:port``)."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        response = httpx.get(f"http://{host}/", timeout=2.0)
        return response.status_code == 200 and "authEmulator" in response.json()
    return False


def create_account(
    host: str, email: str, password: str, *, project_id: str = DEMO_FIREBASE_PROJECT
) -> str:
    """A new account (e-mail and password) in the emulator at ``host``; its uid."""
    answer = _post(
        host, f"projects/{project_id}/accounts", "create an account", email=email, password=password
    )
    return str(answer["localId"])


def delete_accounts(host: str, *, project_id: str = DEMO_FIREBASE_PROJECT) -> None:
    """Delete every account of ``project_id`` in the emulator at ``host`` (its own API)."""
    response = httpx.delete(
        f"http://{host}/emulator/v1/projects/{project_id}/accounts", headers=_OWNER, timeout=10.0
    )
    if response.status_code != 200:
        raise EmulatorRefused("delete the accounts", f"HTTP {response.status_code}")


def sign_in(
    host: str, email: str, password: str, *, project_id: str = DEMO_FIREBASE_PROJECT
) -> str:
    """Sign in with an e-mail and a password, as the browser SDK does; the ID token."""
    answer = _post(
        host,
        "accounts:signInWithPassword",
        "sign in",
        email=email,
        password=password,
        returnSecureToken=True,
        targetProjectId=project_id,
    )
    return str(answer["idToken"])


def _post(host: str, path: str, what: str, **fields: str | bool) -> Any:
    """POST an Identity Toolkit request to the emulator, as its owner; its JSON answer."""
    response = httpx.post(
        f"http://{host}/identitytoolkit.googleapis.com/v1/{path}",
        json=fields,
        headers=_OWNER,
        timeout=10.0,
    )
    if response.status_code != 200:
        try:
            message = str(response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {response.status_code}"
        raise EmulatorRefused(what, message)
    return response.json()


def _remove_abandoned() -> None:
    """Remove the directories of emulators that are gone without removing theirs (killed with
    a parent killed outright): those whose process is no more."""
    for workdir in Path(tempfile.gettempdir()).glob(f"{_WORKDIR_PREFIX}*"):
        try:
            pid = int((workdir / _OWNER_FILE).read_text())
        except (OSError, ValueError):  # starting, or not one of ours
            continue
        if not _alive(pid):
            shutil.rmtree(workdir, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    if not Path("/proc").is_dir():
        return True  # not Linux: nothing tells a zombie apart
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # gone meanwhile
        return False
    return state != "Z"


def _write_config(workdir: Path, *, port: int, bind: str) -> Path:
    """The emulator's ``firebase.json``: the auth emulator on ``bind:port``; the hub and the
    logging emulator (which the CLI always starts) on free loopback ports, so emulators side
    by side never clash; no Emulator UI; any project id accepted."""
    config = {
        "emulators": {
            "auth": {"host": bind, "port": port},
            "hub": {"host": _LOOPBACK, "port": devstack.free_port()},
            "logging": {"host": _LOOPBACK, "port": devstack.free_port()},
            "ui": {"enabled": False},
            "singleProjectMode": False,
        }
    }
    path = workdir / "firebase.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _offline_env(workdir: Path) -> dict[str, str]:
    """The CLI's environment: every directory it reads or writes is the emulator's own, and
    nothing it would fetch (update check, message of the day, usage reports) is fetched."""
    directories = {
        "HOME": "home",
        "XDG_CONFIG_HOME": "home/.config",
        "XDG_CACHE_HOME": "home/.cache",
        "TMPDIR": "tmp",
    }
    env = {}
    for variable, relative in directories.items():
        path = workdir / relative
        path.mkdir(parents=True, exist_ok=True)
        env[variable] = str(path)
    env["NO_UPDATE_NOTIFIER"] = "1"
    env["CI"] = "true"
    return env
