"""Full-org sync benchmark: the naive loop, an asyncio reference and the Celery worker.

``make bench`` (``.venv/bin/python benchmarks/bench_sync.py``) syncs ``org-1`` of a generated
dataset (``--customers N``, seed 1) against the local stack: the sandbox (Alleaves and Alpine IQ
look-alikes, ``--latency-ms`` per call), a Firestore emulator and the machine's Redis. Each way
runs ``--repeat`` times per latency and the run with the median wall time is reported:

- ``naive``: the seed plan: one process, one customer after another, on the project's own
  clients and ``services.sync.customer``; the order history read as one date range, page after
  page. Above ``--naive-limit`` customers only the first ones are synced and the loop is
  extrapolated linearly (the listing and the history are always read in full).
- ``asyncio``: one process, ``httpx.AsyncClient`` and a semaphore of the workers' total
  concurrency, reading what the worker's plan reads the way it reads it (customer pages in
  rounds, history windows in parallel, Alpine IQ contacts listing, profiles in chunks) and
  committing the profiles by chunk as its tasks do; the domain rules reused: the floor a
  hand-written script could reach with the worker's calls.
- ``asyncio_per_customer``: the same script with one profile read, one Alpine IQ look-up and
  one merge-write per customer (what ``loyalty.sync_customer`` does when called alone).
- ``loyalty_worker``: real Celery worker processes (``--workers`` × ``--concurrency`` threads)
  running ``loyalty.sync_org``, timed from sending the task until the run's summary is in Redis;
  ``loyalty_worker_rerun`` is the same org again, unchanged, on the same workers.

Alpine IQ's contacts listing is the documented one by default (no balances: each customer with a
phone costs a look-up, in the plan-less ways and in the worker's chunk tasks alike);
``--alpine-balances-in-listing`` runs the sandbox with its labelled shortcut instead (balances
in the listing, so the bulk ways need no look-up). The header and every row name the mode.

Every run starts from a freshly seeded Firestore project on an emulator of its own, zeroed
sandbox counters, and (for the worker) a flushed Redis database. The figures per row: wall
time, customers/s, API calls (Alleaves + Alpine IQ requests the sandbox served, logins and
retries included), Firestore profile writes, peak RSS of the way's process tree (sampled every
100 ms from /proc), Redis ``used_memory`` around and during the run (server-wide), and the
bound ``api_calls × latency ÷ total concurrency``: the time the calls would take if the slots
never idled (with ``--rate-limit R``, at least the busier API's calls ÷ R).

Results: a table on stdout and a JSON list of rows in ``--out`` (rewritten after each row, so an
interrupted benchmark keeps what it measured).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from inprocess_ways import RESULT_MARKER, WayConfig
from worker_stack import (
    DATA_APIS,
    POLL_S,
    CpuMeter,
    PeakSampler,
    TreeRss,
    bench_redis_url,
    cell,
    machine_line,
    mb,
    process_trees,
    redis_used_memory,
    seed_project,
    seeded_parts,
    source_version,
    start_workers,
    summary_problem,
    tail,
    text_table,
    worker_env,
    write_rows,
)

from loyalty_worker import devstack
from loyalty_worker.adapters.run_state import Progress, RunTracker
from loyalty_worker.domain.run import RunStatus
from loyalty_worker.firestore_emulator import EmulatorProcess, EmulatorUnavailable, start_emulator
from loyalty_worker.sandbox.data import generate_dataset

WAYS = ("naive", "asyncio", "asyncio_per_customer", "loyalty_worker")
RERUN = "loyalty_worker_rerun"
# The same unchanged org once more, as the incremental Beat entry runs it: sync_org(since="last").
RERUN_SINCE_LAST = "loyalty_worker_rerun_since_last"
ORG_ID = "org-1"
# --alpine-listing: which listing modes run (True: the sandbox's shortcut, balances listed).
ALPINE_MODES: dict[str, tuple[bool, ...]] = {
    "documented": (False,),
    "balances": (True,),
    "both": (False, True),
}
SEED = 1
BENCH_REDIS_DB = 13
# The limit the worker is told about in --rate-limit mode (requests per second, per API).
RATE_LIMIT_VARS = ("LOYALTY_ALLEAVES_RATE_LIMIT", "LOYALTY_ALPINE_RATE_LIMIT")
WAYS_SCRIPT = Path(__file__).resolve().with_name("inprocess_ways.py")


# --- options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    customers: int
    latencies: tuple[int, ...]
    repeat: int
    concurrency: int
    # Worker processes per worker run: several counts run side by side (scale-out).
    worker_counts: tuple[int, ...]
    ways: tuple[str, ...]
    rate_limit: int | None
    out: Path
    naive_limit: int
    redis_url: str
    timeout_s: float | None
    reruns: bool = True
    # The sandbox's shortcut: balances in Alpine IQ's contacts listing (not the documented API).
    alpine_balances_in_listing: bool = False
    # The Alpine IQ listing modes measured, one after the other (True: the shortcut).
    alpine_modes: tuple[bool, ...] = (False,)
    # The worker processes of the worker run being measured (one of ``worker_counts``).
    workers: int = 0

    def __post_init__(self) -> None:
        if not self.workers:
            object.__setattr__(self, "workers", self.worker_counts[0])

    @property
    def alpine_listing(self) -> str:
        """The Alpine IQ listing mode, as the header and the rows name it."""
        return "balances (shortcut)" if self.alpine_balances_in_listing else "documented"

    @property
    def total_concurrency(self) -> int:
        """Threads of all workers together: the slots the asyncio reference gets too (with the
        first of ``worker_counts``)."""
        return self.workers * self.concurrency


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text}"
        ) from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError("give at least one value, none negative")
    return values


def _ways(text: str) -> tuple[str, ...]:
    ways = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = set(ways) - set(WAYS)
    if not ways or unknown:
        raise argparse.ArgumentTypeError(f"ways are a comma-separated subset of {','.join(WAYS)}")
    return ways


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="Benchmark a full-org loyalty sync three ways against the local stack.",
    )
    parser.add_argument("--customers", type=_positive, default=1000, help="org-1's customers")
    parser.add_argument("--latencies", type=_int_list, default=(50, 150), help="ms, e.g. 50,150")
    parser.add_argument("--repeat", type=_positive, default=3, help="runs per way and latency")
    parser.add_argument("--concurrency", type=_positive, default=16, help="threads per worker")
    parser.add_argument(
        "--workers",
        type=_int_list,
        help="worker processes, or a list of counts run side by side, e.g. 1,2 "
        "(default 1; 2 with --rate-limit)",
    )
    parser.add_argument(
        "--ways",
        type=_ways,
        help=f"subset of {','.join(WAYS)} (default all; loyalty_worker with --rate-limit)",
    )
    parser.add_argument(
        "--rate-limit",
        type=_positive,
        help="requests/s per API, enforced by the sandbox and given to the worker",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument(
        "--naive-limit",
        type=_positive,
        default=1000,
        help="above this many customers the naive loop syncs only the first N and extrapolates",
    )
    parser.add_argument(
        "--redis-url",
        default=bench_redis_url(BENCH_REDIS_DB),
        help="a Redis database the benchmark may flush (default: LOYALTY_REDIS_URL's server, "
        f"database {BENCH_REDIS_DB})",
    )
    parser.add_argument(
        "--timeout", type=float, help="seconds one run may take (default: from the workload)"
    )
    parser.add_argument(
        "--reruns",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after each worker run, run the unchanged org again, in full and since the last run",
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--alpine-listing",
        choices=tuple(ALPINE_MODES),
        default="documented",
        help="Alpine IQ's contacts listing: documented (no balances: one look-up per customer "
        "with a phone), balances (the sandbox's shortcut) or both, one after the other "
        "(make bench: both)",
    )
    modes.add_argument(
        "--alpine-balances-in-listing",
        dest="alpine_listing",
        action="store_const",
        const="balances",
        help="the same as --alpine-listing balances",
    )
    args = parser.parse_args(argv)
    limited = args.rate_limit is not None
    if args.workers is not None and min(args.workers) < 1:
        parser.error("--workers: at least 1 process")
    return Options(
        customers=args.customers,
        latencies=args.latencies,
        repeat=args.repeat,
        concurrency=args.concurrency,
        worker_counts=args.workers or ((2,) if limited else (1,)),
        ways=args.ways or (("loyalty_worker",) if limited else WAYS),
        rate_limit=args.rate_limit,
        out=args.out,
        naive_limit=args.naive_limit,
        redis_url=args.redis_url,
        timeout_s=args.timeout,
        reruns=args.reruns,
        alpine_modes=ALPINE_MODES[args.alpine_listing],
    )


# --- one run -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One run of one way, before the figures derived from it (rate, bound) are added."""

    way: str
    ok: bool
    error: str | None = None
    wall_s: float | None = None
    api_calls: float | None = None
    calls_by_api: dict[str, float] = field(default_factory=dict)
    sandbox_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    firestore_writes: float | None = None
    failed_customers: int | None = None
    peak_rss_mb: float | None = None
    peak_rss_process_mb: float | None = None
    redis_before_mb: float | None = None
    redis_peak_mb: float | None = None
    redis_after_mb: float | None = None
    extrapolated: bool = False
    measured_customers: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Bench:
    """What the runs of one latency share: the options, Redis, the sandbox, the seed data."""

    options: Options
    latency_ms: int
    redis: redis.Redis
    sandbox: devstack.Sandbox
    seed_data: dict[str, Any]
    celery: Celery
    source: str  # the loyalty_worker commit measured

    def timeout_s(self, *, customers: int, concurrency: int) -> float:
        """A generous bound on one run: a run past it is reported as failed, not waited for.

        Expected time: the pages (customers, about five orders each, a few hundred history
        windows) and one look-up per customer at the sandbox's latency spread over the slots,
        plus 20 ms of Firestore and CPU per customer on a small machine; five times that.
        """
        if self.options.timeout_s is not None:
            return self.options.timeout_s
        calls = self.options.customers * 0.07 + 300 + customers * 1.1
        expected = calls * self.latency_ms / 1000 / concurrency + customers * 0.02
        if self.options.rate_limit is not None:
            expected = max(expected, calls / self.options.rate_limit)
        return 300.0 + 5 * expected

    def data_calls(self) -> tuple[float, dict[str, float], dict[str, dict[str, int]]]:
        """Alleaves + Alpine IQ requests served since the last reset, the total and per API."""
        stats = self.sandbox.stats()
        by_api = {api: float(stats[api]["requests"]) for api in DATA_APIS}
        return sum(by_api.values()), by_api, stats


