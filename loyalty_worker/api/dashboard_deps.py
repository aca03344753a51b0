"""The dashboard's dependencies: its services, and the caller by bearer token or session cookie.

Every dashboard JSON route takes either ``Authorization: Bearer <token>`` (like the rest of the
API) or the session cookie the sign-in page sets; a request that changes anything on the cookie
must also carry the session's CSRF token (``X-CSRF-Token`` header, or the form's ``csrf``
field), since a browser sends the cookie by itself.

No ``from __future__ import annotations`` here: FastAPI reads these annotations at run time.
"""

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials

from loyalty_worker.api.auth import Caller
from loyalty_worker.api.dashboard_state import DashboardServices
from loyalty_worker.api.deps import SettingsDep, bearer_scheme, caller
from loyalty_worker.api.session import COOKIE, Session, csrf_token, csrf_valid, read_session

log = logging.getLogger(__name__)

from loyalty_worker.api.models import ORG_ID_PATTERN  # noqa: E402

session_cookie = APIKeyCookie(
    name=COOKIE,
    auto_error=False,
    scheme_name="session",
    description="The dashboard's session cookie (set by POST /dashboard/sign-in).",
)


def dashboard_services(request: Request) -> DashboardServices:
    services: DashboardServices | None = getattr(request.app.state, "dashboard", None)
    if services is None:
        raise HTTPException(503, "the dashboard is not configured in this process")
    return services


DashboardDep = Annotated[DashboardServices, Depends(dashboard_services)]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who calls a dashboard route: a caller, and its session when it came by cookie."""

    caller: Caller
    session: Session | None
    csrf: str = ""

    @property
    def who(self) -> str:
        return self.session.who if self.session is not None else self.caller.fingerprint


def current_session(
    request: Request, settings: SettingsDep, dashboard: DashboardDep
) -> Session | None:
    return read_session(settings.tokens, request.cookies.get(COOKIE), dashboard.clock())


SessionDep = Annotated[Session | None, Depends(current_session)]


def viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    cookie: Annotated[str | None, Security(session_cookie)],
    session: SessionDep,
    settings: SettingsDep,
) -> Viewer:
    """The caller by bearer token when one is given, else by session cookie; 401 otherwise."""
    if credentials is not None or session is None:
        return Viewer(caller(request, credentials, settings), None)
    return Viewer(session.caller, session, csrf_token(settings.tokens, session.nonce))


ViewerDep = Annotated[Viewer, Depends(viewer)]


def require_csrf(request: Request, who: ViewerDep, settings: SettingsDep) -> Viewer:
    """403 for a cookie request that changes something without the session's CSRF token."""
    if who.session is None:
        return who
    presented = request.headers.get("x-csrf-token")
    if not csrf_valid(settings.tokens, who.session.nonce, presented):
        log.warning("refused a dashboard change without a valid CSRF token (%s)", who.who)
        raise HTTPException(403, "missing or invalid CSRF token")
    return who


ChangerDep = Annotated[Viewer, Depends(require_csrf)]

OrgPath = Annotated[str, Path(alias="orgId", pattern=ORG_ID_PATTERN, description="The org's id.")]
CustomerPath = Annotated[
    int, Path(alias="customerId", ge=1, le=2**53, description="The Alleaves customer id.")
]
