"""Bearer tokens: who calls, and for which orgs.

The presented token is compared with every configured one, each in constant time over SHA-256
digests (equal lengths, so not even the length leaks), and the loop never stops early. Logs name
a caller by a short fingerprint of its token, never by the token.

``bearer_caller`` reads the ``Authorization`` header: ``guard`` calls it before any body is read,
and ``deps.caller`` hands the routes what it found.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from loyalty_worker.api.settings import ApiToken

log = logging.getLogger(__name__)

BEARER_CHALLENGE = 'Bearer realm="loyalty"'


class BearerRefused(Exception):
    """No bearer token, or one no caller has (HTTP 401 with ``challenge``)."""

    def __init__(self, detail: str, challenge: str) -> None:
        super().__init__(detail, challenge)
        self.detail = detail
        self.challenge = challenge


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller."""

    fingerprint: str
    grant: ApiToken

    def allows(self, org_id: str) -> bool:
        return self.grant.allows(org_id)


def fingerprint(token: str) -> str:
    """What logs show of a token: 8 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def authenticate(presented: str, grants: Sequence[ApiToken]) -> Caller | None:
    """The caller whose token is ``presented``, or None."""
    digest = hashlib.sha256(presented.encode()).digest()
    found: ApiToken | None = None
    for grant in grants:
        candidate = hashlib.sha256(grant.token.get_secret_value().encode()).digest()
        if hmac.compare_digest(digest, candidate) and found is None:
            found = grant
    return None if found is None else Caller(fingerprint(presented), found)


def bearer_caller(authorization: str | None, grants: Sequence[ApiToken]) -> Caller:
    """The caller of an ``Authorization: Bearer <token>`` header; BearerRefused otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise BearerRefused("missing bearer token", BEARER_CHALLENGE)
    found = authenticate(token, grants)
    if found is None:
        log.warning("refused a request with an unknown bearer token")
        raise BearerRefused("invalid bearer token", f'{BEARER_CHALLENGE}, error="invalid_token"')
    return found
