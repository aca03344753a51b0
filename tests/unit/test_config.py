"""Process settings: keys and passwords are checked without ever being echoed."""

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
    key = "phone-key-Mn3Bv5Cx7Zl9Kj1"
    assert Settings(phone_hash_key=key).phone_key == key.encode()
    assert Settings().phone_key is None


@pytest.mark.parametrize(
    "password", ["short-pw-1", "change-me-in-prod", "MyPassword-2026", "admin-admin-1"]
)
def test_a_short_or_placeholder_flower_password_is_refused_without_showing_it(
    password: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(flower_password=password)
    assert "flower_password" in str(caught.value)
    assert password not in str(caught.value)


def test_a_long_random_flower_password_is_taken() -> None:
    password = Settings(flower_password="q7Rk2mWx9TzL4v").flower_password
    assert password is not None and password.get_secret_value() == "q7Rk2mWx9TzL4v"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://app.alleaves.com/api",
        "app.alleaves.com/api",
        "https://u:p@app.alleaves.com/api",
        "https://x.test/api?x=1",
    ],
)
def test_a_base_url_that_is_not_a_plain_http_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(alleaves_base_url=url)
    assert "alleaves_base_url" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://loyalty.example.com", "https://loyalty.example.com"),
        ("https://loyalty.example.com/", "https://loyalty.example.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ],
)
def test_the_public_url_is_kept_as_scheme_and_host(url: str, kept: str) -> None:
    assert Settings(public_url=url).public_url == kept


def test_the_public_url_defaults_to_the_local_dashboard() -> None:
    assert Settings().public_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    "url",
    [
        "loyalty.example.com",
        "ftp://loyalty.example.com",
        "https://loyalty.example.com/dashboard",
        "https://loyalty.example.com/?next=/x",
        "https://loyalty.example.com/#top",
        "https://user:pw@loyalty.example.com",
        "https://loyalty.example.com:port",
    ],
)
def test_a_public_url_with_path_junk_is_refused(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(public_url=url)
    assert "public_url" in str(caught.value)
