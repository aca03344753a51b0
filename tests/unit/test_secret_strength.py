"""Every secret setting is refused at start-up when weak: too short, a placeholder word, or too
predictable from its own characters; the refusal names the variable and never the value."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from loyalty_worker.api.settings import ApiSettings, ApiToken
from loyalty_worker.config import Settings
from loyalty_worker.secret_strength import (
    KEY,
    PASSWORD,
    PLACEHOLDERS,
    check_secret,
    estimated_bits,
    weakness,
)

# Values that the checks before this one took: the first granted every org.
WEAK = ["aaaaaaaaaaaaabcd", "changeme-changeme-1", "a" * 16]


def refusal(build: Callable[[], object]) -> str:
    with pytest.raises(ValidationError) as caught:
        build()
    return str(caught.value)


@pytest.mark.parametrize("value", WEAK)
def test_a_weak_api_token_is_refused_naming_the_variable_not_the_value(value: str) -> None:
    message = refusal(lambda: ApiSettings(tokens={value: ["*"]}))
    assert "LOYALTY_API_TOKENS" in message
    assert value not in message


@pytest.mark.parametrize("value", WEAK)
def test_a_weak_token_in_the_environment_is_refused_the_same_way(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_API_TOKENS", json.dumps({value: ["org-1"]}))
    message = refusal(ApiSettings)
    assert "LOYALTY_API_TOKENS" in message and "org-1" in message
    assert value not in message


@pytest.mark.parametrize("value", WEAK)
def test_a_weak_token_built_directly_is_refused(value: str) -> None:
    message = refusal(lambda: ApiToken.model_validate({"token": value, "orgs": ["org-1"]}))
    assert "LOYALTY_API_TOKENS" in message
    assert value not in message


@pytest.mark.parametrize("value", WEAK)
def test_a_weak_webhook_secret_is_refused_naming_the_variable_and_org(value: str) -> None:
    message = refusal(lambda: ApiSettings(webhook_secrets={"org-2": value}))
    assert "LOYALTY_API_WEBHOOK_SECRETS" in message and "org-2" in message
    assert value not in message


@pytest.mark.parametrize("value", WEAK)
def test_a_weak_phone_hash_key_is_refused_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_PHONE_HASH_KEY", value)
    message = refusal(Settings)
    assert "LOYALTY_PHONE_HASH_KEY" in message
    assert value not in message


@pytest.mark.parametrize("value", [*WEAK, "Password-2026-xyz", "Qq1Qq1Qq1Qq1Qq1Qq1"])
def test_a_weak_flower_password_is_refused_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_FLOWER_PASSWORD", value)
    message = refusal(Settings)
    assert "LOYALTY_FLOWER_PASSWORD" in message
    assert value not in message


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("short-Xy7", "fewer than 16"),
        ("my-Token-Qx7Rv2Lp9Wz4Kt", "placeholder"),
        ("Zq8W-CHANGEME-Lp4Rv9Xy", "placeholder"),
        ("abcdefghijklmnopqrstu", "straight run"),
        ("98765432109876543210", "predictable"),  # a run repeated: every step is -1 but one
        ("Ab3$" * 6, "predictable"),  # a short pattern repeated
        ("0123456789abcdef", "predictable"),  # 16 distinct characters, but two runs
        ("aaaaaaaaaaaaabcd", "predictable"),
    ],
)
def test_each_kind_of_weakness_is_said_in_words(value: str, why: str) -> None:
    reason = weakness(value, KEY)
    assert reason is not None and why in reason
    assert value not in reason


# How people and the demo make secrets; each must pass every time, not just usually.
GENERATED: dict[str, Callable[[], str]] = {
    "secrets.token_urlsafe(24)": lambda: secrets.token_urlsafe(24),
    "secrets.token_urlsafe(16)": lambda: secrets.token_urlsafe(16),
    "secrets.token_hex(16)": lambda: secrets.token_hex(16),
    "openssl rand -hex 24": lambda: secrets.token_hex(24),
    "openssl rand -base64 32": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
}


@pytest.mark.parametrize("how", sorted(GENERATED))
def test_generated_values_pass_as_keys_tokens_and_passwords(how: str) -> None:
    for _ in range(500):
        value = GENERATED[how]()
        if any(word in value.lower() for word in PLACEHOLDERS):
            continue  # a placeholder word by chance (about once in a million): rightly refused
        assert weakness(value, KEY) is None, how
        assert weakness(value, PASSWORD) is None, how


def test_generated_values_are_taken_by_every_secret_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token, secret, key, password = (secrets.token_hex(24) for _ in range(4))
    monkeypatch.setenv("LOYALTY_API_TOKENS", json.dumps({token: ["*"]}))
    monkeypatch.setenv("LOYALTY_API_WEBHOOK_SECRETS", json.dumps({"org-1": secret}))
    monkeypatch.setenv("LOYALTY_PHONE_HASH_KEY", key)
    monkeypatch.setenv("LOYALTY_FLOWER_PASSWORD", password)
    api = ApiSettings()
    assert api.tokens[0].token.get_secret_value() == token
    assert api.webhook_secrets["org-1"].get_secret_value() == secret
    settings = Settings()
    assert settings.phone_key == key.encode()
    assert settings.flower_password is not None
    assert settings.flower_password.get_secret_value() == password


def test_a_password_may_be_shorter_than_a_key_but_not_a_pattern() -> None:
    assert weakness("q7Rk2mWx9TzL4v", PASSWORD) is None  # 14 random characters
    assert weakness("q7Rk2mWx9TzL4v", KEY) is not None  # too short for a key
    assert weakness("q7Rk2mWx9TzL", PASSWORD) is None
    assert weakness("short-Xy7", PASSWORD) is not None


def test_the_estimate_scores_random_values_high_and_made_up_ones_low() -> None:
    assert estimated_bits("a" * 16) == 0
    assert estimated_bits("aaaaaaaaaaaaabcd") < 16
    assert estimated_bits(secrets.token_hex(24)) > 128


def test_check_secret_says_whose_value_within_the_variable() -> None:
    with pytest.raises(ValueError, match=r"^LOYALTY_API_WEBHOOK_SECRETS \(the secret of org-7\)"):
        check_secret("aaaaaaaaaaaaaaaa", "LOYALTY_API_WEBHOOK_SECRETS", whose="the secret of org-7")
    check_secret("org1-caller-Q8v2LmZ7xK3pR9tW", "LOYALTY_API_TOKENS")  # taken: no error
