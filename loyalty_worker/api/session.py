"""The dashboard's session: a signed cookie holding the token's fingerprint, and CSRF tokens.

An admin pastes an API token once (``POST /dashboard/sign-in``); the cookie then holds
``{fingerprint, name, nonce, expires}`` signed with HMAC-SHA256, never the token. The
fingerprint is the token's full SHA-256: each request finds the grant whose token has it, so the
session is scoped to that token's orgs and ends when the token is removed from
``LOYALTY_API_TOKENS``. The signing key is derived from the configured tokens, so every API
process of a deployment agrees on it without another secret to configure, and changing the
tokens signs every session out.

CSRF: every form that changes anything carries ``HMAC(key, "csrf:" + nonce)``; the sign-in form
(before any session) is tied the same way to a short-lived pre-session cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict, cast

from starlette.requests import cookie_parser

from loyalty_worker.api.auth import Caller, fingerprint
from loyalty_worker.api.settings import ApiToken

COOKIE = "lw_session"
PRE_COOKIE = "lw_signin"
SESSION_TTL_S = 12 * 3600
PRE_TTL_S = 900
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
MAX_NAME = 60


class _Payload(TypedDict, total=False):
    """What a signed cookie holds: a session's fields, or a pre-session's nonce and expiry."""

    fp: str
    name: str
    nonce: str
    exp: float


@dataclass(frozen=True, slots=True)
class Session:
    caller: Caller
    name: str
    nonce: str

    @property
    def who(self) -> str:
        """How audit entries name the admin: the name given at sign-in, else the fingerprint."""
        return self.name or self.caller.fingerprint


def signing_key(grants: Sequence[ApiToken]) -> bytes:
    material = b"\0".join(sorted(g.token.get_secret_value().encode() for g in grants))
    return hmac.new(b"loyalty-dashboard-session", material, hashlib.sha256).digest()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sign(key: bytes, payload: _Payload) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(key, body, hashlib.sha256).hexdigest()
    return f"{body.decode()}.{mac}"


def _unsign(key: bytes, value: str, now: float) -> _Payload | None:
    body, _, mac = value.rpartition(".")
    expected = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(mac, expected):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body.encode()))
    except ValueError:
        return None
    if not isinstance(payload, dict) or float(payload.get("exp", 0)) < now:
        return None
    # Its MAC is the key's: this is a payload ``_sign`` wrote.
    return cast(_Payload, payload)


def new_session_cookie(grants: Sequence[ApiToken], token: str, name: str, now: float) -> str:
    payload: _Payload = {
        "fp": token_digest(token),
        "name": name.strip()[:MAX_NAME],
        "nonce": secrets.token_urlsafe(16),
        "exp": now + SESSION_TTL_S,
    }
    return _sign(signing_key(grants), payload)


def read_session(grants: Sequence[ApiToken], value: str | None, now: float) -> Session | None:
    """The session a cookie holds, while its token is still configured; None otherwise."""
    if not value or not grants:
        return None
    payload = _unsign(signing_key(grants), value, now)
    if payload is None:
        return None
    for grant in grants:
        token = grant.token.get_secret_value()
        if hmac.compare_digest(token_digest(token), str(payload.get("fp", ""))):
            return Session(
                Caller(fingerprint(token), grant),
                str(payload.get("name", "")),
                str(payload.get("nonce", "")),
            )
    return None


def csrf_token(grants: Sequence[ApiToken], nonce: str) -> str:
    return hmac.new(signing_key(grants), f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(grants: Sequence[ApiToken], nonce: str, presented: str | None) -> bool:
    if not nonce or not presented:
        return False
    return hmac.compare_digest(csrf_token(grants, nonce), presented)


def new_pre_session(grants: Sequence[ApiToken], now: float) -> str:
    return _sign(signing_key(grants), {"nonce": secrets.token_urlsafe(16), "exp": now + PRE_TTL_S})


def pre_session_nonce(grants: Sequence[ApiToken], value: str | None, now: float) -> str | None:
    if not value or not grants:
        return None
    payload = _unsign(signing_key(grants), value, now)
    return str(payload["nonce"]) if payload and "nonce" in payload else None


def cookie_caller(cookie_header: str | None, grants: Sequence[ApiToken]) -> Caller | None:
    """The caller of a ``Cookie`` header's session, None without a valid one (the request
    guard's way to let the dashboard's pages call their JSON routes)."""
    if not cookie_header:
        return None
    value = cookie_parser(cookie_header).get(COOKIE)
    session = read_session(grants, value, time.time())
    return session.caller if session is not None else None


def is_loopback(host: str | None) -> bool:
    return (host or "").lower() in LOOPBACK
