"""In-memory people for fast tests: Markitbot's accounts and each person's roles per org."""

from __future__ import annotations

from datetime import UTC, datetime

from loyalty_worker.domain.access import Member, Role, member_id
from loyalty_worker.ports.people import Account, SignInRefused


class FakeAccounts:
    """``ports.people.Accounts`` over a dict: ``add`` an account, sign in with ``token_of``."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.refused: dict[str, str] = {}

    def add(self, uid: str, email: str) -> Account:
        account = Account(uid, email)
        self.accounts[uid] = account
        return account

    @staticmethod
    def token_of(uid: str) -> str:
        """The ID token ``verify`` takes for the account (a JWT-shaped string naming it)."""
        import base64
        import json

        claims = base64.urlsafe_b64encode(json.dumps({"sub": uid}).encode()).decode().rstrip("=")
        return f"e30.{claims}.fake"

    def verify(self, id_token: str) -> Account:
        if id_token in self.refused:
            raise SignInRefused(self.refused[id_token])
        for uid, account in self.accounts.items():
            if id_token == self.token_of(uid):
                return account
        raise SignInRefused("this sign-in is not valid; sign in again")

    def by_email(self, email: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.email == email), None)


class FakeMemberStore:
    """``ports.people.MemberStore`` over a dict keyed by the membership's document id."""

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}

    def grant(self, org_id: str, account: Account, role: Role) -> None:
        self.put_member(
            Member(
                org_id, account.uid, account.email, role, "test", datetime(2026, 1, 1, tzinfo=UTC)
            )
        )

    def roles_of(self, uid: str) -> dict[str, Role]:
        return {m.org_id: m.role for m in self.members.values() if m.uid == uid}

    def members_of(self, org_id: str) -> list[Member]:
        return sorted(
            (m for m in self.members.values() if m.org_id == org_id), key=lambda m: m.email
        )

    def put_member(self, member: Member) -> None:
        self.members[member_id(member.org_id, member.uid)] = member

    def remove_member(self, org_id: str, uid: str) -> bool:
        return self.members.pop(member_id(org_id, uid), None) is not None
