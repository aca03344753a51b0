"""The operator's command line: ``loyalty-worker <command> …``.

Each command is one ``_cmd_*`` function taking the parsed arguments and returning an exit code,
registered in ``build_parser``; heavy imports happen inside the command that needs them, so that
``--help`` and the other commands stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

DEFAULT_CUSTOMERS = 200
DEFAULT_SEED = 1
DEFAULT_ORGS = 2


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


def _sandbox_dataset(args: argparse.Namespace) -> dict[str, Any]:
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
        app = create_app(_sandbox_dataset(args), faults)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
