"""The local stack's commands: the sandbox, its datasets, seeding Firestore, the emulators."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from loyalty_worker.cli.arguments import (
    DEFAULT_CUSTOMERS,
    DEFAULT_ORGS,
    DEFAULT_SEED,
    Commands,
    fraction,
    non_negative_float,
    non_negative_int,
    org_sizes,
    positive_float,
    positive_int,
)
from loyalty_worker.names import DEMO_FIREBASE_PROJECT

if TYPE_CHECKING:  # imported by the command itself: --help stays fast
    from starlette.applications import Starlette

    from loyalty_worker.sandbox.data.records import Dataset

T = TypeVar("T")


def _sandbox_app(args: argparse.Namespace) -> Starlette:
    """The sandbox over the dataset file given, or one generated from the options (defaults for
    those not given), with the faults the options set."""
    from loyalty_worker.sandbox.data import load_dataset
    from loyalty_worker.sandbox.faults import Faults
    from loyalty_worker.sandbox.server import create_app

    faults = Faults(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        rate_limit=args.rate_limit or None,
        token_ttl_s=args.token_ttl_s,
    )
    dataset = (
        load_dataset(args.dataset)
        if args.dataset is not None
        else _generate(
            args,
            customers=args.customers or DEFAULT_CUSTOMERS,
            seed=DEFAULT_SEED if args.seed is None else args.seed,
            malformed_rate=args.malformed_rate or 0.0,
        )
    )
    # No reference to the raw dataset outlives this call: the app holds its orders encoded,
    # and a full history as dicts would double the memory for the life of the server.
    app = create_app(dataset, faults, alpine_balances_in_listing=args.alpine_balances_in_listing)
    if args.count_calls_by_org:
        from loyalty_worker.sandbox.org_calls import Credentials, OrgCalls

        app.add_middleware(OrgCalls, credentials=Credentials(dataset))
    return app


def _generate(
    args: argparse.Namespace,
    *,
    customers: int,
    seed: int,
    malformed_rate: float,
    as_of: date | None = None,
) -> Dataset:
    """The dataset the options ask for: each org's size as ``--org-sizes`` gives it, else
    ``customers`` in org-1 and a tenth in each other of ``--orgs``."""
    from loyalty_worker.sandbox.data import generate_dataset, generate_sized_dataset

    if args.org_sizes is not None:
        return generate_sized_dataset(
            args.org_sizes, seed, malformed_rate=malformed_rate, as_of=as_of
        )
    return generate_dataset(
        customers,
        seed,
        orgs=args.orgs or DEFAULT_ORGS,
        malformed_rate=malformed_rate,
        as_of=as_of,
    )


def _sizes_conflict(args: argparse.Namespace) -> str | None:
    """What ``--org-sizes`` cannot be given with, when it is."""
    if args.org_sizes is not None and (args.customers is not None or args.orgs is not None):
        return "--org-sizes excludes --customers and --orgs"
    return None


def _cmd_sandbox(args: argparse.Namespace) -> int:
    """Serve the Alleaves, Alpine IQ and Discord look-alikes until interrupted."""
    from loyalty_worker.sandbox.data import DatasetError
    from loyalty_worker.sandbox.server import serve

    generation = (args.customers, args.seed, args.orgs, args.org_sizes, args.malformed_rate)
    conflict = _sizes_conflict(args)
    if args.dataset is not None and any(option is not None for option in generation):
        conflict = (
            "--dataset excludes --customers, --seed, --orgs, --org-sizes and --malformed-rate"
        )
    if conflict is not None:
        print(f"sandbox: {conflict}", file=sys.stderr)
        return 2
    try:
        app = _sandbox_app(args)
    except DatasetError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    serve(app, host=args.host, port=args.port)
    return 0


def add_sandbox(commands: Commands) -> None:
    """``loyalty-worker sandbox``."""
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
        type=positive_int,
        help=f"generate: customers of org-1 ({DEFAULT_CUSTOMERS})",
    )
    sandbox.add_argument("--seed", type=int, help=f"generate: random seed ({DEFAULT_SEED})")
    sandbox.add_argument("--orgs", type=positive_int, help=f"generate: orgs ({DEFAULT_ORGS})")
    sandbox.add_argument(
        "--org-sizes",
        type=org_sizes,
        help="generate: each org's customers, e.g. 50000,4x10000,30x300 (COUNTxSIZE repeats a "
        "size); instead of --customers and --orgs",
    )
    sandbox.add_argument(
        "--malformed-rate", type=fraction, help="generate: share of broken customers and orders"
    )
    sandbox.add_argument(
        "--latency-ms", type=non_negative_float, default=0.0, help="delay of every API call"
    )
    sandbox.add_argument(
        "--error-rate",
        type=fraction,
        default=0.0,
        help="share of Alleaves/Alpine calls given a 5xx",
    )
    sandbox.add_argument(
        "--rate-limit",
        type=non_negative_int,
        default=0,
        help="requests per second per credential of each API (0: unlimited)",
    )
    sandbox.add_argument(
        "--token-ttl-s",
        type=positive_float,
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
    sandbox.add_argument(
        "--count-calls-by-org",
        action="store_true",
        help="also count Alleaves and Alpine IQ requests by org: GET /sandbox/stats/orgs",
    )
    sandbox.set_defaults(handler=_cmd_sandbox)


def _cmd_dataset(args: argparse.Namespace) -> int:
    """Write a generated dataset (the format is documented in ``loyalty_worker.sandbox.data``)."""
    from loyalty_worker.sandbox.data import dump_dataset

    conflict = _sizes_conflict(args)
    if conflict is not None:
        print(f"dataset: {conflict}", file=sys.stderr)
        return 2
    dataset = _generate(
        args,
        customers=args.customers,
        seed=args.seed,
        malformed_rate=args.malformed_rate,
        as_of=args.as_of,
    )
    text = dump_dataset(dataset) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


def add_dataset(commands: Commands) -> None:
    """``loyalty-worker dataset``."""
    dataset = commands.add_parser(
        "dataset",
        help="write a generated sandbox dataset as JSON",
        description="Write a deterministic dataset: the same arguments give the same file.",
    )
    sizes = dataset.add_mutually_exclusive_group(required=True)
    sizes.add_argument("--customers", type=positive_int, help="customers of org-1")
    sizes.add_argument(
        "--org-sizes",
        type=org_sizes,
        help="each org's customers, e.g. 50000,4x10000,30x300 (COUNTxSIZE repeats a size)",
    )
    dataset.add_argument("--seed", type=int, required=True)
    dataset.add_argument(
        "--orgs", type=positive_int, help=f"orgs, with --customers ({DEFAULT_ORGS})"
    )
    dataset.add_argument("--malformed-rate", type=fraction, default=0.0)
    dataset.add_argument(
        "--as-of",
        type=date.fromisoformat,
        help="YYYY-MM-DD every timestamp precedes (default: today, UTC)",
    )
    dataset.add_argument("--out", type=Path, help="file to write (default: stdout)")
    dataset.set_defaults(handler=_cmd_dataset)


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


def add_seed_firestore(commands: Commands) -> None:
    """``loyalty-worker seed-firestore``."""
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


def _cmd_firestore_emulator(args: argparse.Namespace) -> int:
    """Install (first time) and run the local Firestore emulator in the foreground."""
    from loyalty_worker.firestore_emulator import main_emulator

    return main_emulator(args.port, bind=args.host)


def add_firestore_emulator(commands: Commands) -> None:
    """``loyalty-worker firestore-emulator``."""
    emulator = commands.add_parser(
        "firestore-emulator", help="run the local Firestore emulator (prints its address)"
    )
    emulator.add_argument("--port", type=int, default=8085)
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on")
    emulator.set_defaults(handler=_cmd_firestore_emulator)


def _cmd_auth_emulator(args: argparse.Namespace) -> int:
    """Install (first time) and run Firebase's Auth emulator in the foreground."""
    from loyalty_worker.auth_emulator import main_auth_emulator

    return main_auth_emulator(args.port, bind=args.host, project_id=args.project)


def add_auth_emulator(commands: Commands) -> None:
    """``loyalty-worker auth-emulator``."""
    emulator = commands.add_parser(
        "auth-emulator",
        help="run Firebase's Auth emulator, offline (prints its address)",
        description="Run the Firebase Authentication emulator of firebase-tools for a demo "
        "project, offline. Prints FIREBASE_AUTH_EMULATOR_HOST=HOST:PORT once it answers.",
    )
    emulator.add_argument("--port", type=int, default=9099, help="0 picks a free port")
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on")
    emulator.add_argument(
        "--project",
        default=DEMO_FIREBASE_PROJECT,
        help=f"its default project: a demo one, demo-... ({DEMO_FIREBASE_PROJECT}; "
        "LOYALTY_FIREBASE_PROJECT_ID of the API)",
    )
    emulator.set_defaults(handler=_cmd_auth_emulator)
