"""The HTTP API's own settings (``LOYALTY_API_*``); Redis and Firestore come from ``config``.

- ``LOYALTY_API_TOKENS`` (``{}``): JSON ``{"<token>": ["org-1", ...]}``; ``["*"]``: every org.
- ``LOYALTY_API_WEBHOOK_SECRETS`` (``{}``): JSON ``{"<orgId>": "<secret>"}``, for an org whose
  settings document has no ``alleaves.webhookSecret``.
- ``LOYALTY_API_WEBHOOK_REPLAY_WINDOW_S`` (300): how far a webhook's ``timestamp`` may be from now.
- ``LOYALTY_API_WEBHOOK_DEDUPE_WINDOW_S`` (30): one sync per org and customer in this window.
- ``LOYALTY_API_WEBHOOK_MAX_BODY_BYTES`` (262144): the largest webhook body read.
- ``LOYALTY_API_MAX_BODY_BYTES`` (65536): the largest body of any other request.
- ``LOYALTY_API_RATE_LIMIT_PER_MIN`` (600): requests per minute one token may make, shared by
  every API process through Redis; 0 turns the limit off.
- ``LOYALTY_API_DOCS`` (false): serve ``/docs``, ``/redoc`` and ``/openapi.json``.
- ``LOYALTY_API_LOOKUP_TIMEOUT_S`` (1.5) and ``LOYALTY_API_LOOKUP_MAX_ATTEMPTS`` (2): the Alpine IQ
  call of a points look-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from loyalty_worker.secret_strength import check_secret

ALL_ORGS = "*"
ENV_PREFIX = "LOYALTY_API_"
TOKENS_VARIABLE = f"{ENV_PREFIX}TOKENS"
WEBHOOK_SECRETS_VARIABLE = f"{ENV_PREFIX}WEBHOOK_SECRETS"


class ApiToken(BaseModel):
    """One caller: a bearer token and the orgs it may act for."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    token: SecretStr
    orgs: frozenset[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _strong_token(self) -> ApiToken:
        # Named by the orgs it grants, never by its value: settings errors are printed.
        grants = ", ".join(sorted(self.orgs))
        check_secret(
            self.token.get_secret_value(), TOKENS_VARIABLE, whose=f"the token for {grants}"
        )
        return self

    def allows(self, org_id: str) -> bool:
        return ALL_ORGS in self.orgs or org_id in self.orgs


def _tokens_from_mapping(value: Any) -> Any:
    """``{"<token>": [orgs]}`` (the variable's shape) into ``[{"token", "orgs"}]``."""
    if isinstance(value, Mapping):
        return [{"token": token, "orgs": orgs} for token, orgs in value.items()]
    return value


class ApiSettings(BaseSettings):
    """Who may call the API, and how webhooks are checked."""

    # Errors must not echo a token or secret: they are printed at start-up.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    tokens: Annotated[tuple[ApiToken, ...], BeforeValidator(_tokens_from_mapping)] = ()
    webhook_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    webhook_replay_window_s: int = Field(default=300, ge=1, le=3600)
    webhook_dedupe_window_s: int = Field(default=30, ge=0, le=3600)
    # Largest webhook body read (an order event is a few KiB).
    webhook_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Largest body of any other request (a sync request is a few dozen bytes).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    rate_limit_per_min: int = Field(default=600, ge=0, le=1_000_000)
    # The schema and its pages tell a stranger every route and field: off unless asked for.
    docs: bool = False
    lookup_timeout_s: float = Field(default=1.5, gt=0, le=30)
    lookup_max_attempts: int = Field(default=2, ge=1, le=5)

    @field_validator("webhook_secrets")
    @classmethod
    def _usable_secrets(cls, secrets: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for org_id, secret in secrets.items():
            check_secret(
                secret.get_secret_value(), WEBHOOK_SECRETS_VARIABLE, whose=f"the secret of {org_id}"
            )
        # A secret shared by two orgs would let one org's delivery be replayed as the other's.
        values = [secret.get_secret_value() for secret in secrets.values()]
        if len(set(values)) != len(values):
            raise ValueError("two orgs share a webhook secret: give each org its own")
        return secrets


@lru_cache(maxsize=1)
def get_api_settings() -> ApiSettings:
    """The API's settings, read once; tests build ``ApiSettings(...)`` or clear this cache."""
    return ApiSettings()
