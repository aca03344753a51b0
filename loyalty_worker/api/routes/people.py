"""The People page (``/dashboard/orgs/{orgId}/people``): an org's admins grant and revoke roles,
and list and end a person's sessions; its JSON twin lists the org's people.

Every route here needs ``Action.MANAGE_PEOPLE`` in the org (``PeopleManager``). Grants and
revokes go through ``services.people`` (the ``people`` command's checks: the e-mail must be a
Markitbot account's, the org keeps an admin); a refusal shows the page again with the reason.
Each change is recorded (``loyalty_activity``: who, when, what), and the page shows the org's
latest changes: runs started, Sync Now, roles granted and revoked, sessions ended.

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import Field

from loyalty_worker.api.dashboard_deps import DashboardDep, MembersDep, PeopleManager, doer
from loyalty_worker.api.dashboard_pages import redirect, render
from loyalty_worker.api.deps import ServicesDep, StateDep
from loyalty_worker.api.errors import responses
from loyalty_worker.domain.access import Role
from loyalty_worker.ports.people import Accounts
from loyalty_worker.services.dashboard.activity import latest
from loyalty_worker.services.dashboard.page import PageModel
from loyalty_worker.services.people import PeopleRefused, grant, people_of, revoke

log = logging.getLogger(__name__)

router = APIRouter()

PAGE = "/dashboard/orgs/{orgId}/people"


class OpenSession(PageModel):
    """One of a person's dashboard sessions open now."""

    opened_at: str
    last_seen_at: str


class Person(PageModel):
    """One of the org's people."""

    uid: str
    email: str
    role: Role
    granted_by: str
    granted_at: str
    sessions: list[OpenSession] = Field(description="Their dashboard sessions open now.")


class People(PageModel):
    """The org's people, by e-mail."""

    org_id: str
    items: list[Person]


def _people(access: PeopleManager, members: MembersDep, state: StateDep) -> People:
    found = people_of(members, access.org_id)
    return People(
        org_id=access.org_id,
        items=[
            Person(
                uid=m.uid,
                email=m.email,
                role=m.role,
                granted_by=m.granted_by,
                granted_at=m.granted_at.isoformat(timespec="seconds"),
                sessions=[
                    OpenSession(opened_at=_stamp(s.created_at), last_seen_at=_stamp(s.seen_at))
                    for s in state.sessions.sessions_of(m.uid)
                ],
            )
            for m in found
        ],
    )


def _stamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


def _accounts(dashboard: DashboardDep) -> Accounts:
    if dashboard.accounts is None:
        raise HTTPException(503, "Markitbot's accounts are not configured in this process")
    return dashboard.accounts


@router.get(PAGE, response_class=HTMLResponse, include_in_schema=False)
def people_page(
    request: Request,
    access: PeopleManager,
    members: MembersDep,
    state: StateDep,
    dashboard: DashboardDep,
) -> Response:
    return _page(request, access, members, state, dashboard)


def _page(
    request: Request,
    access: PeopleManager,
    members: MembersDep,
    state: StateDep,
    dashboard: DashboardDep,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    done = request.query_params.get("done", "")[:200]
    context = {
        "org_id": access.org_id,
        "people": _people(access, members, state).items,
        "roles": list(Role),
        "error": error,
        "done": done,
        "activity": latest(dashboard.activity, access.org_id, since=dashboard.audit_since()),
        "tz": access.org.timezone,
    }
    return render(request, "people.html", context, access, status)


@router.post(PAGE, include_in_schema=False)
def grant_role(
    request: Request,
    access: PeopleManager,
    members: MembersDep,
    state: StateDep,
    dashboard: DashboardDep,
    services: ServicesDep,
    email: Annotated[str, Form(max_length=320)],
    role: Annotated[str, Form(max_length=20)],
) -> Response:
    """Give the person with this e-mail a role here (or change theirs)."""
    try:
        member = grant(
            _accounts(dashboard),
            members,
            services.store,
            email=email,
            org_id=access.org_id,
            role=role,
            by=access.who.name,
            now=dashboard.now(),
        )
    except PeopleRefused as exc:
        return _page(request, access, members, state, dashboard, error=exc.message, status=409)
    log.info("%s: org %s: uid %s granted %s", access.who.name, access.org_id, member.uid, role)
    doer(access, dashboard).record(
        access.org_id, "people.grant", f"{member.email} as {member.role.value}"
    )
    return redirect(f"/dashboard/orgs/{access.org_id}/people?done=granted")


@router.post(PAGE + "/revoke", include_in_schema=False)
def revoke_role(
    request: Request,
    access: PeopleManager,
    members: MembersDep,
    state: StateDep,
    dashboard: DashboardDep,
    email: Annotated[str, Form(max_length=320)],
) -> Response:
    """Take the person's role here away."""
    try:
        member = revoke(_accounts(dashboard), members, email=email, org_id=access.org_id)
    except PeopleRefused as exc:
        return _page(request, access, members, state, dashboard, error=exc.message, status=409)
    log.info("%s: org %s: uid %s revoked", access.who.name, access.org_id, member.uid)
    doer(access, dashboard).record(access.org_id, "people.revoke", member.email)
    return redirect(f"/dashboard/orgs/{access.org_id}/people?done=revoked")


@router.post(PAGE + "/sessions/end", include_in_schema=False)
def end_sessions(
    access: PeopleManager,
    members: MembersDep,
    state: StateDep,
    dashboard: DashboardDep,
    uid: Annotated[str, Form(min_length=1, max_length=128)],
) -> Response:
    """End every dashboard session of one of the org's people (they sign in again)."""
    person = next((m for m in people_of(members, access.org_id) if m.uid == uid), None)
    if person is None:
        raise HTTPException(404, "no such person in this org")
    ended = state.sessions.end_sessions_of(uid)
    doer(access, dashboard).record(
        access.org_id, "people.end_sessions", f"{person.email}: {ended} ended"
    )
    log.info("%s: org %s: ended %d sessions of uid %s", access.who.name, access.org_id, ended, uid)
    return redirect(f"/dashboard/orgs/{access.org_id}/people?done=sessions-ended")


@router.get(
    "/api/loyalty/orgs/{orgId}/people",
    summary="The org's people, their roles and open sessions",
    response_model=People,
    responses=responses(401, 403, 404, 503),
    tags=["dashboard"],
)
def people_json(access: PeopleManager, members: MembersDep, state: StateDep) -> People:
    """For the org's admins (a person's session; a machine's token may not manage people)."""
    return _people(access, members, state)
