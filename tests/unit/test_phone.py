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


def test_a_uuid_is_no_phone_but_a_phone_beside_it_is() -> None:
    task_id = "7e416224-c613-419a-b034-8401397c80d1"  # "034-8401397" reads as 034-840-1397
    assert mask_phones_in(f"task {task_id} started") == f"task {task_id} started"
    masked = mask_phones_in(f"{task_id}: 555-987-6543, {task_id.upper()} (555) 123-4567")
    assert masked == f"{task_id}: ***-***-6543, {task_id.upper()} ***-***-4567"


def test_phone_hash_is_keyed_and_stable() -> None:
    key = b"k" * 16
    digest = phone_hash("5551234567", key)
    assert digest == phone_hash("5551234567", key)  # the sync and the look-up agree
    assert len(digest) == 64 and "5551234567" not in digest
    assert digest != phone_hash("5551234568", key)
    assert digest != phone_hash("5551234567", b"j" * 16)  # no key, no dictionary of all numbers


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("1-800-555-0199", "8005550199"),  # 11 digits with a leading 1: the 1 is dropped
        (" 555 123 4567 ", "5551234567"),
        ("+44 20 7946 0958", None),  # 12 digits
        ("555 123 4567 x9", None),  # 11 digits not starting with 1
        ("555-CALL-NOW", None),  # 3 digits
        ("1555123456", "1555123456"),  # 10 digits are kept as they are
        ("155512345", None),  # 9 digits: too short even with the 1
    ],
)
def test_normalize_more_shapes(raw: str, normalised: str | None) -> None:
    assert normalize_phone(raw) == normalised


@pytest.mark.parametrize("raw", ["5551234567", "15551234567", "+1 555 123 4567", "555.123.4567"])
def test_mask_shows_the_last_four_digits_whatever_the_format(raw: str) -> None:
    masked = mask_phone(raw)
    assert masked == "***-***-4567"
    assert "555" not in masked and "123" not in masked
