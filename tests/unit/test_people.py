"""Granting, revoking and listing people's roles per org (``services.people``), over fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loyalty_worker.domain.access import Member, Role
from loyalty_worker.services.people import (
    PeopleRefused,
    grant,
    normalise_email,
    parse_role,
    people_of,
    revoke,
)
from tests.fake_people import FakeAccounts, FakeMemberStore, FakeOrgs

ORG = "org-1"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def accounts() -> FakeAccounts:
    people = FakeAccounts()
    people.add("ann@example.com", uid="u-ann")
    people.add("bob@example.com", uid="u-bob")
    people.add("cy@example.com", uid="u-cy")
    return people


@pytest.fixture
def members() -> FakeMemberStore:
    return FakeMemberStore()


ORGS = FakeOrgs(ORG, "org-2")


def give(
    accounts: FakeAccounts,
    members: FakeMemberStore,
    email: str,
    role: Role | str,
    *,
    org: str = ORG,
    by: str = "cli:root",
    now: datetime = NOW,
) -> Member:
    return grant(accounts, members, ORGS, email=email, org_id=org, role=role, by=by, now=now)


def refusal(excinfo: pytest.ExceptionInfo[PeopleRefused]) -> str:
    return excinfo.value.message


def test_a_grant_stores_the_account_uid_and_normalised_email(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    member = give(accounts, members, "  Ann@Example.COM ", "reviewer")

    assert member == Member(ORG, "u-ann", "ann@example.com", Role.REVIEWER, "cli:root", NOW)
    assert members.members_of(ORG) == [member]
    assert members.roles_of("u-ann") == {ORG: Role.REVIEWER}


def test_a_person_holds_one_role_in_each_of_several_orgs(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    give(accounts, members, "ann@example.com", Role.ADMIN)
    give(accounts, members, "ann@example.com", Role.VIEWER, org="org-2")
    give(accounts, members, "ann@example.com", Role.REVIEWER, org="org-2")

    assert members.roles_of("u-ann") == {ORG: Role.ADMIN, "org-2": Role.REVIEWER}
    assert [m.role for m in people_of(members, "org-2")] == [Role.REVIEWER]


def test_granting_the_role_held_again_keeps_the_first_grant(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    first = give(accounts, members, "bob@example.com", "viewer", by="cli:ann")
    again = give(accounts, members, "bob@example.com", "viewer", now=NOW + timedelta(days=1))

    assert again == first
    assert members.writes == 1


def test_an_email_no_account_has_is_refused_with_what_to_do(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    with pytest.raises(PeopleRefused) as refused:
        give(accounts, members, "new@example.com", "viewer")

    assert refusal(refused) == (
        "no Markitbot account has the e-mail new@example.com; "
        "the person signs up in Markitbot first"
    )
    assert members.documents == {}


def test_a_disabled_account_is_refused(accounts: FakeAccounts, members: FakeMemberStore) -> None:
    accounts.add("gone@example.com", disabled=True)

    with pytest.raises(PeopleRefused, match=r"gone@example\.com is disabled"):
        give(accounts, members, "gone@example.com", "viewer")


@pytest.mark.parametrize("role", ["owner", "", "admins"])
def test_an_unknown_role_is_refused_listing_the_roles(
    role: str, accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    with pytest.raises(PeopleRefused) as refused:
        give(accounts, members, "ann@example.com", role)

    assert refusal(refused) == f"unknown role {role!r}: the roles are viewer, reviewer, admin"


def test_roles_are_read_in_any_case() -> None:
    assert parse_role(" Admin ") is Role.ADMIN


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "an e-mail address is needed"),
        ("   ", "an e-mail address is needed"),
        ("ann", "'ann' is not an e-mail address"),
        ("ann @example.com", "'ann @example.com' is not an e-mail address"),
        ("a@b@example.com", "'a@b@example.com' is not an e-mail address"),
    ],
)
def test_what_is_not_an_email_is_refused(email: str, message: str) -> None:
    with pytest.raises(PeopleRefused) as refused:
        normalise_email(email)

    assert refusal(refused) == message


def test_an_org_without_loyalty_settings_is_refused(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    with pytest.raises(PeopleRefused) as refused:
        give(accounts, members, "ann@example.com", "admin", org="org-9")

    assert refusal(refused) == (
        "unknown org 'org-9': it has no loyalty settings (loyalty_settings/org-9)"
    )


@pytest.mark.parametrize("org", ["", " ", "a/b", "org 1", "-org"])
def test_what_cannot_be_an_org_id_is_refused_everywhere(
    org: str, accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    with pytest.raises(PeopleRefused, match="org"):
        give(accounts, members, "ann@example.com", "admin", org=org)
    with pytest.raises(PeopleRefused, match="org"):
        revoke(accounts, members, email="ann@example.com", org_id=org)
    with pytest.raises(PeopleRefused, match="org"):
        people_of(members, org)


def test_revoke_removes_the_membership_and_says_whose(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    give(accounts, members, "ann@example.com", "admin")
    bob = give(accounts, members, "bob@example.com", "reviewer")

    removed = revoke(accounts, members, email="BOB@example.com", org_id=ORG)

    assert removed == bob
    assert [m.uid for m in people_of(members, ORG)] == ["u-ann"]


def test_revoking_someone_who_is_not_a_member_is_refused(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    give(accounts, members, "bob@example.com", "viewer", org="org-2")

    with pytest.raises(PeopleRefused) as refused:
        revoke(accounts, members, email="bob@example.com", org_id=ORG)
    with pytest.raises(PeopleRefused, match="not a member"):
        revoke(accounts, members, email="nobody@example.com", org_id=ORG)

    assert refusal(refused) == "bob@example.com is not a member of org org-1: nothing to revoke"
    assert members.roles_of("u-bob") == {"org-2": Role.VIEWER}


def test_a_member_whose_account_is_gone_is_revoked_by_the_recorded_email(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    give(accounts, members, "ann@example.com", "admin")
    give(accounts, members, "cy@example.com", "viewer")
    del accounts.accounts["cy@example.com"]

    removed = revoke(accounts, members, email="cy@example.com", org_id=ORG)

    assert removed.uid == "u-cy"
    assert members.roles_of("u-cy") == {}


def test_a_member_whose_email_changed_is_revoked_by_the_new_one(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    give(accounts, members, "cy@example.com", "viewer")
    del accounts.accounts["cy@example.com"]
    accounts.add("cy.new@example.com", uid="u-cy")

    assert revoke(accounts, members, email="cy.new@example.com", org_id=ORG).uid == "u-cy"


def test_the_last_admin_is_neither_revoked_nor_lowered(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    give(accounts, members, "ann@example.com", "admin")
    give(accounts, members, "bob@example.com", "reviewer")

    with pytest.raises(PeopleRefused) as revoked:
        revoke(accounts, members, email="ann@example.com", org_id=ORG)
    with pytest.raises(PeopleRefused) as lowered:
        give(accounts, members, "ann@example.com", "reviewer")

    assert refusal(revoked) == (
        "ann@example.com is the last admin of org org-1: grant admin to someone else first, "
        "then revoke their role"
    )
    assert refusal(lowered).endswith("then lower their role")
    assert members.roles_of("u-ann") == {ORG: Role.ADMIN}


def test_an_admin_goes_once_another_admin_is_granted(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    give(accounts, members, "ann@example.com", "admin")
    give(accounts, members, "bob@example.com", "admin")

    give(accounts, members, "ann@example.com", "viewer")
    with pytest.raises(PeopleRefused, match="last admin"):
        revoke(accounts, members, email="bob@example.com", org_id=ORG)

    assert {m.email: m.role for m in people_of(members, ORG)} == {
        "ann@example.com": Role.VIEWER,
        "bob@example.com": Role.ADMIN,
    }


def test_an_admin_of_another_org_does_not_count(
    accounts: FakeAccounts, members: FakeMemberStore
) -> None:
    give(accounts, members, "ann@example.com", "admin")
    give(accounts, members, "bob@example.com", "admin", org="org-2")

    with pytest.raises(PeopleRefused, match="last admin of org org-1"):
        revoke(accounts, members, email="ann@example.com", org_id=ORG)


def test_people_are_listed_by_email(accounts: FakeAccounts, members: FakeMemberStore) -> None:
    for email in ("cy@example.com", "ann@example.com", "bob@example.com"):
        give(accounts, members, email, "viewer")

    assert [m.email for m in people_of(members, ORG)] == [
        "ann@example.com",
        "bob@example.com",
        "cy@example.com",
    ]
    assert people_of(members, "org-2") == []
