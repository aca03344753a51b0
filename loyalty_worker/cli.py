"""The operator's command line: ``loyalty-worker <command> …``.

Each command is one ``_cmd_*`` function taking the parsed arguments and returning an exit code,
registered in ``build_parser``; heavy imports happen inside the command that needs them, so that
``--help`` and the other commands stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from loyalty_worker.sandbox.data.records import Dataset

DEFAULT_CUSTOMERS = 200
DEFAULT_SEED = 1
DEFAULT_ORGS = 2

T = TypeVar("T")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _sandbox_dataset(args: argparse.Namespace) -> Dataset:
    """The dataset file given, or one generated from the options (defaults for those not given)."""
    from loyalty_worker.sandbox.data import generate_dataset, load_dataset

    if args.dataset is not None:
        return load_dataset(args.dataset)
    return generate_dataset(
        args.customers or DEFAULT_CUSTOMERS,
        DEFAULT_SEED if args.seed is None else args.seed,
        orgs=args.orgs or DEFAULT_ORGS,
        malformed_rate=args.malformed_rate or 0.0,
    )


def _cmd_sandbox(args: argparse.Namespace) -> int:
    """Serve the Alleaves, Alpine IQ and Discord look-alikes until interrupted."""
    from loyalty_worker.sandbox.data import DatasetError
    from loyalty_worker.sandbox.faults import Faults
    from loyalty_worker.sandbox.server import create_app, serve

    generation = (args.customers, args.seed, args.orgs, args.malformed_rate)
    if args.dataset is not None and any(option is not None for option in generation):
        print(
            "sandbox: --dataset excludes --customers, --seed, --orgs and --malformed-rate",
            file=sys.stderr,
        )
        return 2
    faults = Faults(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        rate_limit=args.rate_limit or None,
        token_ttl_s=args.token_ttl_s,
    )
    try:
        # No reference to the raw dataset is kept here: the app holds its orders encoded,
        # and a full history as dicts would double the memory for the life of the server.
        app = create_app(
            _sandbox_dataset(args),
            faults,
            alpine_balances_in_listing=args.alpine_balances_in_listing,
        )
    except DatasetError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    serve(app, host=args.host, port=args.port)
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    """Write a generated dataset (the format is documented in ``loyalty_worker.sandbox.data``)."""
    from loyalty_worker.sandbox.data import dump_dataset, generate_dataset

    dataset = generate_dataset(
        args.customers,
        args.seed,
        orgs=args.orgs,
        malformed_rate=args.malformed_rate,
        as_of=args.as_of,
    )
    text = dump_dataset(dataset) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


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
    import json

    import redis

    from loyalty_worker.adapters.run_state import RunTracker
    from loyalty_worker.config import get_settings
    from loyalty_worker.devstack import redis_answers
    from loyalty_worker.progress import RunNotPickedUp, format_summary, watch_run

    settings = get_settings()
    if not redis_answers(settings.redis_url):
        print(f"sync: Redis is unreachable at {_redacted(settings.redis_url)}", file=sys.stderr)
        return 2
    from loyalty_worker.celery_app import app
    from loyalty_worker.names import new_run_id

    if not app.control.ping(timeout=2.0):
        print(
            "sync: no worker answers; start one with "
            "`celery -A loyalty_worker.celery_app worker -Q loyalty.runs,loyalty.customers,celery`",
            file=sys.stderr,
        )
        return 2
    if args.customer is not None:
        task = app.send_task(
            "loyalty.sync_customer",
            args=[args.org, args.customer],
            kwargs={"dry_run": args.dry_run},
            queue="loyalty.customers",
        )
        if args.no_wait:
            print(task.id)
            return 0
        result = task.get(timeout=args.timeout)
        print(json.dumps(result, indent=2))
        return 0 if result.get("success") else 1
    run_id = new_run_id(args.org)
    app.send_task(
        "loyalty.sync_org",
        args=[args.org],
        kwargs={"run_id": run_id, "dry_run": args.dry_run},
        queue="loyalty.runs",
    )
    if args.no_wait:
        print(run_id)
        return 0
    tracker = RunTracker(redis.Redis.from_url(settings.redis_url))
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


def _cmd_flower(args: argparse.Namespace) -> int:  # noqa: RET503 - ends the process
    """Flower, with basic auth from the settings (passed in the environment, not the argv).

    Flower runs in this process: a signal meant for the command reaches Flower itself, and
    there is no wrapper left to outlive it or to die leaving it behind. Flower stops on SIGTERM
    by raising ``SystemExit`` wherever its main thread is; landing while its thread pool starts a
    thread, that leaves a pool thread nothing wakes, and the interpreter's exit would wait on it
    forever. So once Flower returns, the process ends at once: Flower keeps no state to save
    (it is never started ``--persistent``)."""
    import os

    from loyalty_worker.config import get_settings

    settings = get_settings()
    if settings.flower_password is not None:
        password = settings.flower_password.get_secret_value()
        os.environ["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{password}"
    elif not args.no_auth:
        print(
            "flower: set LOYALTY_FLOWER_PASSWORD (basic auth), or pass --no-auth for a "
            "loopback-only Flower",
            file=sys.stderr,
        )
        return 2
    elif not _is_loopback(args.address):
        # Flower's task view and controls would be open to anyone who reaches the address.
        print(
            f"flower: --no-auth serves only a loopback address (127.0.0.1, ::1), not "
            f"{args.address!r}; set LOYALTY_FLOWER_PASSWORD to serve it further",
            file=sys.stderr,
        )
        return 2
    from celery.bin.celery import celery as celery_command

    argv = ["-A", "loyalty_worker.celery_app", "flower"]
    argv += [f"--port={args.port}", f"--address={args.address}"]
    code: int | str | None = 0
    try:
        celery_command.main(args=argv, prog_name="celery", auto_envvar_prefix="CELERY")
    except SystemExit as stop:
        code = stop.code
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else int(code is not None))


def _is_loopback(address: str) -> bool:
    import ipaddress

    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def _cmd_seed_firestore(args: argparse.Namespace) -> int:
    """Write a dataset's org settings and Markitbot profiles into Firestore.

    Started beside the sandbox and the emulator (compose), it waits up to ``--wait`` seconds for
    each to answer rather than failing on the first refused connection.
    """
    import os
    import socket

    from loyalty_worker.adapters.firestore import build_firestore_client
    from loyalty_worker.adapters.seed import seed_firestore
    from loyalty_worker.config import get_settings
    from loyalty_worker.sandbox.data import load_dataset

    try:
        if args.dataset is not None:
            dataset = load_dataset(args.dataset)
        else:
            dataset = _retry_until(lambda: _get_json(f"{args.sandbox}/sandbox/dataset"), args.wait)
        emulator = os.environ.get("FIRESTORE_EMULATOR_HOST")
        if emulator:  # gRPC only: a TCP connection is its sign of life
            host, _, port = emulator.rpartition(":")
            _retry_until(lambda: socket.create_connection((host, int(port)), 2).close(), args.wait)
    except TimeoutError as exc:
        print(f"seed-firestore: {exc}", file=sys.stderr)
        return 1
    client = build_firestore_client(get_settings().firestore_project)
    counts = seed_firestore(client, dataset)
    print(f"seeded {counts.orgs} org settings and {counts.profiles} profiles")
    return 0


def _get_json(url: str) -> Any:
    import httpx

    response = httpx.get(url, timeout=120)
    response.raise_for_status()
    return response.json()


def _retry_until(attempt: Callable[[], T], wait_s: float) -> T:
    """``attempt()``'s value, retried every second while it fails, for up to ``wait_s``."""
    import time

    import httpx

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return attempt()
        except (OSError, ValueError, httpx.HTTPError) as exc:  # refused, reset, 5xx: "not yet"
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no answer within {wait_s:.0f} s: {exc}") from exc
        time.sleep(1.0)


