"""People: Markitbot's accounts (Firebase Authentication), their roles per org, and their
dashboard sessions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from loyalty_worker.domain.access import Member, Role


@dataclass(frozen=True, slots=True)
class Account:
    """A Markitbot account (a Firebase Authentication user)."""

    uid: str
    email: str
    disabled: bool = False


class SignInRefused(Exception):
    """An ID token that signs no one in: expired, revoked, of another project, malformed, or of
    a disabled account. ``reason`` says which, in words a person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Accounts(Protocol):
    """Markitbot's accounts, as Firebase Authentication keeps them."""

    def verify(self, id_token: str) -> Account:
        """The account an ID token was issued to, checked once: signature, project, expiry and
        revocation; SignInRefused otherwise (TransientError when Firebase is unreachable)."""
        ...

    def by_email(self, email: str) -> Account | None:
        """The account with this e-mail address, or None."""
        ...


class MemberStore(Protocol):
    """``loyalty_members``: each person's role in each org."""

    def roles_of(self, uid: str) -> dict[str, Role]:
        """The person's role in each org they belong to, by org id."""
        ...

    def members_of(self, org_id: str) -> list[Member]:
        """The org's people, by e-mail."""
        ...

    def put_member(self, member: Member) -> None:
        """Grant (or change) a person's role in an org."""
        ...

    def remove_member(self, org_id: str, uid: str) -> bool:
        """Revoke a person's role in an org; whether they had one."""
        ...
