"""The dashboard's dependencies, one per concern: its services, the caller, the CSRF check of a
change, the org of the path, and the query of a list.

The pages (``/dashboard``) take the session cookie the sign-in page sets, and send a person
without one to sign in. Every dashboard JSON route takes either ``Authorization: Bearer <token>``
(like the rest of the API) or that cookie. A change made with the cookie must also carry the
session's CSRF token (the ``X-CSRF-Token`` header, or the form's ``csrf`` field), since a
browser sends the cookie by itself.

No ``from __future__ import annotations`` here: FastAPI reads these annotations at run time.
"""

import logging
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Path, Query, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials

from loyalty_worker.api.auth import Caller
from loyalty_worker.api.dashboard_state import DashboardServices
from loyalty_worker.api.deps import DirectoryDep, SettingsDep, allow, bearer_scheme, caller
from loyalty_worker.api.errors import invalid
from loyalty_worker.api.models import ORG_ID_PATTERN, RUN_ID_PATTERN
from loyalty_worker.api.session import COOKIE, Session, csrf_token, csrf_valid, read_session
from loyalty_worker.domain.review import ReviewState
from loyalty_worker.errors import UnknownOrg
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.dashboard.audit import (
    AUDIT_PAGE_SIZE,
    MAX_AUDIT_PAGE_SIZE,
    AuditCursor,
    AuditRequest,
)
from loyalty_worker.services.dashboard.cursors import PageCursor
from loyalty_worker.services.dashboard.discrepancies import PAGE_SIZE, ReviewFilter
from loyalty_worker.services.dashboard.no_account import NO_ACCOUNT_SORT

log = logging.getLogger(__name__)

PAGES = "/dashboard"
SIGN_IN = "/dashboard/sign-in"
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")

session_cookie = APIKeyCookie(
    name=COOKIE,
    auto_error=False,
    scheme_name="session",
    description="The dashboard's session cookie (set by POST /dashboard/sign-in).",
)

OrgPath = Annotated[str, Path(alias="orgId", pattern=ORG_ID_PATTERN, description="The org's id.")]
CustomerPath = Annotated[
    int, Path(alias="customerId", ge=1, le=2**53, description="The Alleaves customer id.")
]
RunPath = Annotated[str, Path(alias="runId", pattern=RUN_ID_PATTERN, description="The run id.")]
TaskPath = Annotated[
    str, Path(alias="taskId", pattern=r"^[A-Za-z0-9-]{1,64}$", description="The task id.")
]


def is_page(request: Request) -> bool:
    """Whether the request is for a page (answered in HTML) rather than a JSON route."""
    return request.url.path.startswith(PAGES)


def dashboard_services(request: Request) -> DashboardServices:
    services: DashboardServices | None = getattr(request.app.state, "dashboard", None)
    if services is None:
        raise HTTPException(503, "the dashboard is not configured in this process")
    return services


