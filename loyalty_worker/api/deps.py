"""FastAPI dependencies: the app's parts (from ``app.state``) and the authenticated caller.

Routes declare what they need (``ServicesDep``, ``DirectoryDep``, ``Authenticated``...) and
FastAPI hands it over per request; nothing is a module-level instance, so two apps (two tests) never
share a client.

No ``from __future__ import annotations`` here: FastAPI reads these annotations at run time.
"""

import logging
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from loyalty_worker.api.auth import Caller, bearer_caller
from loyalty_worker.api.orgs import OrgDirectory
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.api.state import ApiServices, ApiState
from loyalty_worker.services.lookup.webhooks import WebhookReceiver

log = logging.getLogger(__name__)

# The security scheme (its OpenAPI description), not a client: it holds no state.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token of LOYALTY_API_TOKENS, allowed for the org it names.",
)


def api_state(request: Request) -> ApiState:
    """The app's dependencies, as ``create_app`` stored them."""
    state: ApiState = request.app.state.api
    return state


StateDep = Annotated[ApiState, Depends(api_state)]


def api_services(state: StateDep) -> ApiServices:
    return state.services


def api_settings(state: StateDep) -> ApiSettings:
    return state.settings


def org_directory(state: StateDep) -> OrgDirectory:
    return state.directory


def webhook_receiver(state: StateDep) -> WebhookReceiver:
    return state.webhooks


def public_url(state: StateDep) -> str:
    """Where people reach the app (``LOYALTY_PUBLIC_URL``): ``scheme://host[:port]``."""
    return state.public_url


ServicesDep = Annotated[ApiServices, Depends(api_services)]
SettingsDep = Annotated[ApiSettings, Depends(api_settings)]
DirectoryDep = Annotated[OrgDirectory, Depends(org_directory)]
WebhooksDep = Annotated[WebhookReceiver, Depends(webhook_receiver)]
PublicUrlDep = Annotated[str, Depends(public_url)]


def caller(
    request: Request,
    # Declared for the OpenAPI schema (the bearer scheme); ``guard`` has checked the token.
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    settings: SettingsDep,
) -> Caller:
    """The machine ``guard`` authenticated by its bearer token before the body was read (the
    machine routes take no session); BearerRefused (401) otherwise."""
    found = getattr(request.state, "principal", None)
    token = getattr(found, "token", None)
    if isinstance(token, Caller):
        return token
    return bearer_caller(request.headers.get("authorization"), settings.tokens)


Authenticated = Annotated[Caller, Security(caller)]
