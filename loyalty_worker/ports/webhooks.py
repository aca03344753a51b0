"""Alleaves webhooks: each org's secret and location, and the claims shared by every API process."""

from __future__ import annotations

from typing import Protocol


class WebhookSecrets(Protocol):
    """The secret each org's Alleaves webhooks are signed with."""

    def webhook_secret(self, org_id: str) -> bytes | None:
        """The org's secret, None when it has none; UnknownOrg for an unknown org."""
        ...


class WebhookLedger(Protocol):
    """Claims shared by every API process (Redis): seen deliveries, customers being synced."""

    def claim_delivery(self, org_id: str, signature: str, *, ttl_s: int) -> bool:
        """True the first time this signature is claimed within ``ttl_s``."""
        ...

    def release_delivery(self, org_id: str, signature: str) -> None:
        """Forget a claimed delivery, so that the sender's retry is accepted."""
        ...

    def claim_customer(self, org_id: str, customer_id: int, *, ttl_s: int) -> bool:
        """True when no one claimed this customer within ``ttl_s``."""
        ...

    def release_customer(self, org_id: str, customer_id: int) -> None:
        """Forget a customer's claim."""
        ...


class WebhookOrgs(WebhookSecrets, Protocol):
    """An org's webhook secret, and the Alleaves location its signed events must name."""

    def alleaves_location(self, org_id: str) -> str | None:
        """The org's Alleaves ``locationId`` as text, None when its settings name none."""
        ...