DashboardDep = Annotated[DashboardServices, Depends(dashboard_services)]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who calls a dashboard route: a caller, and its session (with its form's CSRF token) when
    it came by cookie."""

    caller: Caller
    session: Session | None
    csrf: str = ""

    @property
    def who(self) -> str:
        """How logs and audit entries name the caller."""
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
    """The caller. A page's is its session; a person without one is sent to sign in. A JSON
    route's comes by bearer token when one is given, else by session cookie; 401 otherwise."""
    if session is not None and (credentials is None or is_page(request)):
        return Viewer(session.caller, session, csrf_token(settings.tokens, session.nonce))
    if is_page(request):
        raise HTTPException(303, "sign in first", headers={"Location": SIGN_IN})
    return Viewer(caller(request, credentials, settings), None)


ViewerDep = Annotated[Viewer, Depends(viewer)]


def signed_in(request: Request) -> tuple[Viewer | None, str | None]:
    """Outside the dependencies (an error page): the page's session, if its cookie holds one,
    and the org of the path when that session may act for it (so the page keeps its header)."""
    state = getattr(request.app.state, "api", None)
    services: DashboardServices | None = getattr(request.app.state, "dashboard", None)
    if state is None or services is None:
        return None, None
    tokens = state.settings.tokens
    session = read_session(tokens, request.cookies.get(COOKIE), services.clock())
    if session is None:
        return None, None
    org_id = request.path_params.get("orgId")
    may_act = isinstance(org_id, str) and session.caller.allows(org_id)
    return Viewer(session.caller, session, csrf_token(tokens, session.nonce)), (
        org_id if may_act else None
    )


async def require_csrf(request: Request, who: ViewerDep, settings: SettingsDep) -> Viewer:
    """The caller of a change; 403 when it came by cookie without the session's CSRF token."""
    if who.session is None:
        return who
    presented = request.headers.get("x-csrf-token")
    if presented is None and request.headers.get("content-type", "").startswith(FORMS):
        field = (await request.form()).get("csrf")  # parsed once, for the route's fields too
        presented = field if isinstance(field, str) else None
    if not csrf_valid(settings.tokens, who.session.nonce, presented):
        log.warning("refused a dashboard change without a valid CSRF token (%s)", who.who)
        raise HTTPException(403, "missing or invalid CSRF token")
    return who


ChangerDep = Annotated[Viewer, Depends(require_csrf)]


def checked_org(org_id: OrgPath, who: ViewerDep, directory: DirectoryDep) -> OrgSettings:
    """The org of the path: 403 unless the caller may act for it, 404 when it has no settings
    (a page answers either as a page)."""
    allow(who.caller, org_id)
    try:
        return directory.get_org_settings(org_id)
    except UnknownOrg:
        raise HTTPException(404, f"unknown org {org_id!r}") from None


OrgDep = Annotated[OrgSettings, Depends(checked_org)]

# --- A list's query ---------------------------------------------------------------------------

CursorParam = Annotated[
    str | None,
    Query(
        max_length=2000,
        pattern=r"^[A-Za-z0-9_-]*$",
        description="Where the page starts: a list answer's `next` or `prev`; none: the first "
        "page.",
    ),
]
PageSize = Annotated[int, Query(alias="pageSize", ge=1, le=500)]
# Empty: any (what a form's "any" option sends).
StatusFilter = Annotated[
    Literal["alpine_higher", "calculated_higher", ""] | None, Query(description="Status filter.")
]
StateFilter = Annotated[
    Literal["open", "acknowledged", "resolved", "all"], Query(description="Review state.")
]
TierFilter = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")]
SortBy = Annotated[Literal["size", "age"], Query(description="Largest first, or oldest first.")]


def page_cursor(token: str | None, sort: str) -> PageCursor | None:
    """The decoded ``cursor`` parameter; 422 for a token that is not one of this list's."""
    if not token:
        return None
    try:
        return PageCursor.decode(token, sort)
    except ValueError:
        raise invalid(
            ("query", "cursor"), "not a cursor of this list: use its next or prev"
        ) from None


def review_filter(
    status: StatusFilter = None,
    tier: TierFilter = None,
    state: StateFilter = "open",
    sort: SortBy = "size",
    cursor: CursorParam = None,
    page_size: PageSize = PAGE_SIZE,
) -> ReviewFilter:
    """The discrepancy list's filter, order and page, from the query: one dependency for its
    page, its JSON route and its CSV."""
    return ReviewFilter(
        status=status or None,
        tier=tier or None,
        state=None if state == "all" else ReviewState(state),
        sort=sort,
        cursor=page_cursor(cursor, sort),
        page_size=page_size,
    )


ReviewFilterDep = Annotated[ReviewFilter, Depends(review_filter)]


@dataclass(frozen=True, slots=True)
class PageRequest:
    cursor: PageCursor | None
    page_size: int


def page_request(cursor: CursorParam = None, page_size: PageSize = PAGE_SIZE) -> PageRequest:
    """A list's page (the no-account list): its cursor and size."""
    return PageRequest(page_cursor(cursor, NO_ACCOUNT_SORT), page_size)


PageDep = Annotated[PageRequest, Depends(page_request)]


AuditPageSize = Annotated[
    int,
    Query(alias="pageSize", ge=1, le=MAX_AUDIT_PAGE_SIZE, description="Audit entries a page."),
]


def audit_request(
    cursor: CursorParam = None, page_size: AuditPageSize = AUDIT_PAGE_SIZE
) -> AuditRequest:
    """Which page of a review's audit (a customer's history): the answer's ``next`` or
    ``prev`` as its cursor, and its size; 422 for a token that is not an audit cursor."""
    if not cursor:
        return AuditRequest(None, page_size)
    try:
        return AuditRequest(AuditCursor.decode(cursor), page_size)
    except ValueError:
        raise invalid(
            ("query", "cursor"), "not a cursor of this audit: use its next or prev"
        ) from None


AuditPageDep = Annotated[AuditRequest, Depends(audit_request)]
