"""FastAPI dependencies: the app's parts (from ``app.state``) and the authenticated caller.

Routes declare what they need (``ServicesDep``, ``DirectoryDep``, ``Authenticated``...) and
FastAPI hands it over per request; nothing is a module-level instance, so two apps (two tests) never
share a client.

No ``from __future__ import annotations`` here: FastAPI reads these annotations at run time.
"""

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from loyalty_worker.api.auth import Caller, authenticate
from loyalty_worker.api.errors import BEARER_CHALLENGE
from loyalty_worker.api.orgs import OrgDirectory
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.api.state import ApiServices, ApiState
from loyalty_worker.services.webhooks import WebhookReceiver

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


ServicesDep = Annotated[ApiServices, Depends(api_services)]
SettingsDep = Annotated[ApiSettings, Depends(api_settings)]
DirectoryDep = Annotated[OrgDirectory, Depends(org_directory)]
WebhooksDep = Annotated[WebhookReceiver, Depends(webhook_receiver)]


def caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    settings: SettingsDep,
) -> Caller:
    """The caller whose bearer token this is; 401 with a challenge otherwise."""
    if credentials is None:
        raise HTTPException(
            401, "missing bearer token", headers={"WWW-Authenticate": BEARER_CHALLENGE}
        )
    found = authenticate(credentials.credentials, settings.tokens)
    if found is None:
        log.warning("refused a request with an unknown bearer token")
        raise HTTPException(
            401,
            "invalid bearer token",
            headers={"WWW-Authenticate": f'{BEARER_CHALLENGE}, error="invalid_token"'},
        )
    return found


Authenticated = Annotated[Caller, Security(caller)]


def allow(who: Caller, org_id: str) -> None:
    """403 unless the caller may act for ``org_id`` (checked before the org is even read)."""
    if not who.allows(org_id):
        log.warning("caller %s refused for org %s", who.fingerprint, org_id)
        raise HTTPException(403, f"this token may not act for org {org_id!r}")
