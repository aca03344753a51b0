"""Working in-memory fakes of the people ports: Markitbot's accounts, the memberships, the orgs.

``FakeMemberStore`` keeps documents as Firestore would (``loyalty_members/{orgId}_{uid}``, wire
field names), so a test can store one a grant never would (an unknown role) and see it skipped,
as the contract test checks of both stores.
"""

from __future__ import annotations

import copy
import secrets
from datetime import UTC, datetime
from typing import Any

from loyalty_worker.domain.access import Member, Role, member_id
from loyalty_worker.errors import UnknownOrg
from loyalty_worker.ports.activity import ActivityRecord
from loyalty_worker.ports.people import Account, SignInRefused


class FakeAccounts:
    """``Accounts`` over a dict: accounts by e-mail, ID tokens issued by ``token_for``."""

    def __init__(self, *accounts: Account) -> None:
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, str] = {}
        # Raised by every call when set (Firebase unreachable: a ``TransientError``).
        self.error: Exception | None = None
        for account in accounts:
            self.accounts[account.email.lower()] = account

    def add(self, email: str, *, uid: str | None = None, disabled: bool = False) -> Account:
        """A new account with this e-mail (its uid made up unless given)."""
        account = Account(uid or f"uid-{secrets.token_hex(6)}", email, disabled)
        self.accounts[email.lower()] = account
        return account

    def token_for(self, account: Account) -> str:
        """An ID token that ``verify`` takes for this account."""
        token = f"token-{secrets.token_hex(8)}"
        self.tokens[token] = account.email.lower()
        return token

    def verify(self, id_token: str) -> Account:
        if self.error is not None:
            raise self.error
        email = self.tokens.get(id_token)
        account = self.accounts.get(email) if email is not None else None
        if account is None:
            raise SignInRefused("the sign-in is not valid: sign in again")
        if account.disabled:
            raise SignInRefused("this Markitbot account is disabled")
        return account

    def by_email(self, email: str) -> Account | None:
        if self.error is not None:
            raise self.error
        return self.accounts.get(email.strip().lower())


class FakeMemberStore:
    """``MemberStore`` over dicts keyed by document id, documents copied in and out.

    ``documents`` is public so tests can arrange and inspect documents directly; ``writes``
    counts the puts and removals that changed something.
    """

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.writes = 0
        # Raised by every call when set (Firestore unreachable: a ``TransientError``).
        self.error: Exception | None = None

    def roles_of(self, uid: str) -> dict[str, Role]:
        return {m.org_id: m.role for m in self._members() if m.uid == uid}

    def members_of(self, org_id: str) -> list[Member]:
        return sorted(
            (m for m in self._members() if m.org_id == org_id),
            key=lambda m: (m.email.casefold(), m.uid),
        )

    def put_member(self, member: Member) -> None:
        self._check()
        self.documents[member_id(member.org_id, member.uid)] = {
            "orgId": member.org_id,
            "uid": member.uid,
            "email": member.email,
            "role": member.role.value,
            "grantedBy": member.granted_by,
            "grantedAt": member.granted_at,
        }
        self.writes += 1

    def remove_member(self, org_id: str, uid: str) -> bool:
        self._check()
        removed = self.documents.pop(member_id(org_id, uid), None) is not None
        self.writes += removed
        return removed

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def _members(self) -> list[Member]:
        self._check()
        members = []
        for document in copy.deepcopy(list(self.documents.values())):
            try:
                role = Role(document["role"])
                members.append(
                    Member(
                        document["orgId"],
                        document["uid"],
                        document["email"],
                        role,
                        document["grantedBy"],
                        document["grantedAt"],
                    )
                )
            except (KeyError, ValueError):
                continue
        return members


class FakeOrgs:
    """The orgs that have loyalty settings (``get_settings_document``); UnknownOrg otherwise."""

    def __init__(self, *org_ids: str) -> None:
        self.org_ids = set(org_ids)

    def get_settings_document(self, org_id: str) -> dict[str, Any]:
        if org_id not in self.org_ids:
            raise UnknownOrg(org_id)
        return {"orgId": org_id}


def member(org_id: str, account: Account, role: Role) -> Member:
    """A membership as a grant stores it."""
    return Member(
        org_id, account.uid, account.email, role, "test", datetime(2026, 1, 1, tzinfo=UTC)
    )


class InMemoryActivityLog:
    """``ActivityLog`` over a list, newest last."""

    def __init__(self) -> None:
        self.records: list[ActivityRecord] = []

    def record_activity(self, record: ActivityRecord) -> None:
        self.records.append(record)

    def latest_activity(
        self, org_id: str, *, limit: int, since: datetime | None = None
    ) -> list[ActivityRecord]:
        kept = [
            r for r in self.records if r["orgId"] == org_id and (since is None or r["at"] >= since)
        ]
        return sorted(kept, key=lambda r: r["at"], reverse=True)[:limit]

    def delete_activity_before(self, cutoff: datetime, *, limit: int) -> int:
        old = [r for r in self.records if r["at"] < cutoff][:limit]
        self.records = [r for r in self.records if r not in old]
        return len(old)
