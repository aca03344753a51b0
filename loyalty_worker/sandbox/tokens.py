"""Alleaves-style session tokens: real HS256 JWTs, so clients read ``exp`` as they would live."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import TypedDict, cast

_HEADER = {"alg": "HS256", "typ": "JWT"}


class SessionClaims(TypedDict):
    """What an Alleaves session token says: who logged in, for which org, until when."""

    sub: str
    id_user: int
    id_company: int
    org: str
    iat: int
    exp: int


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signing_input: str) -> str:
    return _encode(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def issue_token(secret: bytes, claims: SessionClaims) -> str:
    """A compact JWT carrying ``claims``, signed with ``secret``."""
    header = _encode(json.dumps(_HEADER, separators=(",", ":")).encode())
    payload = _encode(json.dumps(dict(claims), separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{_sign(secret, signing_input)}"


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header's value; "" for any other."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def signed_claims(secret: bytes, token: str) -> SessionClaims | None:
    """The claims of a token this secret signed, whether or not it has expired; else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header, payload, signature = parts
    expected = _sign(secret, f"{header}.{payload}")
    # Bytes, not str: compare_digest refuses non-ASCII text, and a header may carry any.
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    try:
        claims = json.loads(_decode(payload))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int | float):
        return None
    # Only issue_token signs with this secret: a valid signature vouches for the claims' shape.
    return cast("SessionClaims", claims)


def verify_token(secret: bytes, token: str, *, now: float) -> SessionClaims | None:
    """The claims of a token this secret signed and whose ``exp`` is still ahead; else None."""
    claims = signed_claims(secret, token)
    return claims if claims is not None and now < claims["exp"] else None
