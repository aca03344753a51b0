"""Orgs as the API sees them: validated settings and webhook secret, cached for a minute.

Every authorised request names an org, and most read its settings: a short cache keeps that to
one Firestore read per org per minute, the same staleness the workers accept (``bootstrap``).
An org with no settings, or invalid ones, is remembered too, for a shorter while: a webhook
sender naming one again and again costs one read, not one read per delivery. The cache holds at
most ``max_entries`` orgs (the oldest go first), so made-up org ids cannot grow it without bound.

The webhook secret of an org is its settings document's ``alleaves.webhookSecret`` (next to the
org's other Alleaves credentials, read raw since ``OrgSettings`` does not model it); an org
without one falls back to ``LOYALTY_API_WEBHOOK_SECRETS``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.errors import SettingsInvalid, UnknownOrg
from loyalty_worker.logs import register_secret
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.profiles import OrgStore

CACHE_TTL_S = 60.0
MISSING_TTL_S = 15.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class OrgRecord:
    settings: OrgSettings
    webhook_secret: bytes | None

    @property
    def alleaves_location(self) -> str | None:
        alleaves = self.settings.alleaves
        if alleaves is None or alleaves.location_id is None:
            return None
        return str(alleaves.location_id)


# What the cache holds of an org: its record, or why it has none (re-raised, fresh, each time).
_Entry = OrgRecord | UnknownOrg | SettingsInvalid


class OrgDirectory:
    """Settings and secrets of orgs, cached for ``ttl_s`` (unknown or invalid orgs for
    ``missing_ttl_s``); also the look-up's ``PointsStore`` and the webhook's ``WebhookOrgs``."""

    def __init__(
        self,
        store: OrgStore,
        *,
        fallback_secrets: Mapping[str, SecretStr] | None = None,
        ttl_s: float = CACHE_TTL_S,
        missing_ttl_s: float = MISSING_TTL_S,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._fallback = dict(fallback_secrets or {})
        self._ttl_s = ttl_s
        self._missing_ttl_s = missing_ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        # org id -> (until when, entry), oldest first.
        self._cache: OrderedDict[str, tuple[float, _Entry]] = OrderedDict()

    def get(self, org_id: str) -> OrgRecord:
        """The org's record; UnknownOrg, SettingsInvalid or TransientError otherwise."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(org_id)
        entry = cached[1] if cached is not None and now < cached[0] else self._load(org_id, now)
        if isinstance(entry, OrgRecord):
            return entry
        # A fresh copy: raising the cached instance again would grow its traceback.
        raise type(entry)(*entry.args)

    def _load(self, org_id: str, now: float) -> _Entry:
        entry: _Entry
        try:  # TransientError is not cached: the next request tries again.
            document = self._store.get_settings_document(org_id)
            entry = OrgRecord(
                settings=OrgSettings.parse(org_id, document),
                webhook_secret=_webhook_secret(document.get("alleaves"))
                or self._fallback_secret(org_id),
            )
            ttl_s = self._ttl_s
            _register_secrets(entry)
        except (UnknownOrg, SettingsInvalid) as exc:
            entry, ttl_s = exc, self._missing_ttl_s
        with self._lock:
            self._cache.pop(org_id, None)
            self._cache[org_id] = (now + ttl_s, entry)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return entry

    def get_org_settings(self, org_id: str) -> OrgSettings:
        return self.get(org_id).settings

    def webhook_secret(self, org_id: str) -> bytes | None:
        return self.get(org_id).webhook_secret

    def alleaves_location(self, org_id: str) -> str | None:
        return self.get(org_id).alleaves_location

    def find_profiles(
        self, org_id: str, field: str, value: str, *, limit: int
    ) -> list[ProfileDocument]:
        return self._store.find_profiles(org_id, field, value, limit=limit)

    def _fallback_secret(self, org_id: str) -> bytes | None:
        secret = self._fallback.get(org_id)
        return secret.get_secret_value().encode() if secret is not None else None


def _register_secrets(record: OrgRecord) -> None:
    """The org's credentials and webhook secret are masked in every log line of the process."""
    for secret in record.settings.secrets():
        register_secret(secret)
    if record.webhook_secret is not None:
        register_secret(record.webhook_secret.decode(errors="replace"))


def _webhook_secret(alleaves: object) -> bytes | None:
    """The settings' ``alleaves.webhookSecret``, if the section is a map holding one."""
    secret = alleaves.get("webhookSecret") if isinstance(alleaves, Mapping) else None
    return secret.encode() if isinstance(secret, str) and secret else None
