"""Phone numbers: normalised for Alpine IQ look-ups, masked everywhere people read."""

from __future__ import annotations

import hashlib
import hmac
import re

_NON_DIGITS = re.compile(r"\D")
_PHONE_LIKE = re.compile(r"(?<!\d)(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?(\d{4})(?!\d)")


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


def mask_phone(raw: str | None) -> str:
    """Only the last four digits show: ``***-***-1234``."""
    digits = _NON_DIGITS.sub("", raw or "")
    if len(digits) < 4:
        return "***-***-****"
    return f"***-***-{digits[-4:]}"


def mask_phones_in(text: str) -> str:
    """Mask every phone-like run of digits inside free text (log lines, error messages)."""
    return _PHONE_LIKE.sub(lambda m: f"***-***-{m.group(1)}", text)
