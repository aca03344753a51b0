"""Who a request comes from: a signed-in person (their server-side session) or a machine (its
API token), and the cookies and CSRF tokens that carry a session.

A person signs in with their Markitbot account (Firebase Authentication) on the sign-in page;
the API checks the ID token once and opens a session in Redis (``adapters.sessions``). The
cookie holds only the session's random id: ``__Host-lw_session`` (``Secure``, ``Path=/``, no
``Domain``) when ``LOYALTY_PUBLIC_URL`` is https, ``lw_session`` on a plain-http local
deployment; ``HttpOnly`` and ``SameSite=Strict`` always. The request's ``Host`` decides nothing.

Every change made with the cookie carries the session's CSRF token (the ``X-CSRF-Token`` header,
or a form's ``csrf`` field), checked by ``guard`` before any route runs. The sign-in form is
tied the same way to a short-lived pre-session (``SIGN_IN_COOKIE``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from loyalty_worker.api.auth import Caller
from loyalty_worker.domain.access import MACHINE, Action, Person
from loyalty_worker.ports.people import SessionRecord

SESSION_COOKIE = "lw_session"
SIGN_IN_COOKIE = "lw_signin"
SECURE_PREFIX = "__Host-"
SIGN_IN_TTL_S = 900


def served_securely(public_url: str) -> bool:
    """Whether people reach the dashboard over https (``LOYALTY_PUBLIC_URL``)."""
    return urlsplit(public_url).scheme == "https"


def cookie_name(base: str, public_url: str) -> str:
    """A cookie's name: ``__Host-`` prefixed when served over https (the browser then insists on
    ``Secure``, ``Path=/`` and no ``Domain``)."""
    return SECURE_PREFIX + base if served_securely(public_url) else base


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: a person with their session, or a machine with its API token."""

    person: Person | None = None
    session: SessionRecord | None = None
    token: Caller | None = None

    @classmethod
    def of_session(cls, session: SessionRecord) -> Principal:
        return cls(person=Person(session.uid, session.email), session=session)

    @classmethod
    def of_token(cls, caller: Caller) -> Principal:
        return cls(token=caller)

    @property
    def key(self) -> str:
        """What its rate limits count by: the person's uid, or the token's fingerprint."""
        if self.person is not None:
            return f"person:{self.person.uid}"
        return f"token:{self.token.fingerprint if self.token else '-'}"

    @property
    def name(self) -> str:
        """How the audit and the logs name it: e-mail and uid, or the token's fingerprint."""
        if self.person is not None:
            return self.person.audit_name
        return f"token {self.token.fingerprint if self.token else '-'}"

    @property
    def csrf(self) -> str:
        """The session's CSRF token, for its forms ('' for a token)."""
        return self.session.csrf if self.session is not None else ""

    def token_may(self, org_id: str, action: Action) -> bool:
        """For a machine: whether its token allows ``action`` for ``org_id``."""
        return self.token is not None and self.token.allows(org_id) and action in MACHINE


def csrf_valid(session: SessionRecord, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf, presented or "")
