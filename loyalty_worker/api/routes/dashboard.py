"""The dashboard's pages (``/dashboard``): server-rendered, working without JavaScript (a small
script only follows a run's progress and a Sync Now in place).

Each page calls the same service as its JSON route in ``dashboard_api`` and hands the answer to
a template; each form that changes anything posts the session's CSRF token and answers with a
redirect (303) to the page showing the result.

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import logging
from pathlib import Path as FsPath
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from loyalty_worker.api.auth import authenticate
from loyalty_worker.api.dashboard_deps import (
    CustomerPath,
    DashboardDep,
    OrgPath,
    SessionDep,
)
from loyalty_worker.api.deps import DirectoryDep, ServicesDep, SettingsDep
from loyalty_worker.api.routes.dashboard_api import (
    PageDep,
    ReviewFilterDep,
    RunPath,
    now_of,
    search,
)
from loyalty_worker.api.session import (
    COOKIE,
    PRE_COOKIE,
    PRE_TTL_S,
    SESSION_TTL_S,
    Session,
    csrf_token,
    csrf_valid,
    is_loopback,
    new_pre_session,
    new_session_cookie,
    pre_session_nonce,
)
from loyalty_worker.errors import UnknownOrg
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.dashboard import views

log = logging.getLogger(__name__)

TEMPLATES = Jinja2Templates(directory=str(FsPath(__file__).resolve().parent.parent / "templates"))
SIGN_IN = "/dashboard/sign-in"
# Pages load nothing but their own stylesheet and script.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix="/dashboard", include_in_schema=False)

_TITLES = {
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    503: "Unavailable",
}


async def page_errors(request: Request, exc: StarletteHTTPException) -> Response:
    """A page's refusal as a page (a JSON route's stays JSON); redirects pass through."""
    path = request.url.path
    if exc.status_code < 400 or not path.startswith("/dashboard") or "/static/" in path:
        return await http_exception_handler(request, exc)
    title = _TITLES.get(exc.status_code, "Something went wrong")
    headers = {**SECURITY_HEADERS, **(exc.headers or {})}
    return TEMPLATES.TemplateResponse(
        request,
        "error.html",
        {
            "session": None,
            "csrf": "",
            "status": exc.status_code,
            "title": title,
            "detail": str(exc.detail),
        },
        status_code=exc.status_code,
        headers=headers,
    )


def signed_in(session: SessionDep) -> Session:
    """The page's session; a redirect to the sign-in page without one."""
    if session is None:
        raise HTTPException(303, "sign in first", headers={"Location": SIGN_IN})
    return session


SignedIn = Annotated[Session, Depends(signed_in)]


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    session: Session | None = None,
    settings: Any = None,
    status_code: int = 200,
) -> HTMLResponse:
    csrf = csrf_token(settings.tokens, session.nonce) if session and settings else ""
    return TEMPLATES.TemplateResponse(
        request,
        name,
        {**context, "session": session, "csrf": csrf},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )


def page_org(
    request: Request, session: Session, org_id: str, directory: DirectoryDep
) -> OrgSettings:
    """The org of a page: 403 when the session's token may not act for it, 404 unknown."""
    if not session.caller.allows(org_id):
        log.warning("session %s refused for org %s", session.who, org_id)
        raise HTTPException(403, f"this token may not act for org {org_id!r}")
    try:
        return directory.get_org_settings(org_id)
    except UnknownOrg:
        raise HTTPException(404, f"unknown org {org_id!r}") from None


def check_csrf(settings: SettingsDep, session: Session, presented: str) -> None:
    if not csrf_valid(settings.tokens, session.nonce, presented):
        log.warning("refused a dashboard form without a valid CSRF token (%s)", session.who)
        raise HTTPException(403, "missing or invalid CSRF token")


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=not is_loopback(request.url.hostname),
    )


# --- Sign-in and sign-out ---------------------------------------------------------------------


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, settings: SettingsDep, dashboard: DashboardDep) -> Response:
    return _sign_in_form(request, settings, dashboard, error=None, status_code=200)