def run_inprocess(bench: Bench, way: str) -> RunResult:
    """One run of ``naive``, ``asyncio`` or ``asyncio_per_customer`` in a child process."""
    options = bench.options
    limit = (
        options.naive_limit if way == "naive" and options.customers > options.naive_limit else None
    )
    concurrency = 1 if way == "naive" else options.total_concurrency
    emulator: EmulatorProcess | None = None
    child: devstack.ChildProcess | None = None
    try:
        emulator = start_emulator()
        config: WayConfig = {
            "way": way,
            "org_id": ORG_ID,
            "run_id": f"bench-{way}-{uuid.uuid4().hex[:8]}",
            "project": seed_project(emulator, bench.seed_data),
            "alleaves_url": bench.sandbox.alleaves_url,
            "alpine_url": bench.sandbox.alpine_url,
            "sandbox_url": bench.sandbox.base_url,
            "concurrency": concurrency,
            "limit": limit,
        }
        timeout_s = bench.timeout_s(customers=limit or options.customers, concurrency=concurrency)
        bench.sandbox.reset_stats()
        child = devstack.ChildProcess.start(
            f"bench-{way}",
            [sys.executable, str(WAYS_SCRIPT), json.dumps(config)],
            env={"FIRESTORE_EMULATOR_HOST": emulator.host},
        )
        pid = child.process.pid
        deadline = time.monotonic() + timeout_s
        tree = TreeRss([pid])
        with PeakSampler(tree) as rss:
            while child.running and time.monotonic() < deadline:
                time.sleep(POLL_S)
        if child.running:
            return RunResult(way, ok=False, error=f"did not finish within {timeout_s:.0f} s")
        output = child.output()
        lines = [line for line in output.splitlines() if line.startswith(RESULT_MARKER)]
        if child.process.returncode != 0 or not lines:
            error = f"exited {child.process.returncode}:\n{tail(output)}"
            return RunResult(way, ok=False, error=error)
        report: dict[str, Any] = json.loads(lines[-1][len(RESULT_MARKER) :])
        api_calls, by_api, stats = bench.data_calls()
    except (devstack.StartupError, EmulatorUnavailable) as exc:
        return RunResult(way, ok=False, error=str(exc))
    finally:
        if child is not None:
            child.stop()
        if emulator is not None:
            emulator.stop()

    statuses: dict[str, int] = report["statuses"]
    failed = sum(count for status, count in statuses.items() if status.startswith("failed"))
    result = RunResult(
        way,
        ok=True,
        wall_s=report["wall_s"],
        api_calls=api_calls,
        calls_by_api=by_api,
        sandbox_stats=stats,
        firestore_writes=report["firestore_writes"],
        failed_customers=failed,
        peak_rss_mb=mb(rss.peak),
        peak_rss_process_mb=mb(tree.peak_process),
        measured_customers=report["measured_customers"],
        extra={
            "plan_s": round(report["plan_s"], 3),
            "statuses": statuses,
            "orders_seen": report["orders_seen"],
            "reads": report["reads"],
        },
    )
    listed, measured = report["listed"], report["measured_customers"]
    if way == "naive" and 0 < measured < listed:
        # The plan (login, listing, history) was paid in full; the loop scales with customers.
        scale = listed / measured
        plan_calls: dict[str, int] = report["plan_requests"]
        result.extrapolated = True
        result.wall_s = report["plan_s"] + report["loop_s"] * scale
        result.calls_by_api = {
            api: plan_calls[api] + (by_api[api] - plan_calls[api]) * scale for api in DATA_APIS
        }
        result.api_calls = round(sum(result.calls_by_api.values()))
        result.firestore_writes = round(report["firestore_writes"] * scale)
        result.failed_customers = round(failed * scale)
        result.extra["measured_wall_s"] = round(report["wall_s"], 3)
    return result


