"""The local stack the worker benchmarks run on, and how they measure it.

Shared by ``bench_sync.py`` (one org, several ways) and ``bench_fleet.py`` (many orgs at once):
the benchmark's Redis database, the Firestore project seeded for each run, the real Celery
worker processes (this checkout's, or another checkout's code with ``source``), the samplers
of memory and CPU, the check that a run's summary adds up, and the results file.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Container, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import redis
from google.cloud import firestore

from loyalty_worker import devstack
from loyalty_worker.adapters.seed import seed_firestore
from loyalty_worker.firestore_emulator import EmulatorProcess
from loyalty_worker.sandbox.data.records import Dataset

# This checkout: the one whose benchmark, sandbox and checks run.
CHECKOUT = Path(__file__).resolve().parent.parent
DATA_APIS = ("alleaves", "alpine")
SAMPLE_INTERVAL_S = 0.1
# Run progress is polled faster than memory is sampled: it decides the measured wall time.
POLL_S = 0.05
MB = 1024 * 1024
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def bench_redis_url(db: int) -> str:
    """The project's Redis (``LOYALTY_REDIS_URL``), on a database of the benchmark's own.

    The database is flushed before every worker run, so it must not be the one a demo, a test
    session (14) or a deployment (0) uses.
    """
    base = os.environ.get("LOYALTY_REDIS_URL", "redis://127.0.0.1:6379/0")
    return devstack.redis_database(base, db)


def machine_line(redis_client: redis.Redis, redis_url: str) -> str:
    """Cores, memory, system, Python and Redis: what a figure of the header depends on."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0))
    memory = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        ),
        "?",
    )
    server = cast(dict[str, Any], redis_client.info("server"))
    return (
        f"machine: {cores} cores ({usable} usable), {int(memory) // 1024:,} MB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"Redis {server.get('redis_version')} at {redis_url}"
    )


# --- sampling ----------------------------------------------------------------------------------


def tree_rss_bytes(roots: Collection[int]) -> list[int]:
    """Resident memory of each of processes ``roots`` and all their descendants, from /proc.

    The parent links are read afresh on every sample, so a child started mid-run is counted.
    """
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[ppid].append(int(stat.parent.name))
    sizes: list[int] = []
    pending, seen = list(roots), set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            sizes.append(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_BYTES)
        except (OSError, IndexError, ValueError):
            continue
        pending.extend(children.get(pid, ()))
    return sizes


class TreeRss:
    """A ``PeakSampler`` reading: the process tree's total RSS; keeps the largest process's peak.

    The goal is per worker process (at most 300 MB each), the total says what the way costs.
    """

    def __init__(self, roots: Collection[int]) -> None:
        self._roots = roots
        self.peak_process: float | None = None

    def __call__(self) -> float | None:
        sizes = tree_rss_bytes(self._roots)
        if not sizes:
            return None
        self.peak_process = max(self.peak_process or 0.0, float(max(sizes)))
        return float(sum(sizes))


def redis_used_memory(client: redis.Redis) -> float | None:
    try:
        info = cast(dict[str, Any], client.info("memory"))
        return float(info["used_memory"])
    except redis.RedisError:
        return None


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) used so far by process ``root`` and its live descendants,
    including the waited-for children they reaped (from /proc)."""
    children: dict[int, list[int]] = defaultdict(list)
    stats: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        stats[pid] = fields
        with contextlib.suppress(IndexError, ValueError):
            children[int(fields[1])].append(pid)
    total, pending, seen = 0, [root], set()
    while pending:
        pid = pending.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        # After "(comm)": state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based.
        with contextlib.suppress(IndexError, ValueError):
            total += sum(int(value) for value in stats[pid][11:15])
        pending.extend(children.get(pid, ()))
    return total / _CLOCK_TICKS


def redis_cpu_s(client: redis.Redis) -> float | None:
    """The Redis server's CPU seconds so far (``INFO cpu``: its main thread and children)."""
    try:
        info = cast(dict[str, Any], client.info("cpu"))
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    except (redis.RedisError, KeyError, ValueError):
        return None


class CpuMeter:
    """CPU seconds each named process tree (and the Redis server) uses between enter and exit."""

    def __init__(self, trees: Mapping[str, int], client: redis.Redis) -> None:
        self._trees = dict(trees)
        self._client = client
        self._start: dict[str, float | None] = {}
        self.used: dict[str, float] = {}

    def _read(self) -> dict[str, float | None]:
        figures: dict[str, float | None] = {
            name: tree_cpu_s(pid) for name, pid in self._trees.items()
        }
        figures["redis"] = redis_cpu_s(self._client)
        return figures

    def __enter__(self) -> Self:
        self._start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._read()
        for name, before in self._start.items():
            after = end.get(name)
            if before is not None and after is not None:
                self.used[name] = round(after - before, 2)