def _cmd_firestore_emulator(args: argparse.Namespace) -> int:
    """Install (first time) and run the local Firestore emulator in the foreground."""
    from loyalty_worker.firestore_emulator import main_emulator

    return main_emulator(args.port, bind=args.host)


def _cmd_api(args: argparse.Namespace) -> int:
    """Serve the HTTP API (sync triggers, run status, points look-up, webhooks) with uvicorn."""
    import uvicorn
    from pydantic import ValidationError

    from loyalty_worker import logs
    from loyalty_worker.api import wiring
    from loyalty_worker.api.settings import get_api_settings
    from loyalty_worker.config import get_settings

    try:
        api_settings = get_api_settings()
    except ValidationError as exc:  # the message never shows a token (hide_input_in_errors)
        print(f"api: invalid settings: {exc}", file=sys.stderr)
        return 2
    if not api_settings.tokens:
        print("api: no callers: set LOYALTY_API_TOKENS (JSON {token: [orgIds]})", file=sys.stderr)
        return 2
    settings = get_settings()
    # Redacted like the workers' logs (httpx's request URLs hold phone numbers), tokens and
    # secrets masked wherever they appear, httpx's line per request left out.
    logs.configure_process(json_format=settings.log_format == "json")
    for grant in api_settings.tokens:
        logs.register_secret(grant.token.get_secret_value())
    for secret in api_settings.webhook_secrets.values():
        logs.register_secret(secret.get_secret_value())
    if settings.phone_hash_key is not None:
        logs.register_secret(settings.phone_hash_key.get_secret_value())
    app = wiring.build_app(settings, api_settings)
    # uvicorn's access log prints query strings (phone numbers): the app logs paths instead.
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_config=None)
    return 0


