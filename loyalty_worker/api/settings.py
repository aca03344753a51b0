"""The HTTP API's own settings (``LOYALTY_API_*``); Redis and Firestore come from ``config``.

- ``LOYALTY_API_TOKENS`` (``{}``): JSON ``{"<token>": ["org-1", ...]}``; ``["*"]``: every org.
- ``LOYALTY_API_WEBHOOK_SECRETS`` (``{}``): JSON ``{"<orgId>": "<secret>"}``, for an org whose
  settings document has no ``alleaves.webhookSecret``.
- ``LOYALTY_API_WEBHOOK_REPLAY_WINDOW_S`` (300): how far a webhook's ``timestamp`` may be from now.
- ``LOYALTY_API_WEBHOOK_DEDUPE_WINDOW_S`` (30): one sync per org and customer in this window.
- ``LOYALTY_API_WEBHOOK_MAX_BODY_BYTES`` (262144): the largest webhook body read.
- ``LOYALTY_API_MAX_BODY_BYTES`` (65536): the largest body of any other request.
- ``LOYALTY_API_RATE_LIMIT_PER_MIN`` (600): requests per minute one person or token (or, before
  signing in, one client address) may make, on every route but health and static files, shared
  by every API process through Redis; 0 turns the limit off.
- ``LOYALTY_API_SEARCH_LIMIT_PER_MIN`` (30): customer searches per minute one person or token
  may make (each also counts against the rate limit above); 0 turns it off.
- ``LOYALTY_API_SIGN_IN_LIMIT_PER_MIN`` (10): sign-in attempts per minute from one client
  address, and for one account.
- ``LOYALTY_API_SESSION_IDLE_S`` (1800) and ``LOYALTY_API_SESSION_MAX_S`` (43200): a dashboard
  session ends after this long unused, and this long after sign-in whatever its use.
- ``LOYALTY_API_DOCS`` (false): serve ``/docs``, ``/redoc`` and ``/openapi.json``.
- ``LOYALTY_API_LOOKUP_TIMEOUT_S`` (1.5) and ``LOYALTY_API_LOOKUP_MAX_ATTEMPTS`` (2): the Alpine IQ
  call of a points look-up.
- ``LOYALTY_API_TRUSTED_HOSTS`` (``[]``): JSON list of the host names the API answers to (the
  ``Host`` header, its port aside); ``*.example.com`` is any name under ``example.com``. The host
  of ``LOYALTY_PUBLIC_URL`` is always one; empty: that host plus ``localhost``, ``127.0.0.1`` and
  ``::1``. Any other ``Host`` gets 400 (``edge``).
- ``LOYALTY_API_TRUSTED_PROXIES`` (``[]``): JSON list of IP addresses and networks
  (``"10.0.0.0/8"``) of the reverse proxies whose ``X-Forwarded-For`` is believed; without one
  the client is the connection's peer (``edge.client_address``).
"""

from __future__ import annotations

import ipaddress
import re
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
# A host name as a Host header carries it (lower case; ``_`` allowed: some internal names have one).
HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
WILDCARD = "*."

ProxyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def trusted_host(entry: str) -> str:
    """One entry of ``LOYALTY_API_TRUSTED_HOSTS`` as the ``Host`` check compares it: a host name or
    an IP address (IPv6 without brackets), or ``*.`` and a name; ValueError otherwise (a port,
    a scheme, a path, a bare ``*``)."""
    host = entry.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host.removeprefix(WILDCARD)
    if not HOST_NAME.match(name):
        raise ValueError(
            "a trusted host is a host name, an IP address or *.name (no scheme, port or path)"
        )
    return host


def _proxy_networks(value: Any) -> Any:
    """``["10.0.0.1", "10.1.0.0/16"]``: each an address or a network (host bits allowed)."""
    if not isinstance(value, list | tuple):
        return value
    networks: list[Any] = []
    for entry in value:
        if isinstance(entry, str):
            try:
                entry = ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError("a trusted proxy is an IP address or a network") from None
        networks.append(entry)
    return networks


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
    search_limit_per_min: int = Field(default=30, ge=0, le=1_000_000)
    sign_in_limit_per_min: int = Field(default=10, ge=1, le=10_000)
    session_idle_s: int = Field(default=30 * 60, ge=60, le=24 * 3600)
    session_max_s: int = Field(default=12 * 3600, ge=60, le=30 * 24 * 3600)
    # The schema and its pages tell a stranger every route and field: off unless asked for.
    docs: bool = False
    lookup_timeout_s: float = Field(default=1.5, gt=0, le=30)
    lookup_max_attempts: int = Field(default=2, ge=1, le=5)
    # Host names the API answers to (``edge``); empty: the public URL's host and loopback.
    trusted_hosts: tuple[str, ...] = ()
    # Whose X-Forwarded-For is believed (``edge.client_address``); none: the peer is the client.
    trusted_proxies: Annotated[tuple[ProxyNetwork, ...], BeforeValidator(_proxy_networks)] = ()

    @field_validator("trusted_hosts")
    @classmethod
    def _host_names(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(trusted_host(host) for host in hosts))

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
