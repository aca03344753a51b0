"""The commands that run the main job: ``sync`` through running workers, ``demo`` on one
machine."""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import TYPE_CHECKING

from loyalty_worker.cli.arguments import (
    DEFAULT_SEED,
    Commands,
    non_negative_int,
    positive_float,
    positive_int,
)

if TYPE_CHECKING:  # imported by the command itself: --help stays fast
    from celery import Celery

    from loyalty_worker.adapters.publisher import TaskPublisher
    from loyalty_worker.domain.selection import CustomerSelection


def _redacted(url: str) -> str:
    """A URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (
        f":{parts.port}" if parts.port else ""
    )
    return urlunsplit(parts._replace(netloc=netloc))


def _cmd_sync(args: argparse.Namespace) -> int:
    """Enqueue an org's run (or one customer) and follow it to its summary."""
    from loyalty_worker.config import get_settings
    from loyalty_worker.devstack import redis_answers

    if args.seed is not None and args.sample is None:
        print("sync: --seed goes with --sample", file=sys.stderr)
        return 2
    settings = get_settings()
    if not redis_answers(settings.redis_url):
        print(f"sync: Redis is unreachable at {_redacted(settings.redis_url)}", file=sys.stderr)
        return 2
    from loyalty_worker.adapters.publisher import TaskPublisher
    from loyalty_worker.celery_app import app
    from loyalty_worker.names import WORKER_QUEUES

    if not app.control.ping(timeout=2.0):
        print(
            "sync: no worker answers; start one with "
            f"`celery -A loyalty_worker.celery_app worker -Q {','.join(WORKER_QUEUES)}`",
            file=sys.stderr,
        )
        return 2
    publisher = TaskPublisher(app)
    if args.customer is not None:
        return _sync_customer(args, publisher, app)
    return _sync_org(args, publisher, settings.redis_url)


def _sync_customer(args: argparse.Namespace, publisher: TaskPublisher, app: Celery) -> int:
    """One customer's sync, its result printed (JSON) unless ``--no-wait``."""
    import json

    task_id = publisher.sync_customer(args.org, args.customer, dry_run=args.dry_run)
    if args.no_wait:
        print(task_id)
        return 0
    result = app.AsyncResult(task_id).get(timeout=args.timeout)
    print(json.dumps(result, indent=2))
    return 0 if result.get("success") else 1


def customer_ids(text: str) -> tuple[int, ...]:
    """``--customers``: Alleaves customer ids, comma-separated."""
    try:
        ids = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            "customer ids are whole numbers, comma-separated"
        ) from None
    if not ids or min(ids) < 1:
        raise argparse.ArgumentTypeError("at least one customer id, each >= 1")
    return ids


def customer_selection(args: argparse.Namespace) -> CustomerSelection | None:
    """The partial run ``--limit``, ``--sample`` (its seed drawn unless ``--seed``) or
    ``--customers`` asks for; None: a full run."""
    from loyalty_worker.domain.selection import CustomerSelection

    if args.limit is not None:
        return CustomerSelection.first(args.limit)
    if args.sample is not None:
        seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
        return CustomerSelection.sample(args.sample, seed)
    if args.customers is not None:
        return CustomerSelection.of(args.customers)
    return None


def _sync_org(args: argparse.Namespace, publisher: TaskPublisher, redis_url: str) -> int:
    """An org's run, started as every run is, followed to its summary unless ``--no-wait``."""
    import redis

    from loyalty_worker.adapters.run_state import RunTracker
    from loyalty_worker.errors import TransientError
    from loyalty_worker.names import new_run_id
    from loyalty_worker.progress import RunNotPickedUp, format_summary, watch_run
    from loyalty_worker.services.run.triggers import enqueue_org_run

    run_id = new_run_id(args.org)
    tracker = RunTracker(redis.Redis.from_url(redis_url))
    selection = customer_selection(args)
    if selection is not None:
        print(f"sync: partial run of {args.org}: {selection.scope}", file=sys.stderr)
    try:
        enqueue_org_run(
            args.org,
            run_id,
            dry_run=args.dry_run,
            selection=selection,
            runs=tracker,
            enqueuer=publisher,
        )
    except TransientError as exc:
        print(f"sync: {exc}", file=sys.stderr)
        return 2
    if args.no_wait:
        print(run_id)
        return 0
    try:
        progress = watch_run(tracker, run_id, timeout_s=args.timeout)
    except (RunNotPickedUp, TimeoutError) as exc:
        print(f"sync: {exc}", file=sys.stderr)
        return 2
    if progress.status == "duplicate":
        print(f"sync: {progress.error}", file=sys.stderr)
        return 3
    if progress.summary is not None:
        print(format_summary(progress.summary))
    if progress.status != "completed":
        print(f"sync: run {run_id} {progress.status}: {progress.error}", file=sys.stderr)
        return 1
    return 0


def add_sync(commands: Commands) -> None:
    """``loyalty-worker sync``."""
    sync = commands.add_parser(
        "sync",
        help="run an org's sync (or one customer's) through the workers and show its summary",
        description="Enqueue through the broker, follow the run with a progress bar and print "
        "its summary. Exit code 0: completed; 1: the run failed; 2: no worker or no Redis; "
        "3: a run of this org is already going. --limit, --sample and --customers start a "
        "partial run: a real run of those customers only, its summary and alert marked "
        "partial, never counted as the org's last full run.",
    )
    sync.add_argument("--org", required=True)
    only = sync.add_mutually_exclusive_group()
    only.add_argument("--customer", type=positive_int, help="sync only this Alleaves customer")
    only.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="a partial run of the first N customers listed (a first rollout)",
    )
    only.add_argument(
        "--sample",
        type=positive_int,
        metavar="N",
        help="a partial run of N customers drawn at random; the seed is printed (see --seed)",
    )
    only.add_argument(
        "--customers",
        type=customer_ids,
        metavar="ID,ID,...",
        help="a partial run of these Alleaves customers",
    )
    sync.add_argument(
        "--seed", type=non_negative_int, help="with --sample: draw the same customers again"
    )
    sync.add_argument("--dry-run", action="store_true", help="calculate, write nothing")
    sync.add_argument("--no-wait", action="store_true", help="print the run/task id and exit")
    sync.add_argument("--timeout", type=positive_float, default=3600.0, help="seconds to wait")
    sync.set_defaults(handler=_cmd_sync)


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job end to end on one machine."""
    from loyalty_worker.demo import run_demo

    return run_demo(
        customers=args.customers,
        seed=args.seed,
        flower=not args.no_flower,
        redis_db=args.redis_db,
        exit_after=args.exit,
    )


def add_demo(commands: Commands) -> None:
    """``loyalty-worker demo``."""
    demo = commands.add_parser(
        "demo",
        help="the main job end to end on one machine (sandbox, emulator, worker, Flower, "
        "dashboard); stays up after its run until Ctrl-C",
    )
    demo.add_argument("--customers", type=positive_int, default=1000)
    demo.add_argument("--seed", type=int, default=DEFAULT_SEED)
    demo.add_argument("--no-flower", action="store_true")
    demo.add_argument(
        "--exit",
        action="store_true",
        help="end with the run (exit code 0 when it completed) instead of staying up with the "
        "dashboard: for scripts",
    )
    demo.add_argument(
        "--redis-db",
        type=non_negative_int,
        default=15,
        help="the demo's own database on the Redis of LOYALTY_REDIS_URL, emptied when a demo "
        "starts (default 15)",
    )
    demo.set_defaults(handler=_cmd_demo)