def _cmd_check_points(args: argparse.Namespace) -> int:
    """Print a customer's loyalty by phone (calculated and Alpine IQ, reconciled) as JSON."""
    from loyalty_worker.api.settings import get_api_settings
    from loyalty_worker.api.wiring import AlpineClients, build_queries
    from loyalty_worker.config import get_settings
    from loyalty_worker.errors import LoyaltyError
    from loyalty_worker.services.lookup.points import InvalidPhone, check_points

    settings = get_settings()
    api_settings = get_api_settings()
    store = build_queries(settings)
    alpine = AlpineClients(settings, api_settings)
    try:
        org = store.get_org_settings(args.org)
        answer = check_points(
            args.org, args.phone, store=store, alpine=alpine(org), phone_key=settings.phone_key
        )
    except InvalidPhone as exc:
        print(f"check-points: {exc}", file=sys.stderr)
        return 2
    except LoyaltyError as exc:
        print(f"check-points: {exc}", file=sys.stderr)
        return 2 if exc.reason == "unknown_org" else 1
    finally:
        alpine.close()
    print(answer.model_dump_json(by_alias=True, indent=2))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    """Stream every profile's loyalty fields of an org as CSV or NDJSON."""
    import os
    import tempfile

    from loyalty_worker.api.wiring import build_queries
    from loyalty_worker.config import get_settings
    from loyalty_worker.errors import LoyaltyError
    from loyalty_worker.services.lookup.export import ExportFormat, export_profiles

    store = build_queries(get_settings())
    fmt = ExportFormat(args.format)
    try:
        store.get_settings_document(args.org)
        if args.out is None:
            count = export_profiles(
                args.org, sys.stdout, source=store, fmt=fmt, include_pii=args.include_pii
            )
        else:
            # Written beside the target and renamed at the end: a failed export leaves no
            # half-written file where a complete one is expected.
            fd, temp = tempfile.mkstemp(dir=args.out.parent, prefix=".export-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                    count = export_profiles(
                        args.org, out, source=store, fmt=fmt, include_pii=args.include_pii
                    )
                Path(temp).replace(args.out)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
    except LoyaltyError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2 if exc.reason == "unknown_org" else 1
    print(f"export: {count} profiles of org {args.org}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loyalty-worker",
        description="Loyalty points sync for Alleaves, Alpine IQ and Firestore.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sandbox = commands.add_parser(
        "sandbox",
        help="serve local look-alikes of Alleaves, Alpine IQ and Discord",
        description="Serve Alleaves (/alleaves), Alpine IQ (/alpine) and Discord webhooks "
        "(/discord) on one port, from a dataset file or a generated one. Prints "
        "'sandbox listening on http://HOST:PORT' once it accepts connections.",
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8900, help="0 picks a free port")
    sandbox.add_argument("--dataset", type=Path, help="a file written by 'loyalty-worker dataset'")
    sandbox.add_argument(
        "--customers",
        type=_positive_int,
        help=f"generate: customers of org-1 ({DEFAULT_CUSTOMERS})",
    )
    sandbox.add_argument("--seed", type=int, help=f"generate: random seed ({DEFAULT_SEED})")
    sandbox.add_argument("--orgs", type=_positive_int, help=f"generate: orgs ({DEFAULT_ORGS})")
    sandbox.add_argument(
        "--malformed-rate", type=_fraction, help="generate: share of broken customers and orders"
    )
    sandbox.add_argument(
        "--latency-ms", type=_non_negative_float, default=0.0, help="delay of every API call"
    )
    sandbox.add_argument(
        "--error-rate",
        type=_fraction,
        default=0.0,
        help="share of Alleaves/Alpine calls given a 5xx",
    )
    sandbox.add_argument(
        "--rate-limit",
        type=_non_negative_int,
        default=0,
        help="requests per second per API (0: unlimited)",
    )
    sandbox.add_argument(
        "--token-ttl-s",
        type=_positive_float,
        default=24 * 3600.0,
        help="lifetime of Alleaves tokens",
    )
    sandbox.add_argument(
        "--alpine-balances-in-listing",
        action="store_true",
        help="shortcut, not the documented API: Alpine IQ's contacts listing carries each "
        "contact's points, tier and lastVisit (default: ids, phones and names only, so each "
        "balance costs a look-up by phone)",
    )
    sandbox.set_defaults(handler=_cmd_sandbox)

    dataset = commands.add_parser(
        "dataset",
        help="write a generated sandbox dataset as JSON",
        description="Write a deterministic dataset: the same arguments give the same file.",
    )
    dataset.add_argument("--customers", type=_positive_int, required=True)
    dataset.add_argument("--seed", type=int, required=True)
    dataset.add_argument("--orgs", type=_positive_int, default=DEFAULT_ORGS)
    dataset.add_argument("--malformed-rate", type=_fraction, default=0.0)
    dataset.add_argument(
        "--as-of",
        type=date.fromisoformat,
        help="YYYY-MM-DD every timestamp precedes (default: today, UTC)",
    )
    dataset.add_argument("--out", type=Path, help="file to write (default: stdout)")
    dataset.set_defaults(handler=_cmd_dataset)

    sync = commands.add_parser(
        "sync",
        help="run an org's sync (or one customer's) through the workers and show its summary",
        description="Enqueue through the broker, follow the run with a progress bar and print "
        "its summary. Exit code 0: completed; 1: the run failed; 2: no worker or no Redis; "
        "3: a run of this org is already going.",
    )
    sync.add_argument("--org", required=True)
    sync.add_argument("--customer", type=_positive_int, help="sync only this Alleaves customer")
    sync.add_argument("--dry-run", action="store_true", help="calculate, write nothing")
    sync.add_argument("--no-wait", action="store_true", help="print the run/task id and exit")
    sync.add_argument("--timeout", type=_positive_float, default=3600.0, help="seconds to wait")
    sync.set_defaults(handler=_cmd_sync)

    demo = commands.add_parser(
        "demo",
        help="the main job end to end on one machine (sandbox, emulator, worker, Flower, "
        "dashboard); stays up after its run until Ctrl-C",
    )
    demo.add_argument("--customers", type=_positive_int, default=1000)
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
        type=_non_negative_int,
        default=15,
        help="the demo's own database on the Redis of LOYALTY_REDIS_URL, emptied when a demo "
        "starts (default 15)",
    )
    demo.set_defaults(handler=_cmd_demo)

    flower = commands.add_parser("flower", help="Flower with basic auth from the settings")
    flower.add_argument("--port", type=int, default=5555)
    flower.add_argument("--address", default="127.0.0.1")
    flower.add_argument("--no-auth", action="store_true", help="no basic auth (local use only)")
    flower.set_defaults(handler=_cmd_flower)

    seed = commands.add_parser(
        "seed-firestore", help="write a dataset's org settings and profiles into Firestore"
    )
    source = seed.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=Path, help="a file written by 'loyalty-worker dataset'")
    source.add_argument("--sandbox", help="the base URL of a running sandbox, to read its dataset")
    seed.add_argument(
        "--wait",
        type=float,
        default=120.0,
        help="seconds to wait for the sandbox and the Firestore emulator to answer (default 120)",
    )
    seed.set_defaults(handler=_cmd_seed_firestore)

    emulator = commands.add_parser(
        "firestore-emulator", help="run the local Firestore emulator (prints its address)"
    )
    emulator.add_argument("--port", type=int, default=8085)
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on")
    emulator.set_defaults(handler=_cmd_firestore_emulator)

    api = commands.add_parser(
        "api",
        help="serve the HTTP API (sync triggers, run status, points look-up, Alleaves webhooks)",
        description="Serve the loyalty API with uvicorn; callers' tokens come from "
        "LOYALTY_API_TOKENS. The OpenAPI schema is at /openapi.json.",
    )
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(handler=_cmd_api)

    check = commands.add_parser(
        "check-points",
        help="print a customer's points by phone: calculated, Alpine IQ, reconciled (JSON)",
    )
    check.add_argument("--org", required=True)
    check.add_argument("--phone", required=True, help="a US phone number, any format")
    check.set_defaults(handler=_cmd_check_points)

    export = commands.add_parser(
        "export",
        help="stream every profile's loyalty fields of an org (CSV or NDJSON)",
        description="Without --include-pii a row holds loyalty fields, ids and the phone masked "
        "to its last four digits.",
    )
    export.add_argument("--org", required=True)
    export.add_argument("--format", choices=["csv", "ndjson"], default="csv")
    export.add_argument(
        "--include-pii", action="store_true", help="also names, e-mail and phone of the profile"
    )
    export.add_argument("--out", type=Path, help="file to write (default: stdout)")
    export.set_defaults(handler=_cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