def _sign_in_form(
    request: Request,
    settings: SettingsDep,
    dashboard: DashboardDep,
    *,
    error: str | None,
    status_code: int,
) -> Response:
    pre = new_pre_session(settings.tokens, dashboard.clock())
    nonce = pre_session_nonce(settings.tokens, pre, dashboard.clock()) or ""
    response = TEMPLATES.TemplateResponse(
        request,
        "sign_in.html",
        {"session": None, "csrf": csrf_token(settings.tokens, nonce), "error": error},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    set_cookie(request, response, PRE_COOKIE, pre, PRE_TTL_S)
    return response


@router.post("/sign-in")
def sign_in(
    request: Request,
    settings: SettingsDep,
    dashboard: DashboardDep,
    token: Annotated[str, Form(min_length=1, max_length=512)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    name: Annotated[str, Form(max_length=60)] = "",
) -> Response:
    """Paste a token once: the session cookie holds its fingerprint, never the token."""
    now = dashboard.clock()
    nonce = pre_session_nonce(settings.tokens, request.cookies.get(PRE_COOKIE), now)
    if nonce is None or not csrf_valid(settings.tokens, nonce, csrf):
        log.warning("refused a sign-in without a valid CSRF token")
        return _sign_in_form(
            request, settings, dashboard, error="The form expired; try again.", status_code=403
        )
    found = authenticate(token.strip(), settings.tokens)
    if found is None:
        log.warning("refused a dashboard sign-in with an unknown token")
        return _sign_in_form(
            request, settings, dashboard, error="That token is not valid.", status_code=401
        )
    log.info("dashboard sign-in: %s", name.strip() or found.fingerprint)
    response = redirect("/dashboard")
    cookie = new_session_cookie(settings.tokens, token.strip(), name, now)
    set_cookie(request, response, COOKIE, cookie, SESSION_TTL_S)
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


@router.post("/sign-out")
def sign_out(
    request: Request,
    settings: SettingsDep,
    session: SignedIn,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    check_csrf(settings, session, csrf)
    log.info("dashboard sign-out: %s", session.who)
    response = redirect(SIGN_IN)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# --- Pages ------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def home(
    request: Request, session: SignedIn, settings: SettingsDep, dashboard: DashboardDep
) -> Response:
    grant = session.caller.grant
    orgs = sorted(org for org in grant.orgs if org != "*")
    if "*" in grant.orgs:
        orgs = dashboard.store.list_org_ids()
    if len(orgs) == 1:
        return redirect(f"/dashboard/orgs/{orgs[0]}")
    return render(request, "home.html", {"orgs": orgs}, session=session, settings=settings)


@router.get("/orgs/{orgId}", response_class=HTMLResponse)
def overview_page(
    request: Request,
    org_id: OrgPath,
    session: SignedIn,
    settings: SettingsDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
) -> Response:
    org = page_org(request, session, org_id, directory)
    data = views.overview(
        org, dashboard.store, now=now_of(dashboard), nightly_hour=dashboard.nightly_hour
    )
    tier_bars = views.bars([(t["name"], t["count"]) for t in data["tiers"]])
    rate_bars = views.bars(
        [(str(i + 1), round(r["discrepancyRate"] * 100, 1)) for i, r in enumerate(data["trend"])],
        height=100,
    )
    failed_bars = views.bars(
        [(str(i + 1), r["failed"]) for i, r in enumerate(data["trend"])], height=100
    )
    context = {
        "org_id": org_id,
        "data": data,
        "tier_bars": tier_bars,
        "rate_bars": rate_bars,
        "failed_bars": failed_bars,
    }
    return render(request, "overview.html", context, session=session, settings=settings)


@router.post("/orgs/{orgId}/runs")
def trigger_page(
    request: Request,
    org_id: OrgPath,
    session: SignedIn,
    settings: SettingsDep,
    directory: DirectoryDep,
    services: ServicesDep,
    dashboard: DashboardDep,
    kind: Annotated[str, Form(pattern="^(full|incremental|dry)$")],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    check_csrf(settings, session, csrf)
    page_org(request, session, org_id, directory)
    run_id, started = views.trigger_run(
        org_id, kind, runs=dashboard.triggers, new_run_id=services.new_run_id(org_id)
    )
    log.info("%s: org %s: %s run %s (started: %s)", session.who, org_id, kind, run_id, started)
    suffix = "" if started else "?already=1"
    return redirect(f"/dashboard/orgs/{org_id}/runs/{run_id}{suffix}")


@router.get("/orgs/{orgId}/runs/{runId}", response_class=HTMLResponse)
def run_page(
    request: Request,
    org_id: OrgPath,
    session: SignedIn,
    settings: SettingsDep,
    directory: DirectoryDep,
    services: ServicesDep,
    run_id: RunPath,
    already: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    org = page_org(request, session, org_id, directory)
    found = views.run_page(
        run_id, live=services.tracker, stored=services.store, tz=ZoneInfo(org.timezone)
    )
    if found is None or found["orgId"] != org_id:
        raise HTTPException(404, f"unknown run {run_id!r}")
    context = {"org_id": org_id, "run": found, "already": bool(already)}
    return render(request, "run.html", context, session=session, settings=settings)


@router.get("/orgs/{orgId}/discrepancies", response_class=HTMLResponse)
def discrepancies_page(
    request: Request,
    org_id: OrgPath,
    session: SignedIn,
    settings: SettingsDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
    flt: ReviewFilterDep,
) -> Response:
    org = page_org(request, session, org_id, directory)
    data = views.discrepancies(org_id, dashboard.store, flt, now=now_of(dashboard))
    query = flt.query()
    here = {**query, **({"cursor": flt.cursor.encode()} if flt.cursor else {})}
    context = {
        "org_id": org_id,
        "data": data,
        "tiers": [t.id for t in org.tiers],
        "query": urlencode(query),
        "back": str(request.url.path) + "?" + urlencode(here),
        "outcomes": views.OUTCOMES,
    }
    return render(request, "discrepancies.html", context, session=session, settings=settings)


@router.post("/orgs/{orgId}/discrepancies/{customerId}/review")
def review_page(
    request: Request,
    org_id: OrgPath,
    customer_id: CustomerPath,
    session: SignedIn,
    settings: SettingsDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
    to: Annotated[str, Form(pattern="^(open|acknowledged|resolved)$")],
    csrf: Annotated[str, Form(max_length=128)] = "",
    outcome: Annotated[str, Form(max_length=32)] = "",
    comment: Annotated[str, Form(max_length=1000)] = "",
    back: Annotated[str, Form(max_length=3000)] = "",
) -> Response:
    check_csrf(settings, session, csrf)
    page_org(request, session, org_id, directory)
    try:
        views.change_review(
            org_id,
            customer_id,
            to=to,
            by=session.who,
            store=dashboard.store,
            now=now_of(dashboard),
            outcome=outcome or None,
            comment=comment or None,
        )
    except views.NotFound:
        raise HTTPException(404, f"unknown customer {customer_id}") from None
    except views.ReviewRefused as exc:
        raise HTTPException(409, str(exc)) from None
    target = f"/dashboard/orgs/{org_id}/discrepancies"
    return redirect(back if back.startswith(target) else target)


@router.get("/orgs/{orgId}/no-account", response_class=HTMLResponse)
def no_account_page(
    request: Request,
    org_id: OrgPath,
    session: SignedIn,
    settings: SettingsDep,
    directory: DirectoryDep,
    services: ServicesDep,
    dashboard: DashboardDep,
    page: PageDep,
) -> Response:
    page_org(request, session, org_id, directory)
    data = views.no_account(
        org_id,
        dashboard.store,
        cursor=page.cursor,
        page_size=page.page_size,
        remembered=services.tracker,
    )
    context = {"org_id": org_id, "data": data}
    return render(request, "no_account.html", context, session=session, settings=settings)


@router.get("/orgs/{orgId}/customers", response_class=HTMLResponse)
def customers_page(
    request: Request,
    org_id: OrgPath,
    session: SignedIn,
    settings: SettingsDep,
    directory: DirectoryDep,
    services: ServicesDep,
    dashboard: DashboardDep,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    page_org(request, session, org_id, directory)
    found = search(org_id, q, services.phone_key, dashboard) if q.strip() else []
    if len(found) == 1:
        return redirect(f"/dashboard/orgs/{org_id}/customers/{found[0]['customerId']}")
    context = {"org_id": org_id, "q": q, "found": found}
    return render(request, "customers.html", context, session=session, settings=settings)


@router.get("/orgs/{orgId}/customers/{customerId}", response_class=HTMLResponse)
def customer_page(
    request: Request,
    org_id: OrgPath,
    customer_id: CustomerPath,
    session: SignedIn,
    settings: SettingsDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
    task: Annotated[str, Query(max_length=64, pattern=r"^[A-Za-z0-9-]*$")] = "",
) -> Response:
    org = page_org(request, session, org_id, directory)
    try:
        data = views.customer_page(
            org,
            customer_id,
            dashboard.store,
            last_verified=views.last_verified(org, dashboard.store),
        )
    except views.NotFound:
        raise HTTPException(404, f"unknown customer {customer_id}") from None
    result = views.sync_result(dashboard.tasks.outcome(task)) if task else None
    context = {"org_id": org_id, "c": data, "task": task, "result": result}
    return render(request, "customer.html", context, session=session, settings=settings)


@router.post("/orgs/{orgId}/customers/{customerId}/sync")
def sync_now_page(
    request: Request,
    org_id: OrgPath,
    customer_id: CustomerPath,
    session: SignedIn,
    settings: SettingsDep,
    directory: DirectoryDep,
    services: ServicesDep,
    dashboard: DashboardDep,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    check_csrf(settings, session, csrf)
    page_org(request, session, org_id, directory)
    if dashboard.store.get_profile(org_id, customer_id) is None:
        raise HTTPException(404, f"unknown customer {customer_id}")
    task_id = services.enqueuer.sync_customer(org_id, customer_id)
    log.info(
        "%s: org %s customer %d: sync now (task %s)", session.who, org_id, customer_id, task_id
    )
    return redirect(f"/dashboard/orgs/{org_id}/customers/{customer_id}?task={task_id}")


@router.get("/orgs/{orgId}/customers/{customerId}/history", response_class=HTMLResponse)
def history_page(
    request: Request,
    org_id: OrgPath,
    customer_id: CustomerPath,
    session: SignedIn,
    settings: SettingsDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
) -> Response:
    org = page_org(request, session, org_id, directory)
    try:
        data = views.history(org, customer_id, dashboard.store)
    except views.NotFound:
        raise HTTPException(404, f"unknown customer {customer_id}") from None
    context = {"org_id": org_id, "h": data}
    return render(request, "history.html", context, session=session, settings=settings)
