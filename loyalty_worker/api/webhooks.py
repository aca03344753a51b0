"""Checks on Alleaves webhooks: the signature, the freshness, replays and bursts.

A delivery is accepted only when ``x-alleaves-signature`` is the hex HMAC-SHA256 of the raw body
under the org's secret, its ``timestamp`` (inside the signed body) is within the replay window
of now, and that signature was not seen before (Redis, kept as long as the timestamp could still
pass). Bursts (one order created, then updated twice) become one customer sync: the first event
claims the customer for the dedupe window and enqueues a sync that starts when the window ends,
so it reads every order the burst was about.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any

import redis

ORDER_EVENTS = frozenset({"order.created", "order.updated"})
CUSTOMER_EVENTS = frozenset({"customer.created", "customer.updated"})
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Epoch values above this are milliseconds (1e11 seconds is the year 5138).
_MILLISECONDS_FROM = 1e11


def normalize_signature(header: str) -> str | None:
    """Lower-case hex of the header (an optional ``sha256=`` prefix allowed), or None."""
    value = header.strip().lower()
    value = value.removeprefix("sha256=")
    return value if _HEX_SHA256.match(value) else None


def signature_matches(body: bytes, signature: str, secret: bytes) -> bool:
    """Constant-time comparison with the HMAC-SHA256 of the raw body."""
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def sign(body: bytes, secret: bytes) -> str:
    """The signature Alleaves sends for ``body`` (for tests and senders)."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def event_time(value: Any) -> float | None:
    """The event's ``timestamp`` as epoch seconds: numbers (s or ms) or ISO-8601; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                return None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    if isinstance(value, int | float):
        seconds = float(value)
        return seconds / 1000 if seconds >= _MILLISECONDS_FROM else seconds
    return None


def customer_of(event: str, data: dict[str, Any]) -> int | None:
    """The Alleaves customer an event is about; None for anonymous orders and other events."""
    if event in ORDER_EVENTS:
        candidate = data.get("id_customer")
    elif event in CUSTOMER_EVENTS:
        candidate = data.get("id_customer", data.get("id"))
    else:
        return None
    if isinstance(candidate, str) and candidate.isdigit():
        candidate = int(candidate)
    if isinstance(candidate, bool) or not isinstance(candidate, int) or candidate <= 0:
        return None
    return candidate


class WebhookGuard:
    """Seen signatures and queued customers, in Redis (shared by every API process)."""

    def __init__(self, client: redis.Redis, *, replay_window_s: int, dedupe_window_s: int) -> None:
        self._redis = client
        self._replay_window_s = replay_window_s
        self.dedupe_window_s = dedupe_window_s

    def first_delivery(self, org_id: str, signature: str) -> bool:
        """True the first time a signature is seen within twice the replay window."""
        key = f"loyalty:webhook:seen:{org_id}:{signature}"
        return bool(self._redis.set(key, "1", nx=True, ex=2 * self._replay_window_s))

    def forget_delivery(self, org_id: str, signature: str) -> None:
        """Let the sender's retry through: the delivery could not be acted on."""
        self._redis.delete(f"loyalty:webhook:seen:{org_id}:{signature}")

    def claim_customer(self, org_id: str, customer_id: int) -> bool:
        """True when no sync of this customer was enqueued by a webhook within the window."""
        if self.dedupe_window_s <= 0:
            return True
        key = f"loyalty:webhook:queued:{org_id}:{customer_id}"
        return bool(self._redis.set(key, "1", nx=True, ex=self.dedupe_window_s))

    def release_customer(self, org_id: str, customer_id: int) -> None:
        self._redis.delete(f"loyalty:webhook:queued:{org_id}:{customer_id}")
