"""Phone numbers: normalised for Alpine IQ look-ups, masked everywhere people read."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

# ASCII digits only: ``\d`` also matches Arabic-Indic, Devanagari or full-width digits, which
# are no phone number (and would fail the ASCII encoding of the ``phoneHash``).
_NON_DIGITS = re.compile(r"[^0-9]")
# Masking, though, matches any digits: hiding too much is harmless, except inside an id that
# people look for. A UUID (every Celery task id) is no phone, yet about one uuid4 in 70 holds
# ten digits in a row (``5d9114958509``): it is left whole, or the worker's log would name
# another task (``...-5d***-***-8509``) than the one Flower, the result backend or a test knows.
_PHONE_LIKE = re.compile(
    r"(?P<uuid>\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b)"
    r"|(?<!\d)(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?(?P<last4>\d{4})(?!\d)"
)


def normalize_phone(raw: str | None) -> str | None:
    """Ten US digits, or None ("no phone") for anything that is not a US number."""
    if not raw:
        return None
    digits = _NON_DIGITS.sub("", raw)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits if len(digits) == 10 else None


def phone_hash(phone10: str, key: bytes) -> str:
    """A profile's ``phoneHash``: HMAC-SHA256 of the 10-digit phone, hex.

    Keyed rather than a bare SHA-256: ten digits are few enough to hash them all in minutes, so an
    unkeyed hash would put every customer's phone within reach of anyone who can read profiles.
    """
    return hmac.new(key, b"phone:v1:" + phone10.encode("ascii"), hashlib.sha256).hexdigest()


def phone_key_id(key: bytes) -> str:
    """A short, non-secret fingerprint of a ``phoneHash`` key: the profile's ``phoneHashKeyId``.

    Stored beside each ``phoneHash`` so that a worker and an API holding different keys can tell
    (the look-up by hash would otherwise just miss). Eight hex digits of an HMAC under the key:
    it names the key without revealing it.
    """
    return hmac.new(key, b"loyalty-phone-hash-key-id", hashlib.sha256).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class PhoneHash:
    """A customer's ``phoneHash`` under the key ``key_id`` names; ``value`` None: no phone.

    Its text form ``{key_id}:{value}`` (``{key_id}:`` without a phone) travels in task
    messages. No ``PhoneHash`` at all means no key is configured: the profile's hash is left
    as it is.
    """

    key_id: str
    value: str | None

    @classmethod
    def of(cls, phone10: str | None, key: bytes) -> PhoneHash:
        return cls(phone_key_id(key), phone_hash(phone10, key) if phone10 else None)

    def to_text(self) -> str:
        return f"{self.key_id}:{self.value or ''}"

    @classmethod
    def from_text(cls, text: str | None) -> PhoneHash | None:
        """The text form back; None for none, or for a bare hash (an older worker's message,
        whose key is unknown: the profile's hash is then left alone)."""
        if not text or ":" not in text:
            return None
        key_id, _, value = text.partition(":")
        return cls(key_id, value or None)


def mask_phone(raw: str | None) -> str:
    """Only the last four digits show: ``***-***-1234``."""
    digits = _NON_DIGITS.sub("", raw or "")
    if len(digits) < 4:
        return "***-***-****"
    return f"***-***-{digits[-4:]}"


def mask_phones_in(text: str) -> str:
    """Mask every phone-like run of digits inside free text (log lines, error messages); a
    UUID is left whole."""
    return _PHONE_LIKE.sub(lambda m: m["uuid"] or f"***-***-{m['last4']}", text)


class Reachability:
    """Whether a customer's phone can reach them (``reachability``): the rule, in order.

    - ``none``: no phone at all (missing or blank);
    - ``invalid``: not a US number (``normalize_phone`` gives None), or an area code or
      exchange starting with 0 or 1, which the North American plan never assigns;
    - ``placeholder``: a number staff type when the customer gives none: one digit repeated
      (``7777777777``), a straight run (``0123456789``, ``1234567890``), a line number of
      ``0000``, ``1234`` or ``2345``, or a fictional ``555-01xx`` number;
    - ``usable``: anything else.
    """

    USABLE = "usable"
    PLACEHOLDER = "placeholder"
    INVALID = "invalid"
    NONE = "none"


_PLACEHOLDER_LINES = frozenset({"0000", "1234", "2345"})
_RUNS = frozenset({"0123456789", "1234567890", "9876543210"})


def reachability(raw: str | None) -> str:
    """``Reachability`` of a phone as Alleaves shows it."""
    if raw is None or not raw.strip():
        return Reachability.NONE
    phone = normalize_phone(raw)
    if phone is None or phone[0] in "01" or phone[3] in "01":
        return Reachability.INVALID
    if (
        len(set(phone)) == 1
        or phone in _RUNS
        or phone[6:] in _PLACEHOLDER_LINES
        or (phone[3:6] == "555" and phone[6:8] == "01")
    ):
        return Reachability.PLACEHOLDER
    return Reachability.USABLE