def run_worker_runs(bench: Bench) -> list[RunResult]:
    """A first run on freshly seeded Firestore, then (``--reruns``) the same org again.

    Twice again, on the same workers: a full run, then an incremental one (``since="last"``: the
    orders created since the first run's day, less the overlap; older ones from the profiles'
    ledgers). The reruns are left out when the first run fails.
    """
    options = bench.options
    emulator: EmulatorProcess | None = None
    workers: list[devstack.ChildProcess] = []
    try:
        # Flushed before the workers start: they declare their queues in Redis on start-up.
        bench.redis.flushdb()
        emulator = start_emulator()
        env = worker_env(
            redis_url=options.redis_url,
            emulator=emulator,
            project=seed_project(emulator, bench.seed_data),
            sandbox=bench.sandbox,
            concurrency=options.concurrency,
        )
        if options.rate_limit is not None:
            env.update(dict.fromkeys(RATE_LIMIT_VARS, str(options.rate_limit)))
        start_workers(env, workers, count=options.workers, concurrency=options.concurrency)
        trees = process_trees(workers, bench.sandbox, emulator)
        first = timed_worker_run(bench, workers, "loyalty_worker", trees=trees)
        if not (first.ok and options.reruns):
            return [first]
        again = timed_worker_run(bench, workers, RERUN, trees=trees)
        last = timed_worker_run(bench, workers, RERUN_SINCE_LAST, since="last", trees=trees)
        return [first, again, last]
    except (devstack.StartupError, EmulatorUnavailable) as exc:
        return [RunResult("loyalty_worker", ok=False, error=str(exc))]
    finally:
        for worker in reversed(workers):
            worker.stop()
        if emulator is not None:
            emulator.stop()


