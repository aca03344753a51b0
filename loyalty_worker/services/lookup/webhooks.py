"""Receive an Alleaves webhook: verify it, then sync the customer it is about, once per burst.

A delivery is accepted only when ``x-alleaves-signature`` is the hex HMAC-SHA256 of the raw body
under the org's secret (its settings document's, else the configured fallback), its
``timestamp`` (inside the signed body) is a finite time within the replay window of now, and that
signature was not seen before (claimed for twice the window: as long as the timestamp could still
pass). An unknown org, an org without a secret and an org whose settings are invalid are all
refused like a bad signature: a sender learns nothing about the org from the answer.

The org is named outside the signed body (a header or the query), so it is bound through what is
signed: the secret is the org's own, and when the event names an Alleaves location
(``data.id_location``) and the org's settings name theirs, the two must be equal. Two orgs sharing
one secret are therefore told apart only by the location their events carry.
Bursts (one order created, then updated twice) become one customer sync: the first event claims
the customer for the dedupe window and enqueues a sync that starts when the window ends, so it
reads every order the burst was about. When the enqueue fails, both claims are released: the
sender's retry of that very delivery must go through.

The HTTP route reads the body and maps the outcome; this module knows nothing of HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, field_validator

from loyalty_worker.errors import SettingsInvalid, TransientError, UnknownOrg
from loyalty_worker.ports.triggers import Enqueuer
from loyalty_worker.ports.webhooks import WebhookLedger, WebhookOrgs

log = logging.getLogger(__name__)

ORDER_EVENTS = frozenset({"order.created", "order.updated"})
CUSTOMER_EVENTS = frozenset({"customer.created", "customer.updated"})
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Epoch values above this are milliseconds (1e11 seconds is the year 5138); above it once more
# as milliseconds, a value is no time at all.
_MILLISECONDS_FROM = 1e11
# The longest timestamp string read (an ISO-8601 time with microseconds and offset is 32).
_MAX_TIME_TEXT = 64


class WebhookRefused(Exception):
    """The delivery is not trusted: unsigned, badly signed, stale or replayed (HTTP 401)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class EventRecord(BaseModel):
    """What the receiver reads of an event's record (its ``data``): the ids it names.

    An id that is absent, or no usable id, is None, and the event is acknowledged without a
    sync: refused, it would only come back with the sender's retries. The record's other
    fields are not kept.
    """

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    id_customer: int | None = None
    id_location: str | None = None

    @field_validator("id", "id_customer", mode="before")
    @classmethod
    def _positive_id(cls, value: object) -> int | None:
        """A positive integer, or one written in decimal digits; None for anything else."""
        if isinstance(value, str) and value.isdecimal():
            try:
                value = int(value)
            except ValueError:  # more digits than Python converts
                return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            return None
        return value

    @field_validator("id_location", mode="before")
    @classmethod
    def _location_text(cls, value: object) -> str | None:
        """The location as text (Alleaves sends a number or text); None when it names none."""
        if isinstance(value, bool) or not isinstance(value, int | str):
            return None
        return str(value).strip() or None


class SignedEvent(Protocol):
    """An event as parsed from a verified body (the API's ``WebhookEvent``)."""

    @property
    def event(self) -> str: ...

    @property
    def data(self) -> EventRecord: ...

    @property
    def timestamp(self) -> int | float | str: ...


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What was done with an accepted delivery."""

    enqueued: bool
    task_id: str | None = None
    reason: str | None = None


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


def event_time(value: object) -> float | None:
    """The event's ``timestamp`` as epoch seconds: positive finite numbers (s or ms) or
    ISO-8601; None for anything else (``"nan"``, infinities, numbers too large for a time)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if len(text) > _MAX_TIME_TEXT:
            return None
        try:
            value = float(text)
        except ValueError:
            return _iso_time(text)
    if not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    if seconds >= _MILLISECONDS_FROM:
        seconds /= 1000
    return seconds if seconds < _MILLISECONDS_FROM else None


