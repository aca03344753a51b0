"""The commands that read an org's loyalty: one customer's points, every profile's export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loyalty_worker.cli.arguments import Commands


def _cmd_check_points(args: argparse.Namespace) -> int:
    """Print a customer's loyalty by phone (calculated and Alpine IQ, reconciled) as JSON: the
    API's answer, the same model."""
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


def add_check_points(commands: Commands) -> None:
    """``loyalty-worker check-points``."""
    check = commands.add_parser(
        "check-points",
        help="print a customer's points by phone: calculated, Alpine IQ, reconciled (JSON)",
    )
    check.add_argument("--org", required=True)
    check.add_argument("--phone", required=True, help="a US phone number, any format")
    check.set_defaults(handler=_cmd_check_points)


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


def add_export(commands: Commands) -> None:
    """``loyalty-worker export``."""
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