def wait_for_summary(
    tracker: RunTracker,
    run_id: str,
    workers: Sequence[devstack.ChildProcess],
    *,
    timeout_s: float,
    started: float,
) -> tuple[Progress, str | None]:
    """Poll the run until its summary is in Redis; an error text when it cannot complete."""
    while True:
        progress = tracker.progress(run_id)
        if progress.summary is not None:
            if progress.status != "completed":
                return progress, f"run ended {progress.status}: {progress.error}"
            return progress, None
        if RunStatus.of(progress.status).ended:
            return progress, f"run ended {progress.status} without a summary: {progress.error}"
        dead = [worker.name for worker in workers if not worker.running]
        if dead:
            return progress, f"worker process exited: {', '.join(dead)}"
        if time.monotonic() - started > timeout_s:
            done = f"{progress.done}/{progress.listed if progress.listed is not None else '?'}"
            return progress, f"no summary within {timeout_s:.0f} s ({done} customers done)"
        time.sleep(POLL_S)


def timed_worker_run(
    bench: Bench,
    workers: Sequence[devstack.ChildProcess],
    way: str,
    *,
    since: str | None = None,
    trees: Mapping[str, int] | None = None,
) -> RunResult:
    """Send ``loyalty.sync_org`` (``since``: incremental); time it until its summary is in.

    ``trees``: processes (by name) whose CPU seconds during the run are reported, the Redis
    server's too. A run whose summary does not add up (listed = generated = synced + unchanged
    + failed, none missing) is a failed run.
    """
    options = bench.options
    tracker = RunTracker(bench.redis)
    run_id = f"bench-{way}-{uuid.uuid4().hex[:8]}"
    timeout_s = bench.timeout_s(customers=options.customers, concurrency=options.total_concurrency)
    tree = TreeRss([worker.process.pid for worker in workers])
    bench.sandbox.reset_stats()
    with (
        CpuMeter(trees or {}, bench.redis) as cpu,
        PeakSampler(tree) as rss,
        PeakSampler(lambda: redis_used_memory(bench.redis)) as memory,
    ):
        started = time.monotonic()
        kwargs: dict[str, Any] = {"run_id": run_id}
        if since is not None:
            kwargs["since"] = since
        bench.celery.send_task(
            "loyalty.sync_org", args=[ORG_ID], kwargs=kwargs, queue="loyalty.runs"
        )
        progress, error = wait_for_summary(
            tracker, run_id, workers, timeout_s=timeout_s, started=started
        )
        wall_s = time.monotonic() - started
    api_calls, by_api, stats = bench.data_calls()
    result = RunResult(
        way,
        ok=error is None,
        error=error,
        sandbox_stats=stats,
        # Kept for a failed run too: memory is often why a large run fails.
        peak_rss_mb=mb(rss.peak),
        peak_rss_process_mb=mb(tree.peak_process),
        redis_before_mb=mb(memory.first),
        redis_peak_mb=mb(memory.peak),
        redis_after_mb=mb(memory.last),
    )
    if error is not None:
        for worker in workers:
            print(f"--- {worker.name} output (tail) ---\n{tail(worker.output())}", file=sys.stderr)
        return result
    summary = progress.summary or {}
    orders = _orders_seen(tracker, run_id, summary)
    worker_cpu = sum(v for k, v in cpu.used.items() if k.startswith("bench"))
    error = summary_problem(summary, options.customers)
    adds_up = error is None
    if error is not None:
        print(f"  {way}: {error}", file=sys.stderr, flush=True)
    return replace(
        result,
        ok=adds_up,
        error=error,
        wall_s=wall_s,
        api_calls=api_calls,
        calls_by_api=by_api,
        firestore_writes=summary.get("synced"),
        failed_customers=summary.get("failed"),
        measured_customers=summary.get("listed"),
        extra={
            "worker_duration_s": summary.get("durationS"),
            # Reading Alleaves, Alpine IQ and Firestore before the first task was sent.
            "plan_s": summary.get("planS"),
            "listed": summary.get("listed"),
            "unchanged": summary.get("unchanged"),
            # Of the unchanged: left as the memo kept them, their profiles not read.
            "carried": summary.get("carried"),
            "missing": summary.get("missing"),
            "failed_by_reason": summary.get("failedByReason"),
            "orders_processed": summary.get("ordersProcessed"),
            "orders_seen": orders,
            "adds_up": adds_up,
            # CPU seconds during the run: each worker process, the sandbox, the emulator, Redis.
            "cpu_s": cpu.used,
            "worker_cpu_s": round(worker_cpu, 2),
            "worker_cpu_ms_per_customer": round(1000 * worker_cpu / options.customers, 3),
            "worker_cpu_us_per_order": round(1e6 * worker_cpu / orders, 1) if orders else None,
        },
    )


