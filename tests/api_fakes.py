"""Working in-memory stand-ins for the API's ports (``ports.WebhookLedger`` and friends).

Like ``tests/fakes.py``: each keeps the real adapter's semantics, and a contract test
(``tests/unit/test_webhook_ledger.py``) runs the same checks over the fake and the real one.
"""

from __future__ import annotations

from collections.abc import Mapping

from loyalty_worker.errors import SettingsInvalid, UnknownOrg


class ManualClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class InMemoryWebhookLedger:
    """``WebhookLedger`` over a dict of expiry times, expiring by ``clock`` like Redis keys."""

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock
        self.claims: dict[tuple[str, str, str], float] = {}

    def claim_delivery(self, org_id: str, signature: str, *, ttl_s: int) -> bool:
        return self._claim(("delivery", org_id, signature), ttl_s)

    def release_delivery(self, org_id: str, signature: str) -> None:
        self.claims.pop(("delivery", org_id, signature), None)

    def claim_customer(self, org_id: str, customer_id: int, *, ttl_s: int) -> bool:
        return self._claim(("customer", org_id, str(customer_id)), ttl_s)

    def release_customer(self, org_id: str, customer_id: int) -> None:
        self.claims.pop(("customer", org_id, str(customer_id)), None)

    def held(self, kind: str) -> list[tuple[str, str]]:
        """The live claims of one kind (``delivery`` or ``customer``): (org, signature or id)."""
        now = self._clock()
        return sorted(
            (org, what) for (k, org, what), ends in self.claims.items() if k == kind and ends > now
        )

    def _claim(self, key: tuple[str, str, str], ttl_s: int) -> bool:
        now = self._clock()
        expires = self.claims.get(key)
        if expires is not None and expires > now:
            return False
        self.claims[key] = now + ttl_s
        return True


class StaticWebhookSecrets:
    """``WebhookOrgs`` from mappings; an org missing from ``secrets`` is unknown (UnknownOrg),
    one in ``invalid`` has invalid settings (SettingsInvalid naming that field)."""

    def __init__(
        self,
        secrets: Mapping[str, bytes | None],
        *,
        locations: Mapping[str, str] | None = None,
        invalid: Mapping[str, str] | None = None,
    ) -> None:
        self._secrets = dict(secrets)
        self._locations = dict(locations or {})
        self._invalid = dict(invalid or {})
        self.asked: list[str] = []

    def webhook_secret(self, org_id: str) -> bytes | None:
        self.asked.append(org_id)
        if org_id in self._invalid:
            raise SettingsInvalid(org_id, self._invalid[org_id], "invalid")
        if org_id not in self._secrets:
            raise UnknownOrg(org_id)
        return self._secrets[org_id]

    def alleaves_location(self, org_id: str) -> str | None:
        return self._locations.get(org_id)
