"""People and their roles per org: grant, revoke, list (the ``people`` command and the People
page).

A person is a Markitbot account (``ports.people.Accounts``), found by e-mail; their role in an
org is a membership (``ports.people.MemberStore``, ``loyalty_members/{orgId}_{uid}``). A person
may belong to several orgs, with one role in each. Every input a person types is checked here,
and every refusal is one ``PeopleRefused`` whose message says what to do:

- an e-mail that is not one, or that no Markitbot account has (they sign up in Markitbot first),
  or whose account is disabled;
- an unknown role (the message lists the roles), an org id that is not one, an org with no
  loyalty settings;
- a revoke of someone who is not a member;
- leaving an org without an admin: revoking its last admin, or lowering their role.

The last-admin check reads the org's people and then writes: two admins demoting each other at
the same moment could both pass it. People are granted by hand, so that race is left open.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Protocol

from loyalty_worker.domain.access import Member, Role
from loyalty_worker.errors import UnknownOrg
from loyalty_worker.ports.people import Account, Accounts, MemberStore

# The API's ORG_ID_PATTERN: an org id is also a Firestore document id.
_ORG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# One "@" with something either side and no space: Markitbot's accounts say the rest.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
ROLES = ", ".join(role.value for role in Role)


class PeopleRefused(Exception):
    """A grant, revoke or listing refused; ``message`` says why, in words a person can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OrgDirectory(Protocol):
    """The orgs that exist: those with a ``loyalty_settings/{orgId}`` document
    (``FirestoreProfileStore``)."""

    def get_settings_document(self, org_id: str) -> object:
        """The org's settings document; UnknownOrg when there is none."""
        ...


def normalise_email(text: str) -> str:
    """The e-mail as accounts are found by: trimmed, lower case; PeopleRefused if it is not one."""
    email = text.strip().lower()
    if not email:
        raise PeopleRefused("an e-mail address is needed")
    if not _EMAIL.fullmatch(email):
        raise PeopleRefused(f"{text.strip()!r} is not an e-mail address")
    return email


def parse_role(text: str) -> Role:
    """The role named (any case); PeopleRefused listing the roles otherwise."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise PeopleRefused(f"unknown role {text!r}: the roles are {ROLES}") from None


def check_org_id(org_id: str) -> str:
    """The org id; PeopleRefused when it cannot be one (empty, a slash, a space...)."""
    if not org_id.strip():
        raise PeopleRefused("an org is needed")
    if not _ORG_ID.fullmatch(org_id):
        raise PeopleRefused(
            f"{org_id!r} is not an org id (letters, digits, '.', '_' and '-', up to 128)"
        )
    return org_id


def grant(
    accounts: Accounts,
    members: MemberStore,
    orgs: OrgDirectory,
    *,
    email: str,
    org_id: str,
    role: Role | str,
    by: str,
    now: datetime,
) -> Member:
    """Give the person with this e-mail ``role`` in the org, or change the role they hold there.

    A person who already holds that role keeps their grant as it was, unwritten: the member
    returned then says who granted it and when (not ``by`` and ``now``). Lowering the role of the
    org's last admin is refused.
    """
    address = normalise_email(email)
    wanted = role if isinstance(role, Role) else parse_role(role)
    check_org_id(org_id)
    try:
        orgs.get_settings_document(org_id)
    except UnknownOrg:
        raise PeopleRefused(
            f"unknown org {org_id!r}: it has no loyalty settings (loyalty_settings/{org_id})"
        ) from None
    account = _account(accounts, address)
    people = members.members_of(org_id)
    current = next((m for m in people if m.uid == account.uid), None)
    if current is not None and current.role is wanted and current.email == address:
        return current
    if current is not None and wanted is not Role.ADMIN:
        _keep_an_admin(people, current, "lower their role")
    member = Member(org_id, account.uid, address, wanted, by, now)
    members.put_member(member)
    return member


def revoke(accounts: Accounts, members: MemberStore, *, email: str, org_id: str) -> Member:
    """Take the person's role in the org away; the membership removed.

    The person is found by their account's uid, or, when no account has that e-mail any more
    (deleted, or their e-mail changed), by the e-mail their grant recorded. Refused when they are
    not a member, or are the org's last admin.
    """
    address = normalise_email(email)
    check_org_id(org_id)
    account = accounts.by_email(address)
    people = members.members_of(org_id)
    member = next((m for m in people if account is not None and m.uid == account.uid), None)
    if member is None:
        member = next((m for m in people if m.email.casefold() == address), None)
    if member is None:
        raise PeopleRefused(f"{address} is not a member of org {org_id}: nothing to revoke")
    _keep_an_admin(people, member, "revoke their role")
    if not members.remove_member(org_id, member.uid):
        raise PeopleRefused(f"{address} is not a member of org {org_id}: nothing to revoke")
    return member


def people_of(members: MemberStore, org_id: str) -> list[Member]:
    """The org's people with their roles, by e-mail."""
    return members.members_of(check_org_id(org_id))


def _account(accounts: Accounts, email: str) -> Account:
    account = accounts.by_email(email)
    if account is None:
        raise PeopleRefused(
            f"no Markitbot account has the e-mail {email}; the person signs up in Markitbot first"
        )
    if account.disabled:
        raise PeopleRefused(
            f"the Markitbot account with the e-mail {email} is disabled; it is enabled again in "
            "Markitbot first"
        )
    return account


def _keep_an_admin(people: list[Member], member: Member, change: str) -> None:
    """Refuse a change that would leave the org without an admin."""
    if member.role is not Role.ADMIN:
        return
    if any(m.role is Role.ADMIN and m.uid != member.uid for m in people):
        return
    raise PeopleRefused(
        f"{member.email} is the last admin of org {member.org_id}: grant admin to someone else "
        f"first, then {change}"
    )
