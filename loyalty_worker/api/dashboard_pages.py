"""How the dashboard answers in HTML: its templates, their security headers, redirects and
cookies, and every refusal of a page as a page (a JSON route's stays JSON).

The services' errors are mapped here, once: ``NotFound`` is a 404 and ``ReviewRefused`` a 409,
an HTML page for a page and JSON for a JSON route. So is invalid input: a page's address or form
with a value it cannot use (a filter typed into the address, a stale cursor) answers a 422 page
naming each field and what is wrong with it (never the value), with a link to the page without
its query.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from loyalty_worker.api.dashboard_deps import Access, error_page_access, is_page
from loyalty_worker.api.errors import invalid_input, invalid_inputs
from loyalty_worker.api.session import Principal, cookie_name, served_securely
from loyalty_worker.domain.access import Action
from loyalty_worker.domain.review import ReviewRefused
from loyalty_worker.services.dashboard.formatting import in_words, local_time, number, show_phone
from loyalty_worker.services.dashboard.page import NotFound
from loyalty_worker.services.dashboard.review_changes import outcome_words

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
# Codes in words and numbers with thousands separators, on every page.
TEMPLATES.env.filters["words"] = in_words
TEMPLATES.env.filters["num"] = number
# A stamp in the org's zone (``{{ at|in_zone(tz) }}``), and an outcome in words.
TEMPLATES.env.filters["in_zone"] = lambda value, tz: local_time(value, ZoneInfo(tz))
TEMPLATES.env.globals["outcome_words"] = outcome_words
# Ten digits as people read them.
TEMPLATES.env.filters["phone"] = show_phone
TEMPLATES.env.globals["Action"] = Action
# Pages load nothing but their own stylesheet and script. Every answer's other headers (nosniff,
# no-store, the referrer and frame policies, HSTS) are set in one place: ``edge``.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}
_TITLES = {
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    429: "Too many requests",
    422: "This address asks for something the page cannot show",
    503: "Unavailable",
}


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    who: Access | Principal | None,
    status: int = 200,
    *,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page: its template over ``context``, with who is signed in (``me``), their session's
    CSRF token, and what they may do for the org of the page (``access``: ``access.may(...)``
    decides which controls the page shows)."""
    me = who.who if isinstance(who, Access) else who
    shown = {
        "me": me,
        "csrf": me.csrf if me is not None else "",
        "access": who if isinstance(who, Access) else None,
        **context,
    }
    return TEMPLATES.TemplateResponse(
        request, name, shown, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})}
    )


def redirect(url: str) -> RedirectResponse:
    """After a form: see the page that shows its result (303; never cached, as no answer is)."""
    return RedirectResponse(url, status_code=303)


def set_cookie(
    response: Response, public_url: str, base: str, value: str, max_age: int | None
) -> None:
    """A cookie only this site's requests carry, never to scripts: ``__Host-`` and ``Secure``
    when people reach the dashboard over https (``LOYALTY_PUBLIC_URL``, never the request's
    ``Host``). ``max_age`` None: it ends with the browser."""
    response.set_cookie(
        cookie_name(base, public_url),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=served_securely(public_url),
    )


def drop_cookie(response: Response, public_url: str, base: str) -> None:
    response.delete_cookie(
        cookie_name(base, public_url),
        path="/",
        httponly=True,
        samesite="strict",
        secure=served_securely(public_url),
    )


def refusal_page(request: Request, status: int, detail: str, headers: dict[str, str]) -> Response:
    """A refusal the request guard gives on a page (429, 403), as a page."""
    context = {
        "org_id": None,
        "status": status,
        "title": _TITLES.get(status, "Something went wrong"),
        "detail": detail,
    }
    return render(request, "error.html", context, None, status, headers=headers)


async def page_errors(request: Request, exc: StarletteHTTPException) -> Response:
    """A page's refusal as a page (a JSON route's stays JSON); redirects pass through."""
    path = request.url.path
    if exc.status_code < 400 or not is_page(request) or "/static/" in path:
        return await http_exception_handler(request, exc)
    who, org_id = error_page_access(request)
    context = {
        "org_id": org_id,
        "status": exc.status_code,
        "title": _TITLES.get(exc.status_code, "Something went wrong"),
        "detail": str(exc.detail),
    }
    response = render(request, "error.html", context, who, exc.status_code)
    response.headers.update(exc.headers or {})
    return response


async def _invalid_page_input(request: Request, exc: RequestValidationError) -> Response:
    if not is_page(request):
        return await invalid_input(request, exc)
    who, org_id = error_page_access(request)
    context = {
        "org_id": org_id,
        "status": 422,
        "title": _TITLES[422],
        "detail": "Nothing was changed. Check the values named below, or start again from the "
        "page without them.",
        "problems": [(problem["field"], problem["msg"]) for problem in invalid_inputs(exc)],
        "retry": request.url.path if request.method == "GET" else None,
    }
    return render(request, "error.html", context, who, 422)


async def _not_found(request: Request, exc: NotFound) -> Response:
    return await page_errors(request, HTTPException(404, str(exc)))


async def _refused(request: Request, exc: ReviewRefused) -> Response:
    return await page_errors(request, HTTPException(409, str(exc)))


def install_page_errors(app: FastAPI) -> None:
    """Answer refusals, invalid input (and the services' NotFound and ReviewRefused) as pages on
    the pages."""
    app.exception_handler(StarletteHTTPException)(page_errors)
    app.exception_handler(RequestValidationError)(_invalid_page_input)
    app.exception_handler(NotFound)(_not_found)
    app.exception_handler(ReviewRefused)(_refused)