def _orders_seen(tracker: RunTracker, run_id: str, summary: Mapping[str, Any]) -> int | None:
    """The orders the run's plan read (its record), else those its customers counted."""
    with contextlib.suppress(redis.RedisError, KeyError, ValueError):
        return int(tracker.meta(run_id)["ordersSeen"])
    processed = summary.get("ordersProcessed")
    return int(processed) if processed is not None else None


def _cpu_line(result: RunResult) -> str:
    """A worker run's CPU seconds by process, beside its wall time."""
    extra = result.extra
    used = ", ".join(f"{name} {seconds:.1f}" for name, seconds in extra.get("cpu_s", {}).items())
    return (
        f"CPU s ({result.wall_s:.1f} s wall): {used}; worker "
        f"{extra.get('worker_cpu_ms_per_customer')} ms/customer, "
        f"{extra.get('worker_cpu_us_per_order')} us/order ({extra.get('orders_seen')} orders)"
    )


# --- rows --------------------------------------------------------------------------------------


def to_row(options: Options, latency_ms: int, runs: Sequence[RunResult]) -> dict[str, Any]:
    """The median run (by wall time) of ``runs`` as a row, with the derived figures."""
    ok = sorted((run for run in runs if run.ok), key=lambda run: run.wall_s or 0.0)
    chosen = ok[(len(ok) - 1) // 2] if ok else runs[-1]
    concurrency = options.total_concurrency
    row: dict[str, Any] = {
        "way": chosen.way,
        "customers": options.customers,
        "latency_ms": latency_ms,
        "alpine_listing": options.alpine_listing,
        "ok": chosen.ok,
        "wall_s": None if chosen.wall_s is None else round(chosen.wall_s, 3),
        "customers_per_s": None,
        "api_calls": None if chosen.api_calls is None else round(chosen.api_calls),
        "firestore_writes": chosen.firestore_writes,
        "peak_rss_mb": chosen.peak_rss_mb,
        "peak_rss_process_mb": chosen.peak_rss_process_mb,
        "redis_before_mb": chosen.redis_before_mb,
        "redis_peak_mb": chosen.redis_peak_mb,
        "redis_after_mb": chosen.redis_after_mb,
        "bound_s": None,
        "ratio_to_bound": None,
        "calls_per_customer": None,
        "bound_concurrency": concurrency,
        "way_concurrency": 1 if chosen.way == "naive" else concurrency,
        "workers": options.workers if chosen.way.startswith("loyalty_worker") else None,
        "rate_limit": options.rate_limit,
        "extrapolated": chosen.extrapolated,
        "measured_customers": chosen.measured_customers,
        "failed_customers": chosen.failed_customers,
        "runs": len(runs),
        "runs_ok": len(ok),
        "wall_s_runs": [round(run.wall_s, 3) for run in ok if run.wall_s is not None],
        "errors": [run.error for run in runs if run.error],
        "api": _api_stats(chosen),
        # Every run's, not only the median's: a limit must hold in all of them.
        "api_runs": [_api_stats(run) for run in runs if run.sandbox_stats],
        **chosen.extra,
    }
    if chosen.ok and chosen.wall_s and chosen.api_calls is not None:
        row["customers_per_s"] = round(options.customers / chosen.wall_s, 1)
        row["calls_per_customer"] = round(chosen.api_calls / options.customers, 3)
        bound = chosen.api_calls * latency_ms / 1000 / concurrency
        if options.rate_limit is not None and chosen.calls_by_api:
            # Each API allows R requests a second, whatever the concurrency.
            bound = max(bound, max(chosen.calls_by_api.values()) / options.rate_limit)
        row["bound_s"] = round(bound, 3)
        row["ratio_to_bound"] = round(chosen.wall_s / bound, 2) if bound else None
    return row


def _api_stats(run: RunResult) -> dict[str, dict[str, int | None]]:
    return {
        api: {
            key: run.sandbox_stats[api].get(key)
            for key in ("requests", "max_per_second", "rate_limited", "server_errors")
        }
        for api in DATA_APIS
        if api in run.sandbox_stats
    }


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    columns = (
        ("way", "way", 0),
        ("workers", "procs", 0),
        ("customers", "customers", 0),
        ("latency_ms", "lat ms", 0),
        ("wall_s", "wall s", 1),
        ("customers_per_s", "cust/s", 1),
        ("api_calls", "API calls", 0),
        ("firestore_writes", "FS writes", 0),
        ("peak_rss_mb", "peak RSS MB", 1),
        ("peak_rss_process_mb", "per proc", 1),
        ("redis_peak_mb", "Redis peak MB", 1),
        ("bound_s", "bound s", 1),
        ("ratio_to_bound", "x bound", 2),
    )
    table = [[title for _, title, _ in columns] + ["note"]]
    for row in rows:
        cells = [cell(row.get(key), digits) for key, _, digits in columns]
        notes = []
        if row.get("extrapolated"):
            notes.append(f"extrapolated from the first {row['measured_customers']:,}")
        if not row.get("ok"):
            notes.append("FAILED: " + (row["errors"][-1].splitlines()[0] if row["errors"] else "?"))
        elif row["runs_ok"] < row["runs"]:
            notes.append(f"{row['runs'] - row['runs_ok']} of {row['runs']} runs failed")
        if row.get("failed_customers"):
            notes.append(f"{row['failed_customers']:,} customers failed")
        table.append([*cells, "; ".join(notes)])
    return text_table(table, left={0, len(table[0]) - 1})


# The goals (1,000 customers at 50 ms, the documented listing; memory at any size).
GOAL_VS_NAIVE = 20.0
GOAL_VS_ASYNCIO = 1.2
GOAL_RATIO_TO_BOUND = 2.5
GOAL_RERUN_SPEEDUP = 3.0
GOAL_RSS_PROCESS_MB = 300.0
GOAL_REDIS_PEAK_MB = 200.0


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def format_checks(options: Options, rows: Sequence[dict[str, Any]]) -> str:
    """The issue's goals, checked: speed, counts, memory, the reruns and the rate limit."""
    lines = []
    for latency in options.latencies:
        first = _find(rows, "loyalty_worker", latency, options.worker_counts[0])
        if not (first and first["ok"]):
            continue
        wall = first["wall_s"]
        # The time goals are set at 1,000 customers and 50 ms on the documented listing (a
        # look-up per customer); elsewhere the ratios are shown.
        goal = (
            options.customers == 1000
            and latency == 50
            and options.rate_limit is None
            and not options.alpine_balances_in_listing
        )
        ratio = first["ratio_to_bound"]
        speed = [f"loyalty_worker at {latency} ms: {wall:.2f} s, {ratio}x the bound"]
        if goal:
            speed[0] += (
                f" (goal <= {GOAL_RATIO_TO_BOUND:g}x: "
                f"{_verdict(ratio is not None and ratio <= GOAL_RATIO_TO_BOUND)})"
            )
        for other, target, faster in (
            ("naive", GOAL_VS_NAIVE, True),
            ("asyncio", GOAL_VS_ASYNCIO, False),
        ):
            row = _find(rows, other, latency, None)
            if not (row and row["ok"]):
                continue
            ratio = row["wall_s"] / wall
            if faster:
                text = f"{ratio:.1f}x faster than {other}"
                met = ratio >= target
                wanted = f">= {target:g}x"
            else:
                text = f"{1 / ratio:.2f}x {other}'s time"
                met = 1 / ratio <= target
                wanted = f"<= {target:g}x"
            speed.append(text + (f" (goal {wanted}: {_verdict(met)})" if goal else ""))
        lines.append(", ".join(speed))
        for way, kind in ((RERUN, "full"), (RERUN_SINCE_LAST, "since last")):
            rerun = _find(rows, way, latency, options.worker_counts[0])
            if not (rerun and rerun["ok"]):
                continue
            speedup = first["wall_s"] / rerun["wall_s"]
            writes = rerun["firestore_writes"]
            verdict = _verdict(writes == 0 and speedup >= GOAL_RERUN_SPEEDUP)
            lines.append(
                f"rerun ({kind}) at {latency} ms: {writes} Firestore writes (goal 0), "
                f"{speedup:.2f}x faster than the first run (goal >= {GOAL_RERUN_SPEEDUP:g}x): "
                f"{verdict}"
            )
        if len(options.worker_counts) > 1:
            scale = [
                (count, row)
                for count in options.worker_counts
                if (row := _find(rows, "loyalty_worker", latency, count)) and row["ok"]
            ]
            if scale:
                base = scale[0][1]["customers_per_s"]
                lines.append(
                    f"scale-out at {latency} ms, first run: "
                    + ", ".join(
                        f"{count} process(es) {row['customers_per_s']:,.1f} customers/s "
                        f"({row['wall_s']:.1f} s, {row['customers_per_s'] / base:.2f}x)"
                        for count, row in scale
                    )
                )
    for row in rows:
        if row["ok"] and row["way"].startswith("loyalty_worker"):
            lines.append(_counts_and_memory(row))
    if options.rate_limit is not None:
        lines.append(f"rate limit {options.rate_limit}/s per API ({options.workers} workers):")
        for row in rows:
            runs = row["api_runs"]
            if not runs:
                continue
            figures = ", ".join(
                f"{api} max {max(run[api]['max_per_second'] or 0 for run in runs)}/s, "
                f"{sum(run[api]['rate_limited'] or 0 for run in runs)} rate limited"
                for api in DATA_APIS
            )
            over = sum(
                any((run[api]["max_per_second"] or 0) > options.rate_limit for api in DATA_APIS)
                for run in runs
            )
            status = "completed" if row["ok"] and row["runs_ok"] == row["runs"] else "FAILED"
            verdict = f"over the limit in {over} of them" if over else "within the limit"
            lines.append(
                f"  {row['way']} at {row['latency_ms']} ms, {len(runs)} run(s): {figures}: "
                f"{verdict}; {status}"
            )
    return "\n".join(lines)


def _counts_and_memory(row: dict[str, Any]) -> str:
    """A worker run's summary adds up to the generated org, within the memory goals."""
    listed, synced, unchanged = row["listed"], row["firestore_writes"], row["unchanged"]
    failed, missing = row["failed_customers"], row["missing"]
    adds_up = listed == row["customers"] and missing == 0 and synced + unchanged + failed == listed
    rss, redis_peak = row["peak_rss_process_mb"], row["redis_peak_mb"]
    memory_ok = (rss or 0) <= GOAL_RSS_PROCESS_MB and (redis_peak or 0) <= GOAL_REDIS_PEAK_MB
    return (
        f"{row['way']} at {row['latency_ms']} ms: listed {listed:,} of {row['customers']:,} = "
        f"{synced:,} synced + {unchanged:,} unchanged ({row.get('carried') or 0:,} carried over) "
        f"+ {failed:,} failed, {missing} missing: "
        f"{'add up' if adds_up else 'do NOT add up'}; peak RSS {rss} MB per worker process "
        f"(goal <= {GOAL_RSS_PROCESS_MB:g}), Redis peak {redis_peak} MB (goal <= "
        f"{GOAL_REDIS_PEAK_MB:g}): {_verdict(memory_ok)}"
    )


def _find(
    rows: Sequence[dict[str, Any]], way: str, latency: int, workers: int | None
) -> dict[str, Any] | None:
    """The row of ``way`` at ``latency`` (the worker's: with ``workers`` processes)."""
    return next(
        (
            r
            for r in rows
            if r["way"] == way and r["latency_ms"] == latency and r["workers"] == workers
        ),
        None,
    )


def format_cpu_table(rows: Sequence[dict[str, Any]]) -> str:
    """CPU seconds of each process during the worker runs, beside the wall time."""
    worker_rows = [r for r in rows if r.get("cpu_s") and r["ok"]]
    if not worker_rows:
        return ""
    names = sorted({name for r in worker_rows for name in r["cpu_s"]})
    table = [
        ["way", "listing", "procs", "lat ms", "wall s", *names, "ms/customer", "us/order"],
    ]
    for r in worker_rows:
        table.append(
            [
                r["way"],
                r["alpine_listing"],
                str(r["workers"]),
                str(r["latency_ms"]),
                cell(r["wall_s"]),
                *(cell(r["cpu_s"].get(name)) for name in names),
                cell(r.get("worker_cpu_ms_per_customer"), 2),
                cell(r.get("worker_cpu_us_per_order")),
            ]
        )
    return text_table(table, left={0, 1}, rule=False)


def header(options: Options, redis_client: redis.Redis, source: str) -> str:
    ways = ",".join(options.ways)
    return "\n".join(
        [
            f"loyalty_worker sync benchmark, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            machine_line(redis_client, options.redis_url),
            f"loyalty_worker source: {source}",
            f"org {ORG_ID}: {options.customers:,} generated customers (seed {SEED}); latencies "
            f"{','.join(map(str, options.latencies))} ms; {options.repeat} run(s) each, median "
            f"shown; ways {ways}",
            f"concurrency: {'/'.join(map(str, options.worker_counts))} worker process(es) x "
            f"{options.concurrency} threads (asyncio: {options.total_concurrency} slots; naive: "
            "1); plans fetch with the "
            "worker's LOYALTY_ORDER_FETCH_PARALLELISM per stream"
            + (f"; rate limit {options.rate_limit}/s per API" if options.rate_limit else ""),
            "Alpine IQ contacts listing: "
            + " then ".join(
                replace(options, alpine_balances_in_listing=mode).alpine_listing
                for mode in options.alpine_modes
            ),
        ]
    )


# --- the benchmark -----------------------------------------------------------------------------


def _seed_data(customers: int) -> dict[str, Any]:
    """org-1's settings, credentials and Markitbot profiles, as the sandbox generates them.

    Generated here rather than read from ``/sandbox/dataset``: at 100,000 customers the served
    dataset is hundreds of MB of JSON, and these parts do not depend on the day it was made.
    """
    return seeded_parts([generate_dataset(customers, SEED)["orgs"][0]])


def _describe(result: RunResult, latency_ms: int, number: int, repeat: int) -> str:
    head = f"  {result.way} @ {latency_ms} ms, run {number}/{repeat}:"
    if not result.ok:
        return f"{head} FAILED: {result.error}"
    return (
        f"{head} {result.wall_s:.1f} s, {result.api_calls:,.0f} API calls, "
        f"{result.firestore_writes} writes, peak RSS {result.peak_rss_mb} MB"
        + (" (extrapolated)" if result.extrapolated else "")
    )


def run_latency(bench: Bench, rows: list[dict[str, Any]]) -> None:
    """Every chosen way at one latency, ``repeat`` times; one row per way appended (the worker's
    once per count of worker processes)."""
    for way in bench.options.ways:
        if way != "loyalty_worker":
            _run_way(bench, way, rows)
            continue
        for count in bench.options.worker_counts:
            _run_way(replace(bench, options=replace(bench.options, workers=count)), way, rows)


def _run_way(bench: Bench, way: str, rows: list[dict[str, Any]]) -> None:
    options = bench.options
    # By way: the worker's runs bring their reruns along.
    groups: dict[str, list[RunResult]] = {}
    try:
        for number in range(1, options.repeat + 1):
            results = (
                run_worker_runs(bench) if way == "loyalty_worker" else [run_inprocess(bench, way)]
            )
            for result in results:
                groups.setdefault(result.way, []).append(result)
                print(_describe(result, bench.latency_ms, number, options.repeat), flush=True)
                if result.ok and result.way.startswith("loyalty_worker"):
                    print(f"    {_cpu_line(result)}", flush=True)
    finally:
        # Also on Ctrl-C: the runs already measured are kept (``runs`` in the row says how
        # many there were).
        for group in groups.values():
            rows.append({**to_row(options, bench.latency_ms, group), "source": bench.source})
        write_rows(options.out, rows)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    if options.rate_limit is None:
        # A limit left in the shell would throttle the worker and no other way.
        for name in RATE_LIMIT_VARS:
            os.environ.pop(name, None)
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    redis_child: devstack.ChildProcess | None = None
    interrupted = False
    # SIGTERM and SIGHUP unwind like Ctrl-C (devstack.Stopped is a KeyboardInterrupt), so every
    # ``finally`` stops the children it started; what is left is stopped on the way out.
    with devstack.supervise("bench"):
        try:
            redis_url, redis_child = devstack.ensure_redis(options.redis_url)
            if redis_url != options.redis_url:
                options = replace(options, redis_url=redis_url)
            redis_client = redis.Redis.from_url(redis_url)
            source = source_version()
            print(header(options, redis_client, source), flush=True)
            seed_data = _seed_data(options.customers)
            celery = Celery("bench", broker=redis_url, backend=redis_url)
            for shortcut in options.alpine_modes:
                mode = replace(options, alpine_balances_in_listing=shortcut)
                for latency in options.latencies:
                    print(
                        f"\nAlpine IQ listing {mode.alpine_listing}, latency {latency} ms: "
                        "starting the sandbox",
                        flush=True,
                    )
                    sandbox_args = [
                        *("--customers", str(options.customers), "--seed", str(SEED)),
                        *("--latency-ms", str(latency)),
                    ]
                    if options.rate_limit is not None:
                        sandbox_args += ["--rate-limit", str(options.rate_limit)]
                    if shortcut:
                        sandbox_args.append("--alpine-balances-in-listing")  # the shortcut
                    sandbox = devstack.start_sandbox(
                        *sandbox_args, timeout_s=60.0 + options.customers / 500
                    )
                    with sandbox:
                        run_latency(
                            Bench(mode, latency, redis_client, sandbox, seed_data, celery, source),
                            rows,
                        )
            celery.close()
        except KeyboardInterrupt:
            interrupted = True
            print("\ninterrupted: stopping the children; partial results follow", file=sys.stderr)
        except devstack.StartupError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 2
        finally:
            if redis_child is not None:
                redis_child.stop()
    elapsed = time.monotonic() - started
    for shortcut in options.alpine_modes:
        mode = replace(options, alpine_balances_in_listing=shortcut)
        mode_rows = [row for row in rows if row["alpine_listing"] == mode.alpine_listing]
        if not mode_rows:
            continue
        print(f"\nAlpine IQ contacts listing: {mode.alpine_listing}")
        print(format_table(mode_rows))
        checks = format_checks(mode, mode_rows)
        if checks:
            print(f"\n{checks}")
    cpu_table = format_cpu_table(rows)
    if cpu_table:
        print(f"\nCPU seconds during each worker run (median run)\n{cpu_table}")
    broken = [row for row in rows if not row["ok"] or row["runs_ok"] < row["runs"]]
    for row in broken:
        first_error = (row["errors"] or ["?"])[-1].splitlines()[0]
        print(
            f"FAILED: {row['way']} ({row['alpine_listing']}, {row['latency_ms']} ms, "
            f"{row['runs'] - row['runs_ok']} of {row['runs']} runs): {first_error}",
            file=sys.stderr,
        )
    print(
        "\nbound = API calls x latency / total concurrency: the calls' own latency with no slot "
        "idle (a plan fetching wider than the\ntotal concurrency can beat it); x bound = wall / "
        "bound. Redis memory is the whole server's used_memory."
    )
    where = f"{options.out} ({len(rows)} rows)" if rows else "none"
    print(f"results: {where}; benchmark wall time {elapsed / 60:.1f} min")
    if interrupted:
        return 130
    return 0 if rows and not broken else 1


if __name__ == "__main__":
    sys.exit(main())
