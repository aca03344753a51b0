"""The 02:00 wave: many orgs of long-tailed sizes started in one Beat tick, on one set of workers.

``make bench-fleet`` (``.venv/bin/python benchmarks/bench_fleet.py``) generates a fleet (by
default 1 × 50,000, 4 × 10,000, 15 × 2,000 and 30 × 300 customers; ``--quick``: 1 × 5,000,
2 × 1,000 and 5 × 200; ``--sizes`` any other), serves it from the sandbox at ``--latency-ms``
(50) with each org's requests counted, seeds a fresh Firestore project on the emulator, and
starts ``--workers`` (2) Celery worker processes × ``--concurrency`` (16) threads on a flushed
Redis database. Then every org's run starts at once, as the nightly tick starts the orgs that
are due: each run recorded ``queued`` and its ``loyalty.sync_org`` sent through
``enqueue_org_run`` and the task publisher, one org after the other, nothing in between. While
the wave runs, ``--probes`` (20) single-customer syncs of the smallest orgs are sent the way
another service sends one (``send_task("loyalty.sync_customer", args=[org, customer])``), spread
over the wave by its progress (probe k once k/n of the wave's customers are done). Beat does
not run (it would send the nightly tick too): the benchmark sends Beat's watchdog entry on its
schedule instead, so a run that lost its work is recovered as in production (``--no-watchdog``:
it waits until the timeout).

Per org: its completion time (from the wave's start to the moment its summary was written), its
work W (the Alleaves and Alpine IQ requests the sandbox counted for it, × the latency), its
fair-share bound Σ_j min(W_j, W_i) ÷ capacity (capacity = workers × concurrency: when it would
finish if the slots were shared equally among the orgs still going) and its slowdown =
completion ÷ bound. For the wave: the makespan against the work-conserving bound ΣW ÷ capacity,
Jain's fairness index over the slowdowns ((Σx)² ÷ (n·Σx²): 1 when all are equal, 1/n when one
org has it all), and the probes' latency from send to result (median and p95, nearest rank).
Every run's summary must add up and every profile must hold what ``tests/reference.py`` (the
rules read independently of loyalty_worker, as the end-to-end tests check them) expects; a run,
a profile or a probe that does not makes the benchmark fail (exit 1).

``--workers-from PATH`` runs the workers from another checkout of the project (an older commit:
``git worktree add /tmp/base a5e96fa``), on this interpreter and its packages; the sandbox, the
seeding, the wave's sending and the checks stay this checkout's, so one session measures the
same wave on both versions.

Results: a table on stdout and JSON rows in ``--out`` (one per org, then the wave's).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import groupby
from pathlib import Path
from types import ModuleType
from typing import Any

import redis
from celery import Celery
from google.cloud import firestore
from worker_stack import (
    CHECKOUT,
    DATA_APIS,
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

import celeryconfig
from loyalty_worker import devstack, names
from loyalty_worker.adapters.firestore import FirestoreProfileStore
from loyalty_worker.adapters.publisher import TaskPublisher, broker_app
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.cli.arguments import org_sizes
from loyalty_worker.domain.run import RunStatus
from loyalty_worker.firestore_emulator import EmulatorProcess, EmulatorUnavailable, start_emulator
from loyalty_worker.sandbox.data import generate_sized_dataset
from loyalty_worker.services.run.triggers import enqueue_org_run

DEFAULT_SIZES = "1x50000,4x10000,15x2000,30x300"
QUICK_SIZES = "1x5000,2x1000,5x200"
SEED = 1
# Flushed before the wave: apart from the other benchmarks' (11-13), tests' (14), demo's (15).
BENCH_REDIS_DB = 10
# How long a tick's run may wait for a worker, as the nightly tick sends it (tasks.py's
# NIGHTLY_EXPIRES_S): a run started later than that is not the night's.
TICK_EXPIRES_S = 3600
# The runs' progress is read this often; their completion times come from their summaries'
# finishedAt, so this sets only when a probe falls due.
PROGRESS_EVERY_S = 0.25
# Outstanding probes are looked for this often: their latency is measured to this.
PROBE_POLL_S = 0.02
# Beat's entry that recovers runs which lost their work (celeryconfig.beat_schedule).
WATCHDOG_ENTRY = "loyalty-watchdog"


# --- options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...]
    latency_ms: int
    workers: int
    concurrency: int
    probes: int
    out: Path
    redis_url: str
    timeout_s: float | None
    workers_from: Path | None
    watchdog: bool = True
    # Each org's start, in seconds after the wave's (by org number; None: never started, its
    # customers only probed). Empty: every org at once, as the nightly tick starts them.
    offsets: tuple[float | None, ...] = ()

    def offset(self, org_id: str) -> float | None:
        """When ``org-N``'s run starts, after the wave's start (None: it does not run)."""
        if not self.offsets:
            return 0.0
        return self.offsets[int(org_id.rpartition("-")[2]) - 1]

    @property
    def capacity(self) -> int:
        """Slots of all worker processes together: the bounds' total concurrency."""
        return self.workers * self.concurrency


