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


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A person's dashboard session as the server keeps it (never its id: only the cookie holds
    that); ``key`` names it to list and end it, ``csrf`` is its forms' token."""

    key: str
    uid: str
    email: str
    csrf: str
    created_at: float
    seen_at: float


class SessionStore(Protocol):
    """Server-side sessions: each ends at sign-out, after an idle time and after an absolute
    time, and an admin can end a person's sessions."""

    def open(self, uid: str, email: str, now: float) -> tuple[str, SessionRecord]:
        """A new session: its id (for the cookie, shown once) and its record."""
        ...

    def use(self, session_id: str, now: float) -> SessionRecord | None:
        """The live session of a cookie's id, its idle time restarted; None when it ended."""
        ...

    def end(self, session_id: str) -> None:
        """End the session of a cookie's id (sign-out)."""
        ...

    def sessions_of(self, uid: str) -> list[SessionRecord]:
        """A person's live sessions, oldest first."""
        ...

    def end_sessions_of(self, uid: str) -> int:
        """End every session of a person; how many were live."""
        ...

    def open_sign_in(self, ttl_s: int) -> tuple[str, str]:
        """A sign-in form's pre-session: its id (for its cookie) and the form's CSRF token."""
        ...

    def take_sign_in(self, form_id: str) -> str | None:
        """The CSRF token of a sign-in form's pre-session, which ends here (one post a form)."""
        ...
