"""Phone numbers: LOYALTY_RULES.md "Phone numbers"."""

import pytest

from loyalty_worker.domain.phone import mask_phone, mask_phones_in, normalize_phone, phone_hash


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("(555) 123-4567", "5551234567"),
        ("+1 555.123.4567", "5551234567"),
        ("15551234567", "5551234567"),
        ("5551234567", "5551234567"),
        ("25551234567", None),  # 11 digits not starting with 1
        ("12345", None),
        ("", None),
        (None, None),
        ("555-123-45678", None),
    ],
)
def test_normalize(raw: str | None, normalised: str | None) -> None:
    assert normalize_phone(raw) == normalised


def test_mask_shows_only_the_last_four_digits() -> None:
    assert mask_phone("(555) 123-4567") == "***-***-4567"
    assert mask_phone(None) == "***-***-****"


def test_mask_phones_inside_text() -> None:
    text = "lookup /v2/loyalty/lookup/5551234567 failed for +1 (555) 987-6543"
    masked = mask_phones_in(text)
    assert "5551234567" not in masked
    assert "987-6543" not in masked
    assert masked.count("***-***-") == 2


def test_phone_hash_is_keyed_and_stable() -> None:
    key = b"k" * 16
    digest = phone_hash("5551234567", key)
    assert digest == phone_hash("5551234567", key)  # the sync and the look-up agree
    assert len(digest) == 64 and "5551234567" not in digest
    assert digest != phone_hash("5551234568", key)
    assert digest != phone_hash("5551234567", b"j" * 16)  # no key, no dictionary of all numbers
