"""Bearer tokens: who calls, and for which orgs.

The presented token is compared with every configured one, each in constant time over SHA-256
digests (equal lengths, so not even the length leaks), and the loop never stops early. Logs name
a caller by a short fingerprint of its token, never by the token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from loyalty_worker.api.settings import ApiToken


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