def _iso_time(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    except (ValueError, OverflowError):  # not a time, or one past datetime's range
        return None
    return seconds if 0 < seconds < _MILLISECONDS_FROM else None


def customer_of(event: str, record: EventRecord) -> int | None:
    """The Alleaves customer an event is about; None for anonymous orders and other events."""
    if event in ORDER_EVENTS:
        return record.id_customer
    if event in CUSTOMER_EVENTS:
        # A customer's own record names it by ``id``, unless it names an ``id_customer``.
        named = "id_customer" in record.model_fields_set
        return record.id_customer if named else record.id
    return None


class WebhookReceiver:
    """The webhook use case over its ports; one per API process."""

    def __init__(
        self,
        *,
        secrets: WebhookOrgs,
        ledger: WebhookLedger,
        enqueuer: Enqueuer,
        parse: Callable[[bytes], SignedEvent],
        replay_window_s: int,
        dedupe_window_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``parse`` turns a verified body into an event (raising its own invalid-input error)."""
        self._secrets = secrets
        self._ledger = ledger
        self._enqueuer = enqueuer
        self._parse = parse
        self._replay_window_s = replay_window_s
        self._dedupe_window_s = dedupe_window_s
        self._clock = clock

    def receive(self, org_id: str, signature_header: str | None, body: bytes) -> WebhookOutcome:
        """Verify the delivery, then enqueue its customer's sync unless one is queued already.

        Raises WebhookRefused for an untrusted delivery, whatever ``parse`` raises for a signed
        body that is no event, TransientError when the secret or the broker is unavailable.
        """
        signature = self._verified_signature(org_id, signature_header, body)
        event = self._parse(body)
        self._check_fresh(org_id, event.timestamp)
        self._check_location(org_id, event.data)
        if not self._ledger.claim_delivery(org_id, signature, ttl_s=2 * self._replay_window_s):
            log.warning("webhook for org %s refused: replayed delivery", org_id)
            raise WebhookRefused("this delivery was already received")
        customer_id = customer_of(event.event, event.data)
        if customer_id is None:
            return WebhookOutcome(
                enqueued=False, reason=f"event {event.event!r} names no customer to sync"
            )
        if not self._claim_customer(org_id, customer_id):
            return WebhookOutcome(
                enqueued=False, reason=f"a sync of customer {customer_id} is already queued"
            )
        task_id = self._enqueue(org_id, customer_id, signature)
        log.info(
            "webhook %s: org %s customer %d: sync enqueued (task %s)",
            event.event,
            org_id,
            customer_id,
            task_id,
        )
        return WebhookOutcome(enqueued=True, task_id=task_id)

    def _verified_signature(self, org_id: str, header: str | None, body: bytes) -> str:
        """The normalised signature, once it is known to be the org's HMAC of ``body``."""
        if not header:
            raise WebhookRefused("missing x-alleaves-signature")
        signature = normalize_signature(header)
        if signature is None:
            raise WebhookRefused("malformed x-alleaves-signature")
        try:
            secret = self._secrets.webhook_secret(org_id)
        except UnknownOrg:
            log.warning("webhook for unknown org %s refused", org_id)
            raise WebhookRefused("signature does not match") from None
        except SettingsInvalid as exc:
            # The operator learns why from the log; the sender, nothing about the org.
            log.error("webhook for org %s refused: %s", org_id, exc)
            raise WebhookRefused("signature does not match") from None
        if secret is None:
            log.warning("webhook for org %s refused: the org has no webhook secret", org_id)
            raise WebhookRefused("signature does not match")
        if not signature_matches(body, signature, secret):
            log.warning("webhook for org %s refused: bad signature", org_id)
            raise WebhookRefused("signature does not match")
        return signature

    def _check_fresh(self, org_id: str, timestamp: int | float | str) -> None:
        sent_at = event_time(timestamp)
        window = self._replay_window_s
        if sent_at is None or abs(self._clock() - sent_at) > window:
            log.warning("webhook for org %s refused: timestamp outside %d s", org_id, window)
            raise WebhookRefused(f"timestamp missing or more than {window} s from now")

    def _check_location(self, org_id: str, record: EventRecord) -> None:
        """A signed event naming another location than the org's is not this org's event."""
        named = record.id_location
        if named is None:
            return
        expected = self._secrets.alleaves_location(org_id)
        if expected is not None and named != expected:
            log.warning("webhook for org %s refused: event of another Alleaves location", org_id)
            raise WebhookRefused("the event does not belong to this org")

    def _claim_customer(self, org_id: str, customer_id: int) -> bool:
        if self._dedupe_window_s <= 0:
            return True
        return self._ledger.claim_customer(org_id, customer_id, ttl_s=self._dedupe_window_s)

    def _enqueue(self, org_id: str, customer_id: int, signature: str) -> str:
        try:
            return self._enqueuer.sync_customer(
                org_id, customer_id, delay_s=float(self._dedupe_window_s)
            )
        except TransientError:
            # Nothing was enqueued: let the sender's retry of this very delivery through.
            self._ledger.release_customer(org_id, customer_id)
            self._ledger.release_delivery(org_id, signature)
            raise
