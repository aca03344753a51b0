"""Orgs as the API sees them: validated settings and webhook secret, cached for a minute.

Every authorised request names an org, and most read its settings: a short cache keeps that to
one Firestore read per org per minute, the same staleness the workers accept (``bootstrap``).

The webhook secret of an org is its settings document's ``alleaves.webhookSecret`` (next to the
org's other Alleaves credentials, read raw since ``OrgSettings`` does not model it); an org
without one falls back to ``LOYALTY_API_WEBHOOK_SECRETS``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports import OrgStore

CACHE_TTL_S = 60.0


@dataclass(frozen=True, slots=True)
class OrgRecord:
    settings: OrgSettings
    webhook_secret: bytes | None


class OrgDirectory:
    """Settings and secrets of orgs, cached for ``ttl_s``; also the look-up's ``PointsStore`` and
    the webhook's ``WebhookSecrets``."""

    def __init__(
        self,
        store: OrgStore,
        *,
        fallback_secrets: Mapping[str, SecretStr] | None = None,
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._fallback = dict(fallback_secrets or {})
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, OrgRecord]] = {}

    def get(self, org_id: str) -> OrgRecord:
        """The org's record; UnknownOrg, SettingsInvalid or TransientError otherwise."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(org_id)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        document = self._store.get_settings_document(org_id)
        record = OrgRecord(
            settings=OrgSettings.parse(org_id, document),
            webhook_secret=_document_secret(document) or self._fallback_secret(org_id),
        )
        with self._lock:
            self._cache[org_id] = (now, record)
        return record

    def get_org_settings(self, org_id: str) -> OrgSettings:
        return self.get(org_id).settings

    def webhook_secret(self, org_id: str) -> bytes | None:
        return self.get(org_id).webhook_secret

    def find_profiles(
        self, org_id: str, field: str, value: str, *, limit: int
    ) -> list[dict[str, Any]]:
        return self._store.find_profiles(org_id, field, value, limit=limit)

    def _fallback_secret(self, org_id: str) -> bytes | None:
        secret = self._fallback.get(org_id)
        return secret.get_secret_value().encode() if secret is not None else None


def _document_secret(document: Mapping[str, Any]) -> bytes | None:
    alleaves = document.get("alleaves")
    secret = alleaves.get("webhookSecret") if isinstance(alleaves, Mapping) else None
    return secret.encode() if isinstance(secret, str) and secret else None
