"""Signing in and out of the dashboard as a person, with Markitbot's accounts.

The sign-in page signs the person in with the Firebase JS SDK (served by this API, nothing from
a CDN); the password goes to Firebase Authentication only, never here. The page then posts the
account's ID token, which is checked once (signature, project, expiry, revocation), and a
server-side session opens (``adapters.sessions``): its id in the cookie, nothing else. A person
who holds no role in any org is told so and gets no session.

Sign-in posts are limited per client address (``guard``) and per account (here, by the account
the token names before it is checked, so one account cannot be tried from many addresses
faster). Sign-out ends the session on the server: a copy of the cookie opens nothing after it.

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import base64
import json
import logging
import math
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from loyalty_worker.api.dashboard_deps import SIGN_IN, DashboardDep, PrincipalDep
from loyalty_worker.api.dashboard_pages import drop_cookie, redirect, render, set_cookie
from loyalty_worker.api.deps import StateDep
from loyalty_worker.api.session import SESSION_COOKIE, SIGN_IN_COOKIE, SIGN_IN_TTL_S, cookie_name
from loyalty_worker.ports.people import SignInRefused

log = logging.getLogger(__name__)

router = APIRouter(prefix="/dashboard", include_in_schema=False)

NO_ROLE = (
    "This account holds no role in any dispensary's loyalty dashboard. Ask an admin of your "
    "dispensary to add you on its People page."
)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, state: StateDep, dashboard: DashboardDep) -> Response:
    return _sign_in_form(request, state, dashboard, error=None, status=200)


def _sign_in_form(
    request: Request, state: StateDep, dashboard: DashboardDep, *, error: str | None, status: int
) -> Response:
    """The sign-in form, tied to a fresh pre-session by its CSRF token."""
    form_id, csrf = state.sessions.open_sign_in(SIGN_IN_TTL_S)
    config = dashboard.sign_in
    context = {"csrf": csrf, "error": error, "firebase": config}
    # The page's script talks to Firebase Authentication (or its local emulator) and nothing
    # else.
    connect = " ".join(["'self'", *(config.endpoints if config else ())])
    headers = {
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    }
    response = render(request, "sign_in.html", context, None, status, headers=headers)
    set_cookie(response, state.public_url, SIGN_IN_COOKIE, form_id, SIGN_IN_TTL_S)
    return response


@router.post("/sign-in")
def sign_in(
    request: Request,
    state: StateDep,
    dashboard: DashboardDep,
    id_token: Annotated[str, Form(alias="idToken", max_length=8192)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """An ID token in, a session out (303 to the dashboard); the form again with the reason
    otherwise."""
    form_id = request.cookies.get(cookie_name(SIGN_IN_COOKIE, state.public_url), "")
    expected = state.sessions.take_sign_in(form_id)
    if expected is None or not csrf or expected != csrf:
        log.warning("refused a sign-in without its form's CSRF token")
        error = "The sign-in form expired; sign in again."
        return _sign_in_form(request, state, dashboard, error=error, status=403)
    if not id_token:
        error = "Signing in needs JavaScript: turn it on for this site and sign in again."
        return _sign_in_form(request, state, dashboard, error=error, status=400)
    if dashboard.accounts is None or dashboard.members is None:
        raise HTTPException(503, "signing in is not configured in this process")
    wait_s = state.sign_in_limiter.try_acquire(f"account:{_claimed_account(id_token)}")
    if wait_s > 0:
        log.warning("sign-in attempts over the limit for one account")
        per_min = state.settings.sign_in_limit_per_min
        raise HTTPException(
            429,
            f"more than {per_min} sign-in attempts a minute for this account; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )
    try:
        account = dashboard.accounts.verify(id_token)
    except SignInRefused as exc:
        log.warning("refused a sign-in: %s", exc.reason)
        return _sign_in_form(request, state, dashboard, error=exc.reason, status=401)
    if not dashboard.members.roles_of(account.uid):
        log.warning("refused a sign-in of uid %s: no role in any org", account.uid)
        return _sign_in_form(request, state, dashboard, error=NO_ROLE, status=403)
    session_id, _ = state.sessions.open(account.uid, account.email, state.services.clock())
    log.info("dashboard sign-in: uid %s", account.uid)
    response = redirect("/dashboard")
    set_cookie(response, state.public_url, SESSION_COOKIE, session_id, state.settings.session_max_s)
    drop_cookie(response, state.public_url, SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
def sign_out(request: Request, who: PrincipalDep, state: StateDep) -> Response:
    """End the session on the server (``guard`` has checked the form's CSRF token)."""
    session_id = request.cookies.get(cookie_name(SESSION_COOKIE, state.public_url), "")
    state.sessions.end(session_id)
    log.info("dashboard sign-out: %s", who.name)
    response = redirect(SIGN_IN)
    drop_cookie(response, state.public_url, SESSION_COOKIE)
    return response


def _claimed_account(id_token: str) -> str:
    """The account an ID token claims to be (its ``sub``, unchecked: only a limit's key), or
    ``-`` for a token that names none."""
    parts = id_token.split(".")
    if len(parts) != 3:
        return "-"
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return "-"
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub[:128] if isinstance(sub, str) and sub else "-"
