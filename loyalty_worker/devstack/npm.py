"""The npm packages local tools run from (the emulators, the dashboard's browser SDK): installed
from their lock files with ``npm ci``, once, by whichever caller needs them first.

``make install`` installs them all ahead; ``npm_ci`` is what a tool calls when it starts in a
checkout where that was not done (a test run on a fresh clone).
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from loyalty_worker.devstack.processes import StartupError

NODE_HINT = "for example `apt-get install nodejs npm`"


def require_executable(name: str, *, needed_by: str) -> str:
    """The path of ``name`` (``node``, ``npm``) on PATH; StartupError saying who needs it
    otherwise."""
    path = shutil.which(name)
    if path is None:
        raise StartupError(
            f"`{name}` was not found on PATH: {needed_by} needs Node.js 20+ and npm ({NODE_HINT})"
        )
    return path


def npm_ci(
    directory: Path,
    *,
    installed: Path,
    needed_by: str,
    args: Sequence[str] = (),
    timeout_s: float = 300.0,
) -> None:
    """``npm ci`` in ``directory`` unless ``installed`` (a file the install writes) exists.

    A lock on ``package.json`` serialises concurrent callers (several test processes starting at
    once), since ``npm ci`` deletes ``node_modules`` before it writes it. StartupError, with
    npm's output, when npm is missing, fails or takes longer than ``timeout_s``.
    """
    if installed.is_file():
        return
    npm = require_executable("npm", needed_by=needed_by)
    require_executable("node", needed_by=needed_by)
    with (directory / "package.json").open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed.is_file():
            return
        try:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", *args],
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StartupError(
                f"`npm ci` in {directory} did not finish within {timeout_s:.0f}s"
            ) from exc
        if result.returncode != 0:
            raise StartupError(
                f"`npm ci` in {directory} failed (exit {result.returncode}):\n"
                f"{tail(result.stdout + result.stderr)}"
            )


def tail(text: str, lines: int = 20) -> str:
    """The last ``lines`` lines of a tool's output, for an error message."""
    return "\n".join(text.strip().splitlines()[-lines:])