def sizes_text(sizes: Sequence[int]) -> str:
    """Sizes as ``--org-sizes`` reads them, runs of one size as ``COUNTxSIZE``."""
    return ",".join(
        f"{len(run)}x{size}" if len(run := list(group)) > 1 else str(size)
        for size, group in groupby(sizes)
    )


def _offsets(text: str) -> tuple[float | None, ...]:
    """``0,10,-``: org-1 at once, org-2 10 s later, org-3 never started."""
    try:
        offsets = tuple(None if part == "-" else float(part) for part in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError("seconds or '-', comma-separated") from exc
    if any(offset is not None and offset < 0 for offset in offsets):
        raise argparse.ArgumentTypeError("offsets must be >= 0")
    return offsets


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="Benchmark the 02:00 wave: every org's run started in one tick, on one set "
        "of workers.",
    )
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument(
        "--sizes",
        type=org_sizes,
        help=f"each org's customers, COUNTxSIZE repeating a size (default {DEFAULT_SIZES})",
    )
    sizes.add_argument(
        "--quick", action="store_true", help=f"a first look: the sizes {QUICK_SIZES}"
    )
    parser.add_argument("--latency-ms", type=_positive, default=50, help="the sandbox's latency")
    parser.add_argument("--workers", type=_positive, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=_positive, default=16, help="threads per worker")
    parser.add_argument(
        "--probes", type=int, default=20, help="single-customer syncs sent during the wave"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-fleet-results.json"))
    parser.add_argument(
        "--redis-url",
        default=bench_redis_url(BENCH_REDIS_DB),
        help="a Redis database the benchmark may flush (default: LOYALTY_REDIS_URL's server, "
        f"database {BENCH_REDIS_DB})",
    )
    parser.add_argument(
        "--timeout", type=float, help="seconds the wave may take (default: from the workload)"
    )
    parser.add_argument(
        "--workers-from",
        type=Path,
        metavar="PATH",
        help="run the workers from this checkout of the project (e.g. an older commit's "
        "worktree); everything else stays this checkout's",
    )
    parser.add_argument(
        "--offsets",
        type=_offsets,
        default=(),
        help="each org's start after the wave's, by org number: '0,10' starts org-2 10 s after "
        "org-1; '-' never starts an org (its customers are only probed). Default: all at once",
    )
    parser.add_argument(
        "--watchdog",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send Beat's watchdog entry during the wave as Beat would, so a run that lost its "
        "work is recovered as in production (--no-watchdog: such a run waits until the timeout)",
    )
    args = parser.parse_args(argv)
    if args.workers_from is not None:
        args.workers_from = args.workers_from.resolve()
        if not (args.workers_from / "loyalty_worker" / "celery_app.py").is_file():
            parser.error(f"--workers-from: {args.workers_from} is no checkout of this project")
    if args.probes < 0:
        parser.error("--probes: at least 0")
    chosen = args.sizes or org_sizes(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if args.offsets and len(args.offsets) != len(chosen):
        parser.error(f"--offsets: one per org ({len(chosen)})")
    return Options(
        sizes=chosen,
        latency_ms=args.latency_ms,
        workers=args.workers,
        concurrency=args.concurrency,
        probes=args.probes,
        out=args.out,
        redis_url=args.redis_url,
        timeout_s=args.timeout,
        workers_from=args.workers_from,
        watchdog=args.watchdog,
        offsets=args.offsets,
    )


# --- the fleet ---------------------------------------------------------------------------------


@dataclass
class Fleet:
    """What the benchmark keeps of the generated fleet (its orders are not kept): each org's
    size, what Firestore is seeded with, the profiles the rules give, the probes' customers."""

    sizes: dict[str, int]
    seed_data: dict[str, Any]
    expected: dict[str, dict[int, dict[str, Any]]]
    probes: list[tuple[str, int]]


def _reference() -> ModuleType:
    """``tests/reference.py``: LOYALTY_RULES.md read independently of loyalty_worker, the values
    the end-to-end tests check runs against (it imports nothing of the project)."""
    if str(CHECKOUT) not in sys.path:
        sys.path.insert(0, str(CHECKOUT))
    return importlib.import_module("tests.reference")


def prepare_fleet(sizes: Sequence[int], probes: int) -> Fleet:
    """The fleet the sandbox serves (same sizes, seed and day), reduced to what is checked.

    Generated here rather than read from ``/sandbox/dataset``: at 100,000 customers the served
    dataset is hundreds of MB of JSON.
    """
    orgs = generate_sized_dataset(sizes, SEED)["orgs"]
    reference = _reference()
    expected = {org["orgId"]: reference.expected_profiles(org) for org in orgs}
    smallest = min(sizes)
    small = [org["orgId"] for org in orgs if len(org["customers"]) == smallest]
    chosen = []
    for number in range(probes):
        org_id = small[number % len(small)]
        ids = sorted(expected[org_id])
        chosen.append((org_id, ids[(number // len(small)) * 7 % len(ids)]))
    return Fleet(
        sizes={org["orgId"]: len(org["customers"]) for org in orgs},
        seed_data=seeded_parts(orgs),
        expected=expected,
        probes=chosen,
    )


# --- the wave ----------------------------------------------------------------------------------


@dataclass
class OrgRun:
    """One org's run of the wave."""

    org_id: str
    run_id: str
    customers: int
    sent_s: float  # after the wave's start
    done: int = 0
    finished_s: float | None = None  # its summary written, after the wave's start
    summary: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.finished_s is not None or self.error is not None


@dataclass
class Probe:
    """A single-customer sync sent during the wave, as another service sends one."""

    org_id: str
    customer_id: int
    due_fraction: float  # sent once this share of the wave's customers is done
    task_id: str | None = None
    sent_s: float | None = None  # after the wave's start
    sent_at: float = 0.0  # monotonic
    runs_going: int = 0  # runs of the wave not yet ended when it was sent
    latency_s: float | None = None
    status: str | None = None  # the sync's own (synced, unchanged, failed)
    error: str | None = None


@dataclass
class Wave:
    """A wave's runs and probes, and how it went."""

    runs: list[OrgRun]
    probes: list[Probe]
    started_at: float  # wall clock
    # Runs still to start: (seconds after the wave's start, org).
    pending: list[tuple[float, str]] = field(default_factory=list)
    # The probes' latencies on the idle stack, before the wave (the same customers, one by one).
    idle_latencies: list[float] = field(default_factory=list)
    timed_out: bool = False
    # Beat's watchdog sends during the wave, and the runs they recovered.
    watchdog_tasks: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    calls_by_org: dict[str, dict[str, int]] = field(default_factory=dict)
    sandbox_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_rss_process_mb: float | None = None
    redis_peak_mb: float | None = None


@dataclass
class Stack:
    """The running stack a wave is sent to."""

    options: Options
    redis: redis.Redis
    sandbox: devstack.Sandbox
    celery: Celery
    workers: list[devstack.ChildProcess]
    trees: dict[str, int]


def timeout_s(options: Options) -> float:
    """A generous bound on the wave: past it, the runs not ended are reported as failed.

    Expected: a look-up for most customers plus a few hundred pages and history windows per org
    at the sandbox's latency over the slots, and 5 ms of Firestore and CPU per customer on a
    small machine (the wave of 129,000 took 2.6 ms a customer on 2 cores); three times that.
    """
    if options.timeout_s is not None:
        return options.timeout_s
    customers = sum(options.sizes)
    calls = customers * 1.1 + 300 * len(options.sizes)
    expected = calls * options.latency_ms / 1000 / options.capacity + customers * 0.005
    return 300.0 + 3 * expected


def start_wave(
    fleet: Fleet, options: Options, tracker: RunTracker, publisher: TaskPublisher
) -> Wave:
    """Every org's run due at once, started as the nightly tick starts the orgs due: in the
    order it lists them (sorted ids), each recorded ``queued`` then sent, one after the other;
    the others (``--offsets``) wait in ``Wave.pending``."""
    count = len(fleet.probes)
    probes = [
        Probe(org_id, customer_id, number / count)
        for number, (org_id, customer_id) in enumerate(fleet.probes)
    ]
    wave = Wave([], probes, time.time())
    for org_id in sorted(fleet.sizes):
        offset = options.offset(org_id)
        if offset == 0:
            _start_run(wave, fleet, org_id, tracker, publisher)
        elif offset is not None:
            wave.pending.append((offset, org_id))
    return wave


def _start_run(
    wave: Wave, fleet: Fleet, org_id: str, tracker: RunTracker, publisher: TaskPublisher
) -> None:
    run_id = names.new_run_id(org_id)
    enqueue_org_run(org_id, run_id, expires_s=TICK_EXPIRES_S, runs=tracker, enqueuer=publisher)
    wave.runs.append(OrgRun(org_id, run_id, fleet.sizes[org_id], time.time() - wave.started_at))


def idle_probe_latencies(stack: Stack, fleet: Fleet) -> list[float]:
    """The probes' customers synced one by one on the idle stack, sent the same two ways: the
    latency to compare with."""
    latencies = []
    broker = broker_app(stack.options.redis_url)
    publisher = TaskPublisher(broker)
    for number, (org_id, customer_id) in enumerate(fleet.probes):
        sent = time.monotonic()
        task_id = _send_probe(stack, publisher, number, Probe(org_id, customer_id, 0.0))
        stack.celery.AsyncResult(task_id).get(timeout=120)
        latencies.append(time.monotonic() - sent)
    broker.close()
    return latencies


def watchdog_entry() -> tuple[str, float, dict[str, Any]]:
    """Beat's watchdog entry as this checkout's ``celeryconfig`` schedules it: its task, its
    period (``LOYALTY_REDISPATCH_S`` / 2) and its options. No Beat runs during the wave (it
    would also send the nightly tick); the benchmark sends this one entry as Beat would."""
    entry: dict[str, Any] = celeryconfig.beat_schedule[WATCHDOG_ENTRY]
    return str(entry["task"]), float(entry["schedule"]), dict(entry.get("options", {}))


def _send_watchdog(stack: Stack, wave: Wave, task: str, options: Mapping[str, Any]) -> None:
    result = stack.celery.send_task(task, queue=names.TASK_ROUTES[task]["queue"], **options)
    wave.watchdog_tasks.append(str(result.id))


def _watchdog_recoveries(stack: Stack, wave: Wave) -> None:
    """The runs the watchdog's answered sends recovered (their planner or chunks sent again)."""
    for task_id in wave.watchdog_tasks:
        result = stack.celery.AsyncResult(task_id)
        if result.state == "SUCCESS" and isinstance(result.result, dict):
            wave.recovered += list(result.result.get("recovered", []))


def _poll_runs(stack: Stack, tracker: RunTracker, wave: Wave) -> None:
    """Each run's progress; an ended run's completion time (its summary's ``finishedAt``)."""
    for run in wave.runs:
        if run.ended:
            continue
        progress = tracker.progress(run.run_id)
        run.done = progress.done
        if progress.summary is not None:
            finished = float(tracker.meta(run.run_id).get("finishedAt", time.time()))
            run.finished_s = finished - wave.started_at
            run.summary = dict(progress.summary)
            if progress.status != RunStatus.COMPLETED:
                run.error = f"run ended {progress.status}: {progress.error}"
        elif RunStatus.of(progress.status).closed:
            run.error = f"run ended {progress.status} without a summary: {progress.error}"
    dead = [worker.name for worker in stack.workers if not worker.running]
    if dead:
        for run in wave.runs:
            if not run.ended:
                run.error = f"worker process exited: {', '.join(dead)}"


def _send_probe(stack: Stack, publisher: TaskPublisher, number: int, probe: Probe) -> str:
    """A probe's sync, sent the two ways people's syncs come: every other one as Sync Now, a
    webhook and the CLI send it (the publisher, to ``loyalty.customers``), the others as
    another service does with a plain client (by name, no queue: Celery's default queue)."""
    if number % 2 == 0:
        return publisher.sync_customer(probe.org_id, probe.customer_id)
    result = stack.celery.send_task(names.SYNC_CUSTOMER, args=[probe.org_id, probe.customer_id])
    return str(result.id)


def _send_probes(stack: Stack, publisher: TaskPublisher, wave: Wave, done_fraction: float) -> None:
    """The probes now due: their share of the wave done, or the wave over."""
    going = sum(not run.ended for run in wave.runs)
    for number, probe in enumerate(wave.probes):
        if probe.task_id is None and (done_fraction >= probe.due_fraction or not going):
            probe.sent_at = time.monotonic()
            probe.sent_s = time.time() - wave.started_at
            probe.runs_going = going
            probe.task_id = _send_probe(stack, publisher, number, probe)


def _poll_probes(stack: Stack, wave: Wave) -> None:
    for probe in wave.probes:
        if probe.task_id is None or probe.latency_s is not None or probe.error is not None:
            continue
        result = stack.celery.AsyncResult(probe.task_id)
        if result.state == "SUCCESS":
            probe.latency_s = time.monotonic() - probe.sent_at
            answer = result.result if isinstance(result.result, dict) else {}
            probe.status = str(answer.get("status"))
            if answer.get("success") is False:
                probe.error = f"sync {probe.status}: {answer.get('reason')}"
        elif result.state == "FAILURE":
            probe.latency_s = time.monotonic() - probe.sent_at
            probe.error = f"task failed: {result.result!r}"


def run_wave(stack: Stack, fleet: Fleet) -> Wave:
    """Start the wave, send its probes as it progresses, and wait until every run and probe
    has ended (or the timeout has passed); the wave with its figures."""
    tracker = RunTracker(stack.redis)
    broker = broker_app(stack.options.redis_url)
    limit_s = timeout_s(stack.options)
    total = sum(
        size for org_id, size in fleet.sizes.items() if stack.options.offset(org_id) is not None
    )
    stack.sandbox.reset_stats()
    tree = TreeRss([worker.process.pid for worker in stack.workers])
    with (
        CpuMeter(stack.trees, stack.redis) as cpu,
        PeakSampler(tree),
        PeakSampler(lambda: redis_used_memory(stack.redis)) as memory,
    ):
        publisher = TaskPublisher(broker)
        wave = start_wave(fleet, stack.options, tracker, publisher)
        started = time.monotonic()
        next_progress = started
        watchdog, every_s, watchdog_options = watchdog_entry()
        next_watchdog = started + every_s if stack.options.watchdog else math.inf
        while True:
            now = time.monotonic()
            if now >= next_progress:
                _poll_runs(stack, tracker, wave)
                next_progress = now + PROGRESS_EVERY_S
            for due in [entry for entry in wave.pending if now - started >= entry[0]]:
                wave.pending.remove(due)
                _start_run(wave, fleet, due[1], tracker, publisher)
            if now >= next_watchdog:
                _send_watchdog(stack, wave, watchdog, watchdog_options)
                next_watchdog += every_s
            _send_probes(stack, publisher, wave, sum(run.done for run in wave.runs) / total)
            _poll_probes(stack, wave)
            probes_over = all(p.latency_s is not None or p.error for p in wave.probes)
            if all(run.ended for run in wave.runs) and probes_over and not wave.pending:
                break
            if now - started > limit_s:
                wave.timed_out = True
                for run in wave.runs:
                    if not run.ended:
                        run.error = f"no summary within {limit_s:.0f} s ({run.done} done)"
                for probe in wave.probes:
                    if probe.latency_s is None and probe.error is None:
                        probe.error = f"no result within {limit_s:.0f} s"
                break
            time.sleep(PROBE_POLL_S)
    broker.close()
    _watchdog_recoveries(stack, wave)
    wave.calls_by_org = stack.sandbox.calls_by_org()
    wave.sandbox_stats = stack.sandbox.stats()
    wave.cpu_s = cpu.used
    wave.peak_rss_process_mb = mb(tree.peak_process)
    wave.redis_peak_mb = mb(memory.peak)
    return wave


# --- the checks --------------------------------------------------------------------------------


def check_profiles(
    store: FirestoreProfileStore,
    org_id: str,
    expected: Mapping[int, Mapping[str, Any]],
    seeded: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Every expected profile as the rules give it, Markitbot's own fields untouched; what is
    wrong (at most ten examples, then a count)."""
    keys = _reference().LOYALTY_KEYS
    stored = store.get_profiles(org_id, sorted(expected))
    own = {profile["customerId"]: profile for profile in seeded}
    wrong = []
    for customer_id, want in expected.items():
        got: Mapping[str, Any] | None = stored.get(customer_id)
        if got is None:
            wrong.append(f"{customer_id}: no profile")
            continue
        fields = {key: got.get(key) for key in keys}
        if fields != dict(want):
            differ = sorted(key for key in keys if fields[key] != want.get(key))
            wrong.append(f"{customer_id}: {', '.join(differ)} differ")
        if got.get("orgId") != org_id or got.get("alleavesCustomerId") != customer_id:
            wrong.append(f"{customer_id}: orgId/alleavesCustomerId wrong")
        for name, value in own.get(customer_id, {}).items():
            if name != "customerId" and got.get(name) != value:
                wrong.append(f"{customer_id}: Markitbot's {name} changed")
    if len(wrong) > 10:
        wrong = [*wrong[:10], f"... {len(wrong) - 10} more"]
    return wrong


@dataclass
class OrgCheck:
    """What is wrong with an org's run (nothing: its run and profiles are right), and how many
    of its profiles were compared with the rules."""

    problems: list[str]
    profiles_checked: int = 0


def check_wave(wave: Wave, fleet: Fleet, project: str) -> dict[str, OrgCheck]:
    """Per org: a run that did not complete, a summary that does not add up, a profile not as
    the rules give it."""
    checks: dict[str, OrgCheck] = {}
    seeded = {org["orgId"]: org["profiles"] for org in fleet.seed_data["orgs"]}
    with contextlib.closing(firestore.Client(project=project)) as client:
        store = FirestoreProfileStore(client, timeout_s=60.0)
        for run in wave.runs:
            check = checks[run.org_id] = OrgCheck([run.error] if run.error else [])
            if run.summary is None:
                continue
            problem = summary_problem(run.summary, run.customers)
            check.problems += [problem] if problem else []
            expected = fleet.expected[run.org_id]
            check.problems += check_profiles(store, run.org_id, expected, seeded[run.org_id])
            check.profiles_checked = len(expected)
    return checks


# --- figures -----------------------------------------------------------------------------------


def fair_share_bounds(work: Mapping[str, float], capacity: int) -> dict[str, float]:
    """Each org's fair-share bound Σ_j min(W_j, W_i) ÷ capacity: when it ends if the slots are
    shared equally among the orgs still going (processor sharing, no slot idle)."""
    return {org: sum(min(w, mine) for w in work.values()) / capacity for org, mine in work.items()}


def jain_index(values: Sequence[float]) -> float | None:
    """Jain's fairness index (Σx)² ÷ (n·Σx²): 1 when all are equal, 1/n when one has it all."""
    squares = sum(x * x for x in values)
    return sum(values) ** 2 / (len(values) * squares) if values and squares else None


def nearest_rank(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``share`` of them at or
    below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else None


def org_rows(
    wave: Wave, options: Options, checks: Mapping[str, OrgCheck], source: str
) -> list[dict[str, Any]]:
    """One row per org: its work, bound, completion and slowdown, its summary and checks."""
    latency_s = options.latency_ms / 1000
    calls = {
        run.org_id: sum(wave.calls_by_org.get(run.org_id, {}).get(api, 0) for api in DATA_APIS)
        for run in wave.runs
    }
    work = {org: count * latency_s for org, count in calls.items()}
    bounds = fair_share_bounds(work, options.capacity)
    rows = []
    for run in wave.runs:
        summary = run.summary or {}
        completion = run.finished_s if run.error is None else None
        bound = bounds[run.org_id]
        rows.append(
            {
                "kind": "org",
                "org": run.org_id,
                "customers": run.customers,
                "ok": not checks[run.org_id].problems,
                "api_calls": calls[run.org_id],
                "api": wave.calls_by_org.get(run.org_id, {}),
                "work_s": round(work[run.org_id], 3),
                "fair_share_bound_s": round(bound, 3),
                "sent_s": round(run.sent_s, 3),
                "completion_s": None if completion is None else round(completion, 3),
                # Its own run time: from its start (``--offsets``) to its summary.
                "run_s": None if completion is None else round(completion - run.sent_s, 3),
                "slowdown": round(completion / bound, 2) if completion and bound else None,
                "listed": summary.get("listed"),
                "synced": summary.get("synced"),
                "unchanged": summary.get("unchanged"),
                "failed_customers": summary.get("failed"),
                "missing": summary.get("missing"),
                # Times the watchdog sent its lost work again (its planner, or chunks).
                "recoveries": summary.get("recoveries"),
                "worker_duration_s": summary.get("durationS"),
                "plan_s": summary.get("planS"),
                "profiles_checked": checks[run.org_id].profiles_checked,
                "problems": checks[run.org_id].problems,
                "latency_ms": options.latency_ms,
                "source": source,
            }
        )
    return rows


def wave_row(
    wave: Wave, rows: Sequence[dict[str, Any]], options: Options, sources: Mapping[str, str]
) -> dict[str, Any]:
    """The wave's figures: makespan against the work-conserving bound, fairness, probes."""
    completions = [row["completion_s"] for row in rows]
    makespan = max(completions) if completions and None not in completions else None
    calls = sum(row["api_calls"] for row in rows)
    unattributed = sum(wave.calls_by_org.get("?", {}).values())
    bound = calls * options.latency_ms / 1000 / options.capacity
    slowdowns = [row["slowdown"] for row in rows if row["slowdown"] is not None]
    answered = [p for p in wave.probes if p.latency_s is not None and p.error is None]
    latencies = [p.latency_s for p in answered if p.latency_s is not None]
    idle = wave.idle_latencies
    return {
        "kind": "wave",
        "orgs": len(rows),
        "customers": sum(row["customers"] for row in rows),
        "profiles_checked": sum(row["profiles_checked"] for row in rows),
        "sizes": sizes_text(options.sizes),
        "ok": all(row["ok"] for row in rows) and len(answered) == len(wave.probes),
        "latency_ms": options.latency_ms,
        "workers": options.workers,
        "concurrency": options.concurrency,
        "capacity": options.capacity,
        "api_calls": calls,
        "api_calls_unattributed": unattributed,
        "makespan_s": None if makespan is None else round(makespan, 3),
        "work_conserving_bound_s": round(bound, 3),
        "makespan_to_bound": round(makespan / bound, 2) if makespan and bound else None,
        "jain_index": None if (jain := jain_index(slowdowns)) is None else round(jain, 3),
        "slowdown_median": _rounded(statistics.median(slowdowns) if slowdowns else None),
        "slowdown_max": max(slowdowns) if slowdowns else None,
        "probes": len(wave.probes),
        "probes_answered": len(answered),
        "probes_during_wave": sum(p.runs_going > 0 for p in wave.probes),
        "probe_latency_median_s": _rounded(statistics.median(latencies) if latencies else None),
        "probe_latency_p95_s": _rounded(nearest_rank(latencies, 0.95)),
        "probe_latency_max_s": _rounded(max(latencies) if latencies else None),
        "idle_probe_latency_median_s": _rounded(statistics.median(idle) if idle else None),
        "idle_probe_latency_p95_s": _rounded(nearest_rank(idle, 0.95)),
        "probe_runs": [
            {
                "org": p.org_id,
                "customer": p.customer_id,
                "sent_s": _rounded(p.sent_s),
                "runs_going": p.runs_going,
                "latency_s": _rounded(p.latency_s),
                "status": p.status,
                "error": p.error,
            }
            for p in wave.probes
        ],
        "cpu_s": wave.cpu_s,
        "peak_rss_process_mb": wave.peak_rss_process_mb,
        "redis_peak_mb": wave.redis_peak_mb,
        "sandbox": {
            api: {k: wave.sandbox_stats.get(api, {}).get(k) for k in ("requests", "server_errors")}
            for api in DATA_APIS
        },
        "timed_out": wave.timed_out,
        "watchdog_sends": len(wave.watchdog_tasks),
        "watchdog_recovered": wave.recovered,
        **sources,
    }


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# --- output ------------------------------------------------------------------------------------


def format_orgs(rows: Sequence[dict[str, Any]]) -> str:
    header = (
        "org", "customers", "API calls", "W s", "fair bound s", "done at s", "run s", "slowdown",
        "synced", "unchanged", "failed", "recovered", "check",
    )  # fmt: skip
    ordered = sorted(rows, key=lambda r: (-r["customers"], int(r["org"].rpartition("-")[2])))
    lines = [
        list(header),
        *(
            [
                row["org"],
                cell(row["customers"]),
                cell(row["api_calls"]),
                cell(row["work_s"]),
                cell(row["fair_share_bound_s"]),
                cell(row["completion_s"]),
                cell(row["run_s"]),
                cell(row["slowdown"], 2),
                cell(row["synced"]),
                cell(row["unchanged"]),
                cell(row["failed_customers"]),
                cell(row["recoveries"]),
                "ok" if row["ok"] else "FAILED: " + "; ".join(row["problems"][:2]),
            ]
            for row in ordered
        ),
    ]
    return text_table(lines, left={0, len(header) - 1})


def format_sizes(rows: Sequence[dict[str, Any]]) -> str:
    """The orgs grouped by size: how each class of org fared."""
    header = ("customers", "orgs", "done at s (median)", "(max)", "slowdown (median)", "(max)")
    lines = [list(header)]
    for size in sorted({row["customers"] for row in rows}, reverse=True):
        group = [row for row in rows if row["customers"] == size]
        done = [row["completion_s"] for row in group if row["completion_s"] is not None]
        slow = [row["slowdown"] for row in group if row["slowdown"] is not None]
        lines.append(
            [
                cell(size),
                str(len(group)),
                cell(statistics.median(done) if done else None),
                cell(max(done) if done else None),
                cell(statistics.median(slow) if slow else None, 2),
                cell(max(slow) if slow else None, 2),
            ]
        )
    return text_table(lines, left=())


def format_wave(row: Mapping[str, Any]) -> str:
    cpu = ", ".join(f"{name} {seconds:.1f}" for name, seconds in sorted(row["cpu_s"].items()))
    probes = (
        f"{row['probes_answered']} of {row['probes']} answered ({row['probes_during_wave']} sent "
        f"while runs were going): median {cell(row['probe_latency_median_s'], 3)} s, p95 "
        f"{cell(row['probe_latency_p95_s'], 3)} s, max {cell(row['probe_latency_max_s'], 3)} s; "
        f"the same syncs on the idle stack before: median "
        f"{cell(row['idle_probe_latency_median_s'], 3)} s, p95 "
        f"{cell(row['idle_probe_latency_p95_s'], 3)} s"
    )
    return "\n".join(
        [
            f"wave: {row['orgs']} orgs, {row['customers']:,} customers ({row['sizes']}), "
            f"{row['api_calls']:,} API calls ({row['api_calls_unattributed']} not attributed to "
            f"an org), capacity {row['workers']} x {row['concurrency']} = {row['capacity']}",
            f"makespan {cell(row['makespan_s'])} s; work-conserving bound (all calls x "
            f"{row['latency_ms']} ms / {row['capacity']}) {cell(row['work_conserving_bound_s'])} "
            f"s; makespan / bound {cell(row['makespan_to_bound'], 2)}",
            f"slowdown (done at / fair-share bound): median {cell(row['slowdown_median'], 2)}, "
            f"max {cell(row['slowdown_max'], 2)}; Jain's index over the slowdowns "
            f"{cell(row['jain_index'], 3)} (1 = all orgs slowed down alike)",
            f"single-customer syncs during the wave (send to result): {probes}",
            f"CPU s during the wave: {cpu}; peak RSS per worker process "
            f"{row['peak_rss_process_mb']} MB; Redis peak {row['redis_peak_mb']} MB",
            f"watchdog (Beat's entry, sent by the benchmark): {row['watchdog_sends']} sends, "
            f"runs recovered: {', '.join(row['watchdog_recovered']) or 'none'}",
        ]
    )


def header(options: Options, redis_client: redis.Redis, sources: Mapping[str, str]) -> str:
    workers_from = options.workers_from or CHECKOUT
    return "\n".join(
        [
            f"loyalty_worker fleet benchmark (the 02:00 wave), "
            f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            machine_line(redis_client, options.redis_url),
            f"sandbox, seeding, sending and checks: {sources['source']} ({CHECKOUT})",
            f"workers: {sources['workers_source']} ({workers_from})",
            f"fleet: {len(options.sizes)} orgs, {sum(options.sizes):,} customers "
            f"({sizes_text(options.sizes)}, seed {SEED}); sandbox latency {options.latency_ms} "
            f"ms; Alpine IQ contacts listing: documented",
            f"workers: {options.workers} process(es) x {options.concurrency} threads; every "
            f"org's run started at once, as the nightly tick starts them; {options.probes} "
            "single-customer syncs sent during the wave; Beat's watchdog entry "
            + ("sent as Beat would" if options.watchdog else "not sent (--no-watchdog)"),
        ]
    )


# --- the benchmark -----------------------------------------------------------------------------


def measure(
    options: Options, redis_client: redis.Redis, sources: dict[str, str]
) -> tuple[list[dict[str, Any]], bool]:
    """Start the stack, run the wave, check it; its rows and whether everything held."""
    print(f"\ngenerating the fleet ({sum(options.sizes):,} customers)", flush=True)
    fleet = prepare_fleet(options.sizes, options.probes)
    sandbox_args = [
        *("--org-sizes", sizes_text(options.sizes), "--seed", str(SEED)),
        *("--latency-ms", str(options.latency_ms), "--count-calls-by-org"),
    ]
    print("starting the sandbox, the Firestore emulator and the workers", flush=True)
    emulator: EmulatorProcess | None = None
    workers: list[devstack.ChildProcess] = []
    celery = Celery("bench", broker=options.redis_url, backend=options.redis_url)
    sandbox = devstack.start_sandbox(*sandbox_args, timeout_s=60.0 + sum(options.sizes) / 500)
    try:
        # Flushed before the workers start: they declare their queues in Redis on start-up.
        redis_client.flushdb()
        emulator = start_emulator()
        project = seed_project(emulator, fleet.seed_data)
        env = worker_env(
            redis_url=options.redis_url,
            emulator=emulator,
            project=project,
            sandbox=sandbox,
            concurrency=options.concurrency,
        )
        start_workers(
            env,
            workers,
            count=options.workers,
            concurrency=options.concurrency,
            source=options.workers_from,
        )
        stack = Stack(
            options,
            redis_client,
            sandbox,
            celery,
            workers,
            process_trees(workers, sandbox, emulator),
        )
        print("the wave: every org's run sent", flush=True)
        print("the probes' syncs on the idle stack, one by one", flush=True)
        idle = idle_probe_latencies(stack, fleet)
        wave = run_wave(stack, fleet)
        wave.idle_latencies = idle
        if any(run.error for run in wave.runs):
            for worker in workers:
                print(
                    f"--- {worker.name} output (tail) ---\n{tail(worker.output())}", file=sys.stderr
                )
        print("checking every run's summary and every profile", flush=True)
        checks = check_wave(wave, fleet, project)
    finally:
        for worker in reversed(workers):
            worker.stop()
        if emulator is not None:
            emulator.stop()
        sandbox.stop()
        celery.close()
    rows = org_rows(wave, options, checks, sources["workers_source"])
    summary = wave_row(wave, rows, options, sources)
    return [*rows, summary], summary["ok"]


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    started = time.monotonic()
    redis_child: devstack.ChildProcess | None = None
    rows: list[dict[str, Any]] = []
    ok = False
    with devstack.supervise("bench-fleet"):
        try:
            redis_url, redis_child = devstack.ensure_redis(options.redis_url)
            options = replace(options, redis_url=redis_url)
            redis_client = redis.Redis.from_url(redis_url)
            sources = {
                "source": source_version(),
                "workers_source": source_version(options.workers_from or CHECKOUT),
            }
            print(header(options, redis_client, sources), flush=True)
            rows, ok = measure(options, redis_client, sources)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping the children", file=sys.stderr)
            return 130
        except (devstack.StartupError, EmulatorUnavailable) as exc:
            print(f"bench-fleet: {exc}", file=sys.stderr)
            return 2
        finally:
            if redis_child is not None:
                redis_child.stop()
    write_rows(options.out, rows)
    org_part = [row for row in rows if row["kind"] == "org"]
    print(f"\nper org (done at: from the wave's start to its summary)\n{format_orgs(org_part)}")
    print(f"\nby size\n{format_sizes(org_part)}")
    print(f"\n{format_wave(rows[-1])}")
    for row in org_part:
        for problem in row["problems"]:
            print(f"FAILED: {row['org']}: {problem}", file=sys.stderr)
    for probe in rows[-1]["probe_runs"]:
        if probe["error"]:
            print(
                f"FAILED: probe {probe['org']}/{probe['customer']}: {probe['error']}",
                file=sys.stderr,
            )
    verdict = (
        f"every run adds up and all {rows[-1]['profiles_checked']:,} profiles are as the rules "
        "give them"
        if ok
        else "FAILED"
    )
    print(
        f"checks: {verdict}\nW = an org's API calls x latency; fair bound = sum over orgs of "
        "min(W_j, W_i) / capacity; slowdown = done at / fair bound"
    )
    print(
        f"results: {options.out} ({len(rows)} rows); benchmark wall time "
        f"{(time.monotonic() - started) / 60:.1f} min"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
