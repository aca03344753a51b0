"""The dashboard's dependencies, one per concern: its services, who calls and what they may do
for the org of the path, and the query of a list.

``guard`` has found who calls before any route runs (``Principal``: a signed-in person, or on
the JSON twins a machine's API token) and checked the CSRF token of a change made with a
session. ``permit(action)`` is the one check of the role × action table (``domain.access``):
every route that acts for an org declares the action it does (``Reader``, ``Reviewer``,
``Trigger``, ``ContactsExporter``, ``PeopleManager``) and gets the org's settings with the
caller's ``Access``, or a refusal: a page without a session sends the person to sign in, a
JSON route answers 401, a role that does not allow the action 403, an unknown org 404.

No ``from __future__ import annotations`` here: FastAPI reads these annotations at run time.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Path, Query, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials

from loyalty_worker import log_context
from loyalty_worker.api.dashboard_state import DashboardServices
from loyalty_worker.api.deps import DirectoryDep, StateDep, bearer_scheme
from loyalty_worker.api.errors import invalid
from loyalty_worker.api.models import ORG_ID_PATTERN, RUN_ID_PATTERN
from loyalty_worker.api.session import SESSION_COOKIE, Principal
from loyalty_worker.domain.access import MACHINE, Action, Role, allows
from loyalty_worker.domain.review import ReviewState
from loyalty_worker.errors import TransientError, UnknownOrg
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.people import MemberStore
from loyalty_worker.services.dashboard.activity import Doer
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

session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description="The dashboard's session cookie (`__Host-lw_session` over https), set when a "
    "person signs in on /dashboard/sign-in; a change made with it carries `X-CSRF-Token`.",
)

OrgPath = Annotated[str, Path(alias="orgId", pattern=ORG_ID_PATTERN, description="The org's id.")]
CustomerPath = Annotated[
    int, Path(alias="customerId", ge=1, le=2**53, description="The Alleaves customer id.")
]
RunPath = Annotated[str, Path(alias="runId", pattern=RUN_ID_PATTERN, description="The run id.")]
TaskPath = Annotated[
    str, Path(alias="taskId", pattern=r"^[A-Za-z0-9-]{1,64}$", description="The task id.")
]
# What each action is called in a refusal.
_DOING = {
    Action.READ: "see this org",
    Action.SEE_CONTACTS: "see customers' contact details",
    Action.REVIEW: "review discrepancies",
    Action.TRIGGER: "start runs or syncs",
    Action.EXPORT_CONTACTS: "export contact details",
    Action.MANAGE_PEOPLE: "manage people",
}


def is_page(request: Request) -> bool:
    """Whether the request is for a page (answered in HTML) rather than a JSON route."""
    return request.url.path.startswith(PAGES)


def dashboard_services(request: Request) -> DashboardServices:
    services: DashboardServices | None = getattr(request.app.state, "dashboard", None)
    if services is None:
        raise HTTPException(503, "the dashboard is not configured in this process")
    return services


DashboardDep = Annotated[DashboardServices, Depends(dashboard_services)]


def member_store(dashboard: DashboardDep) -> MemberStore:
    if dashboard.members is None:
        raise HTTPException(503, "people and roles are not configured in this process")
    return dashboard.members


MembersDep = Annotated[MemberStore, Depends(member_store)]


def principal(
    request: Request,
    # Declared for the OpenAPI schema; ``guard`` has read them.
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    cookie: Annotated[str | None, Security(session_cookie)],
) -> Principal:
    """Who calls, as ``guard`` found them: a page without a session sends the person to sign
    in (``guard`` has already answered 401 on a JSON route without a caller)."""
    found = getattr(request.state, "principal", None)
    if isinstance(found, Principal):
        return found
    if is_page(request):
        raise HTTPException(303, "sign in first", headers={"Location": SIGN_IN})
    raise HTTPException(401, "sign in, or send a bearer token")


PrincipalDep = Annotated[Principal, Depends(principal)]


@dataclass(frozen=True, slots=True)
class Access:
    """What the caller may do for the org of the path: its settings, who calls, their role
    (None for a machine's token)."""

    org: OrgSettings
    who: Principal
    role: Role | None

    @property
    def org_id(self) -> str:
        return self.org.org_id

    def may(self, action: Action) -> bool:
        return action in MACHINE if self.role is None else allows(self.role, action)


def roles(who: Principal, members: MemberStore | None) -> dict[str, Role]:
    """A person's role in each org (none for a machine, or without a member store)."""
    if who.person is None or members is None:
        return {}
    return members.roles_of(who.person.uid)


def check(who: Principal, org_id: str, action: Action, members: MemberStore | None) -> Role | None:
    """The caller's role in ``org_id`` (None for a token) when it allows ``action``; 403
    otherwise (before the org is even read). Every route that acts for an org passes here: the
    request's lines carry the org from now."""
    log_context.bind(org_id=org_id)
    if who.person is None:
        if who.token_may(org_id, action):
            return None
        log.warning("%s refused for org %s: %s", who.name, org_id, action)
        raise HTTPException(403, f"this token may not {_DOING[action]} for org {org_id!r}")
    role = roles(who, members).get(org_id)
    if role is None or not allows(role, action):
        log.warning("%s refused for org %s: %s", who.name, org_id, action)
        if role is None:
            raise HTTPException(403, f"you hold no role in org {org_id!r}")
        raise HTTPException(
            403, f"your role in org {org_id!r} ({role.value}) may not {_DOING[action]}"
        )
    return role


def permit(action: Action) -> Callable[..., Access]:
    """The dependency of a route that does ``action`` for the org of its path."""

    def permitted(
        org_id: OrgPath, who: PrincipalDep, directory: DirectoryDep, dashboard: DashboardDep
    ) -> Access:
        role = check(who, org_id, action, dashboard.members)
        try:
            return Access(directory.get_org_settings(org_id), who, role)
        except UnknownOrg:
            raise HTTPException(404, f"unknown org {org_id!r}") from None

    return permitted


# One dependency an action (FastAPI runs a dependency once a request: a route and the
# dependencies it declares share the check).
_PERMITS = {action: permit(action) for action in Action}
Reader = Annotated[Access, Depends(_PERMITS[Action.READ])]
Reviewer = Annotated[Access, Depends(_PERMITS[Action.REVIEW])]
Trigger = Annotated[Access, Depends(_PERMITS[Action.TRIGGER])]
ContactsReader = Annotated[Access, Depends(_PERMITS[Action.SEE_CONTACTS])]
ContactsExporter = Annotated[Access, Depends(_PERMITS[Action.EXPORT_CONTACTS])]
PeopleManager = Annotated[Access, Depends(_PERMITS[Action.MANAGE_PEOPLE])]


def read_org(access: Reader) -> OrgSettings:
    """The org of a route that only reads it."""
    return access.org


ReadOrg = Annotated[OrgSettings, Depends(read_org)]


def doer(access: Access, dashboard: DashboardServices) -> Doer:
    """Who makes a change now, and where the dashboard records it."""
    return Doer(access.who.name, dashboard.now(), dashboard.activity)


def search_allowance(request: Request, access: Reader, state: StateDep) -> Access:
    """A customer search: ``LOYALTY_API_SEARCH_LIMIT_PER_MIN`` per person or token in any
    minute (429 with ``Retry-After`` beyond: a page on a page); a request without ``q`` is
    no search."""
    limiter = state.search_limiter
    if limiter is not None and request.query_params.get("q", "").strip():
        wait_s = limiter.try_acquire(access.who.key)
        if wait_s > 0:
            log.warning("%s over its search limit", access.who.name)
            per_min = state.settings.search_limit_per_min
            raise HTTPException(
                429,
                f"search limit of {per_min} searches per minute reached; retry later",
                headers={"Retry-After": str(max(1, int(wait_s + 0.999)))},
            )
    return access


Searcher = Annotated[Access, Depends(search_allowance)]


def error_page_access(request: Request) -> tuple[Principal | None, str | None]:
    """Outside the dependencies (an error page): who calls, and the org of the path when they
    hold a role there (so the page keeps its header)."""
    who = getattr(request.state, "principal", None)
    services: DashboardServices | None = getattr(request.app.state, "dashboard", None)
    if not isinstance(who, Principal) or services is None:
        return None, None
    org_id = request.path_params.get("orgId")
    try:
        held = isinstance(org_id, str) and org_id in roles(who, services.members)
    except TransientError:  # an error page never fails on its header's look-up
        held = False
    return who, org_id if held else None


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
