"""Process settings: the phone-hash key is checked without ever being echoed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loyalty_worker.config import Settings


def test_a_short_phone_hash_key_is_refused_without_showing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(phone_hash_key="short-key-42")
    assert "phone_hash_key" in str(caught.value)
    assert "short-key-42" not in str(caught.value)


def test_the_phone_key_is_bytes_when_set_and_none_otherwise() -> None:
    assert Settings(phone_hash_key="k" * 20).phone_key == b"k" * 20
    assert Settings().phone_key is None
