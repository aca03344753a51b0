"""``loyalty-worker people grant|revoke|list`` over fakes: what it prints, and its exit codes."""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime

import pytest

from loyalty_worker import cli
from loyalty_worker.cli import people
from loyalty_worker.domain.access import Role
from loyalty_worker.errors import TransientError
from tests.fake_people import FakeAccounts, FakeMemberStore, FakeOrgs

ORG = "org-1"
NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
def accounts() -> FakeAccounts:
    found = FakeAccounts()
    found.add("ann@example.com", uid="u-ann")
    found.add("bob@example.com", uid="u-bob")
    return found


@pytest.fixture
def members() -> FakeMemberStore:
    return FakeMemberStore()


@pytest.fixture(autouse=True)
def os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "root")


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["people", *argv])


def run(
    argv: list[str],
    accounts: FakeAccounts,
    members: FakeMemberStore,
    *,
    now: datetime = NOW,
) -> int:
    """The command as ``main`` runs it, with the fakes in place of Firestore and Firebase."""
    args = parse(*argv)
    if args.action == "grant":
        return people.grant_command(
            args, accounts=accounts, members=members, orgs=FakeOrgs(ORG), now=now
        )
    if args.action == "revoke":
        return people.revoke_command(args, accounts=accounts, members=members)
    return people.list_command(args, members=members)


def test_the_parser_wires_each_action_to_its_handler() -> None:
    assert parse("grant", "a@b.c", "--org", ORG, "--role", "admin").handler is people._cmd_grant
    assert parse("revoke", "a@b.c", "--org", ORG).handler is people._cmd_revoke
    assert parse("list", "--org", ORG).handler is people._cmd_list


def test_an_unknown_role_is_an_argument_error_listing_the_roles(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse("grant", "ann@example.com", "--org", ORG, "--role", "owner")

    assert exited.value.code == 2
    assert "choose from viewer, reviewer, admin" in capsys.readouterr().err.replace("'", "")


def test_grant_confirms_in_one_line_and_records_the_os_user(
    accounts: FakeAccounts, members: FakeMemberStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["grant", "Ann@Example.com", "--org", ORG, "--role", "admin"], accounts, members)

    assert code == 0
    assert capsys.readouterr().out == "ann@example.com is now admin of org org-1\n"
    [member] = members.members_of(ORG)
    assert (member.uid, member.role, member.granted_by, member.granted_at) == (
        "u-ann",
        Role.ADMIN,
        "cli:root",
        NOW,
    )


def test_granting_the_role_held_again_says_so(
    accounts: FakeAccounts, members: FakeMemberStore, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["grant", "ann@example.com", "--org", ORG, "--role", "admin"], accounts, members)
    later = datetime(2026, 3, 2, tzinfo=UTC)

    code = run(
        ["grant", "ann@example.com", "--org", ORG, "--role", "admin"], accounts, members, now=later
    )

    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "ann@example.com is already admin of org org-1 "
        "(granted by cli:root at 2026-03-01 12:30:00 UTC)"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["grant", "new@example.com", "--org", ORG, "--role", "viewer"],
            "people grant: no Markitbot account has the e-mail new@example.com; "
            "the person signs up in Markitbot first",
        ),
        (
            ["grant", "ann@example.com", "--org", "org-9", "--role", "viewer"],
            "people grant: unknown org 'org-9': it has no loyalty settings "
            "(loyalty_settings/org-9)",
        ),
        (
            ["grant", "not-an-email", "--org", ORG, "--role", "viewer"],
            "people grant: 'not-an-email' is not an e-mail address",
        ),
        (
            ["revoke", "bob@example.com", "--org", ORG],
            "people revoke: bob@example.com is not a member of org org-1: nothing to revoke",
        ),
    ],
)
def test_a_refusal_says_why_on_stderr_and_exits_2(
    argv: list[str],
    message: str,
    accounts: FakeAccounts,
    members: FakeMemberStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run(argv, accounts, members)

    out, err = capsys.readouterr()
    assert code == 2
    assert (out, err) == ("", message + "\n")


def test_the_last_admin_cannot_be_revoked_until_another_is_granted(
    accounts: FakeAccounts, members: FakeMemberStore, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["grant", "ann@example.com", "--org", ORG, "--role", "admin"], accounts, members)

    refused = run(["revoke", "ann@example.com", "--org", ORG], accounts, members)
    assert "last admin of org org-1" in capsys.readouterr().err
    run(["grant", "bob@example.com", "--org", ORG, "--role", "admin"], accounts, members)
    revoked = run(["revoke", "ann@example.com", "--org", ORG], accounts, members)

    assert (refused, revoked) == (2, 0)
    assert capsys.readouterr().out.splitlines()[-1] == (
        "ann@example.com is no longer admin of org org-1"
    )


def test_list_prints_a_table_by_email(
    accounts: FakeAccounts, members: FakeMemberStore, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["grant", "bob@example.com", "--org", ORG, "--role", "reviewer"], accounts, members)
    run(["grant", "ann@example.com", "--org", ORG, "--role", "admin"], accounts, members)
    capsys.readouterr()

    code = run(["list", "--org", ORG], accounts, members)

    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "E-MAIL           ROLE      GRANTED BY  GRANTED AT",
        "ann@example.com  admin     cli:root    2026-03-01 12:30:00 UTC",
        "bob@example.com  reviewer  cli:root    2026-03-01 12:30:00 UTC",
    ]


def test_list_of_an_org_without_people_says_so(
    accounts: FakeAccounts, members: FakeMemberStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["list", "--org", ORG], accounts, members) == 0
    assert capsys.readouterr().out == "no one has a role in org org-1\n"


def test_firestore_unreachable_is_a_failure_not_a_refusal(
    accounts: FakeAccounts, members: FakeMemberStore, capsys: pytest.CaptureFixture[str]
) -> None:
    members.error = TransientError("firestore", "read the people of org org-1: unavailable")

    code = run(["list", "--org", ORG], accounts, members)

    assert code == 1
    assert capsys.readouterr().err == (
        "people list: firestore: read the people of org org-1: unavailable\n"
    )


def test_the_operator_falls_back_when_the_os_names_no_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_user() -> str:
        raise OSError("no login name")

    monkeypatch.setattr(getpass, "getuser", no_user)

    assert people.operator() == "cli:unknown"


def test_main_wires_the_commands_to_the_stores_and_accounts_it_builds(
    accounts: FakeAccounts,
    members: FakeMemberStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built: list[str] = []

    def stores(settings: object) -> tuple[FakeMemberStore, FakeOrgs]:
        built.append("stores")
        return members, FakeOrgs(ORG)

    def firebase(settings: object) -> FakeAccounts:
        built.append("accounts")
        return accounts

    monkeypatch.setattr(people, "_stores", stores)
    monkeypatch.setattr(people, "_accounts", firebase)
    before = datetime.now(UTC)

    codes = [
        cli.main(["people", "grant", "ann@example.com", "--org", ORG, "--role", "admin"]),
        cli.main(["people", "grant", "bob@example.com", "--org", ORG, "--role", "viewer"]),
        cli.main(["people", "revoke", "bob@example.com", "--org", ORG]),
        cli.main(["people", "list", "--org", ORG]),
    ]

    assert codes == [0, 0, 0, 0]
    assert built == ["stores", "accounts"] * 3 + ["stores"]
    [member] = members.members_of(ORG)
    assert before <= member.granted_at <= datetime.now(UTC)
    assert capsys.readouterr().out.splitlines()[-1].startswith("ann@example.com  admin")
