"""The operator's command line: ``loyalty-worker <command> …``.

Each command is one ``_cmd_*`` function taking the parsed arguments and returning an exit code,
beside the ``add_*`` function that builds its parser, in a module per group: ``local`` (the
sandbox, datasets, seeding, the emulator), ``runs`` (sync, demo), ``serve`` (the API, Flower),
``lookup`` (check-points, export), ``people`` (who may use the dashboard: grant, revoke,
list). Heavy imports happen inside the command that needs them, so that ``--help`` and the other
commands stay fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from loyalty_worker.cli import local, lookup, people, runs, serve

# In the order ``--help`` lists them.
_COMMANDS = (
    local.add_sandbox,
    local.add_dataset,
    runs.add_sync,
    runs.add_demo,
    serve.add_flower,
    local.add_seed_firestore,
    local.add_firestore_emulator,
    local.add_auth_emulator,
    serve.add_api,
    lookup.add_check_points,
    lookup.add_export,
    people.add_people,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loyalty-worker",
        description="Loyalty points sync for Alleaves, Alpine IQ and Firestore.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