class PeakSampler:
    """Reads a value every 100 ms on a thread of its own; keeps the first, last and largest."""

    def __init__(self, read: Callable[[], float | None], interval_s: float = SAMPLE_INTERVAL_S):
        self._read = read
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.first: float | None = None
        self.last: float | None = None
        self.peak: float | None = None

    def _sample(self) -> None:
        value = self._read()
        if value is None:
            return
        if self.first is None:
            self.first = value
        self.last = value
        self.peak = value if self.peak is None else max(self.peak, value)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def __enter__(self) -> Self:
        self._sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def mb(value: float | None) -> float | None:
    """Bytes as MB, one decimal."""
    return None if value is None else round(value / MB, 1)


# --- the stack ---------------------------------------------------------------------------------


def seeded_parts(orgs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What Firestore is seeded with of generated orgs: each one's settings, credentials and
    Markitbot profiles (``seed_project``'s ``seed_data``), without its customers and orders."""
    keep = ("orgId", "settings", "alleaves", "alpine", "profiles")
    return {"orgs": [{key: org[key] for key in keep} for org in orgs]}


def seed_project(emulator: EmulatorProcess, seed_data: dict[str, Any]) -> str:
    """A fresh Firestore project holding the orgs' settings and profiles as generated."""
    project = f"bench-{uuid.uuid4().hex[:10]}"
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    with contextlib.closing(firestore.Client(project=project)) as client:
        seed_firestore(client, cast("Dataset", seed_data))
    return project


def tail(text: str, lines: int = 15) -> str:
    """The last ``lines`` lines of a child's output, for an error message."""
    return "\n".join(text.strip().splitlines()[-lines:])


def source_version(root: Path = CHECKOUT) -> str:
    """The commit of the checkout at ``root`` (this one by default), and whether its working
    tree differs from it (read-only git)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "loyalty_worker")
    return f"commit {commit}" + (" with uncommitted changes in loyalty_worker/" if changed else "")


# --- the workers -------------------------------------------------------------------------------


def worker_env(
    *,
    redis_url: str,
    emulator: EmulatorProcess,
    project: str,
    sandbox: devstack.Sandbox,
    concurrency: int,
) -> dict[str, str]:
    """The workers' settings: the benchmark's Redis, the seeded project, the sandbox's APIs."""
    return {
        "LOYALTY_REDIS_URL": redis_url,
        "FIRESTORE_EMULATOR_HOST": emulator.host,
        "LOYALTY_FIRESTORE_PROJECT": project,
        "LOYALTY_ALLEAVES_BASE_URL": sandbox.alleaves_url,
        "LOYALTY_ALPINE_BASE_URL": sandbox.alpine_url,
        "LOYALTY_DISCORD_WEBHOOK_URL": sandbox.webhook_url("bench", "token"),
        "LOYALTY_WORKER_CONCURRENCY": str(concurrency),
    }


def start_workers(
    env: Mapping[str, str],
    workers: list[devstack.ChildProcess],
    *,
    count: int,
    concurrency: int,
    source: Path | None = None,
) -> None:
    """Start ``count`` worker processes (``bench0``, ``bench1``...) into ``workers``, so that
    the caller stops the ones started even when a later one fails to start. ``source``: another
    checkout whose code they run (``devstack.start_worker``)."""
    for index in range(count):
        workers.append(
            devstack.start_worker(env, concurrency=concurrency, name=f"bench{index}", source=source)
        )


def process_trees(
    workers: Sequence[devstack.ChildProcess],
    sandbox: devstack.Sandbox,
    emulator: EmulatorProcess,
) -> dict[str, int]:
    """The processes whose CPU a run reports, by name: each worker, the sandbox, the emulator."""
    trees = {worker.name: worker.process.pid for worker in workers}
    trees["sandbox"] = sandbox.child.process.pid
    emulator_process = getattr(emulator, "_process", None)
    if emulator_process is not None:
        trees["emulator"] = emulator_process.pid
    return trees


def summary_problem(summary: Mapping[str, Any], customers: int) -> str | None:
    """Why a run's summary does not add up (listed = generated = synced + unchanged + failed,
    none missing); None when it does."""
    listed, synced = summary.get("listed"), summary.get("synced")
    unchanged, failed, missing = (
        summary.get("unchanged"),
        summary.get("failed"),
        summary.get("missing"),
    )
    parts = [count for count in (synced, unchanged, failed) if isinstance(count, int)]
    if listed == customers and missing == 0 and len(parts) == 3 and sum(parts) == listed:
        return None
    return (
        f"summary does not add up: listed {listed} of {customers} generated, "
        f"{synced} synced + {unchanged} unchanged + {failed} failed, {missing} missing"
    )


# --- results -----------------------------------------------------------------------------------


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Replace the results file whole, so a reader never sees half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(list(rows), indent=2) + "\n")
    partial.replace(path)


def cell(value: Any, digits: int = 1) -> str:
    """A table cell: thousands separated, ``digits`` decimals for a float, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def text_table(table: Sequence[Sequence[str]], *, left: Container[int], rule: bool = True) -> str:
    """Rows of cells (the first the titles) in columns padded to their widest cell: the columns
    ``left`` names left-aligned, the others right-aligned; with ``rule``, a line of dashes under
    the titles."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = []
    for number, line in enumerate(table):
        lines.append(
            "  ".join(
                text.ljust(widths[i]) if i in left else text.rjust(widths[i])
                for i, text in enumerate(line)
            ).rstrip()
        )
        if rule and number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)
