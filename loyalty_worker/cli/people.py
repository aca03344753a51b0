"""``loyalty-worker people grant|revoke|list``: who may use an org's dashboard, and as what.

Each action is a function over the ports (``grant_command``, ``revoke_command``,
``list_command``), which the tests call with fakes; the ``_cmd_*`` handlers build the real
ones from the settings: Markitbot's Firestore for the memberships and the orgs, and Markitbot's
Firebase Authentication for the accounts (``_accounts``, the one place that builds them).
Exit codes: 0 done; 2 refused (the message on stderr says why and what to do); 1 Firestore or
Firebase failed.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from loyalty_worker.cli.arguments import Commands
from loyalty_worker.domain.access import Role

if TYPE_CHECKING:  # imported by the command itself: --help stays fast
    from loyalty_worker.adapters.firestore import FirestoreProfileStore
    from loyalty_worker.adapters.members import FirestoreMemberStore
    from loyalty_worker.config import Settings
    from loyalty_worker.ports.people import Accounts, MemberStore
    from loyalty_worker.services.people import OrgDirectory

ROLES = tuple(role.value for role in Role)
_HEADER = ("E-MAIL", "ROLE", "GRANTED BY", "GRANTED AT")


def operator() -> str:
    """Who grants from the command line, for ``grantedBy``: ``cli:`` and the OS user."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name, no passwd entry (some containers)
        user = "unknown"
    return f"cli:{user}"


def grant_command(
    args: argparse.Namespace,
    *,
    accounts: Accounts,
    members: MemberStore,
    orgs: OrgDirectory,
    now: datetime,
) -> int:
    """Give ``args.email`` the role ``args.role`` in ``args.org``; one line says what was done."""
    from loyalty_worker.services.people import grant

    def act() -> str:
        member = grant(
            accounts,
            members,
            orgs,
            email=args.email,
            org_id=args.org,
            role=args.role,
            by=operator(),
            now=now,
        )
        if member.granted_at != now:
            return (
                f"{member.email} is already {member.role} of org {member.org_id} "
                f"(granted by {member.granted_by} at {_when(member.granted_at)})"
            )
        return f"{member.email} is now {member.role} of org {member.org_id}"

    return _answer("grant", act)


def revoke_command(args: argparse.Namespace, *, accounts: Accounts, members: MemberStore) -> int:
    """Take ``args.email``'s role in ``args.org`` away."""
    from loyalty_worker.services.people import revoke

    def act() -> str:
        member = revoke(accounts, members, email=args.email, org_id=args.org)
        return f"{member.email} is no longer {member.role} of org {member.org_id}"

    return _answer("revoke", act)


def list_command(args: argparse.Namespace, *, members: MemberStore) -> int:
    """The org's people as a table: e-mail, role, granted by, granted at (UTC)."""
    from loyalty_worker.services.people import people_of

    def act() -> str:
        rows = [
            (m.email, m.role.value, m.granted_by, _when(m.granted_at))
            for m in people_of(members, args.org)
        ]
        if not rows:
            return f"no one has a role in org {args.org}"
        widths = [max(len(row[i]) for row in (_HEADER, *rows)) for i in range(len(_HEADER))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in (_HEADER, *rows)
        )

    return _answer("list", act)


def _answer(command: str, act: Callable[[], str]) -> int:
    """Print what ``act`` did and return 0; a refusal on stderr, 2; a failure on stderr, 1."""
    from loyalty_worker.errors import LoyaltyError
    from loyalty_worker.services.people import PeopleRefused

    try:
        done = act()
    except PeopleRefused as exc:
        print(f"people {command}: {exc.message}", file=sys.stderr)
        return 2
    except LoyaltyError as exc:
        print(f"people {command}: {exc}", file=sys.stderr)
        return 1
    print(done)
    return 0


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _accounts(settings: Settings) -> Accounts:
    """Markitbot's accounts (Firebase Authentication): the one place the CLI builds them."""
    from loyalty_worker.adapters.accounts import FirebaseAccounts

    return FirebaseAccounts.from_settings(settings)


def _stores(settings: Settings) -> tuple[FirestoreMemberStore, FirestoreProfileStore]:
    """The memberships and the orgs, over one Firestore client."""
    from loyalty_worker.adapters.firestore import FirestoreProfileStore, build_firestore_client
    from loyalty_worker.adapters.members import FirestoreMemberStore

    client = build_firestore_client(settings.firestore_project)
    limits = {
        "timeout_s": settings.firestore_timeout_s,
        "retry_budget_s": settings.firestore_retry_s,
    }
    return FirestoreMemberStore(client, **limits), FirestoreProfileStore(client, **limits)


def _cmd_grant(args: argparse.Namespace) -> int:
    from loyalty_worker.config import get_settings

    settings = get_settings()
    members, orgs = _stores(settings)
    return grant_command(
        args, accounts=_accounts(settings), members=members, orgs=orgs, now=datetime.now(UTC)
    )


def _cmd_revoke(args: argparse.Namespace) -> int:
    from loyalty_worker.config import get_settings

    settings = get_settings()
    members, _ = _stores(settings)
    return revoke_command(args, accounts=_accounts(settings), members=members)


def _cmd_list(args: argparse.Namespace) -> int:
    from loyalty_worker.config import get_settings

    members, _ = _stores(get_settings())
    return list_command(args, members=members)


def add_people(commands: Commands) -> None:
    """``loyalty-worker people``."""
    people = commands.add_parser(
        "people",
        help="who may use an org's dashboard, and as what: grant, revoke, list roles",
        description="A person is a Markitbot account, named by its e-mail; each holds one role "
        "per org: viewer (reads, contact details masked), reviewer (also sees contact details "
        "and reviews discrepancies), admin (also triggers runs, exports contact details and "
        "manages people). Exit code 0: done; 2: refused (the message says why); 1: Firestore "
        "or Firebase failed.",
    )
    actions = people.add_subparsers(dest="action", required=True, metavar="ACTION")
    grant = actions.add_parser(
        "grant",
        help="give a person a role in an org (or change the one they hold)",
        description="The person signs up in Markitbot first: the e-mail must be their "
        "account's. An org's last admin keeps that role until another admin is granted.",
    )
    grant.add_argument("email", metavar="EMAIL", help="their Markitbot account's e-mail")
    grant.add_argument("--org", required=True)
    grant.add_argument("--role", required=True, choices=ROLES)
    grant.set_defaults(handler=_cmd_grant)
    revoke = actions.add_parser(
        "revoke",
        help="take a person's role in an org away",
        description="An org's last admin cannot be revoked: grant admin to someone else first.",
    )
    revoke.add_argument("email", metavar="EMAIL")
    revoke.add_argument("--org", required=True)
    revoke.set_defaults(handler=_cmd_revoke)
    listing = actions.add_parser("list", help="an org's people: e-mail, role, granted by, at")
    listing.add_argument("--org", required=True)
    listing.set_defaults(handler=_cmd_list)
