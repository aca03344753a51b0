"""The loyalty HTTP API: trigger syncs, follow runs, look points up, receive Alleaves webhooks.

An edge, like the CLI: ``create_app`` only assembles. Each concern is a router in ``routes/``
whose routes parse their input, check the caller (``deps``), call one service and return its
answer; ``errors`` maps the package's errors to statuses (404 unknown org, 503 a dependency
unavailable) in one place. Nothing here syncs a customer: the workers do, through the broker.
``edge`` runs first: a request naming an untrusted ``Host`` is refused before anything else, and
every answer gets the common headers (nosniff, no-store, HSTS over https). ``guard`` runs next,
before every route: a body cap, and on ``/api/`` the bearer check and the per-token rate limit,
all before a body is read. ``RequestLogContext`` wraps them all: every line logged while a
request is served carries the org and the run its route names (``log_context``).
``/docs``, ``/redoc`` and ``/openapi.json`` are served only with ``LOYALTY_API_DOCS=true``.
The dashboard's sign-in runs the Firebase JS SDK, served from here (``/dashboard/static/vendor/``:
the npm package's self-contained browser builds, installed by ``make install``), never from a CDN.

Routes are plain ``def`` functions (FastAPI runs them in its thread pool) because every client
below them (Firestore, Redis, httpx) blocks; only the webhook reads its raw body asynchronously.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from loyalty_worker import log_context
from loyalty_worker.api.dashboard_pages import install_page_errors, refusal_page
from loyalty_worker.api.dashboard_state import DashboardServices
from loyalty_worker.api.edge import EdgeMiddleware, TrustedHosts, client_address
from loyalty_worker.api.errors import install_error_handlers
from loyalty_worker.api.guard import Limits, RequestGuard
from loyalty_worker.api.routes import (
    dashboard,
    dashboard_api,
    dashboard_reviews,
    enrollment,
    health,
    metrics,
    people,
    points,
    runs,
    sign_in,
    sync,
    webhooks,
)
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.api.state import ApiServices, build_state
from loyalty_worker.config import DEFAULT_PUBLIC_URL

__all__ = ["ApiServices", "BrowserSdkMissing", "DashboardServices", "create_app"]

STATIC = Path(__file__).resolve().parent / "static"
# The npm package ``firebase`` (api/browser/package.json), and the two of its files the sign-in
# page loads: UMD scripts that define ``window.firebase``, self-contained (they import nothing).
BROWSER_SDK = Path(__file__).resolve().parent / "browser" / "node_modules" / "firebase"
VENDOR_FILES = ("firebase-app-compat.js", "firebase-auth-compat.js")
VENDOR_PATH = "/dashboard/static/vendor"

log = logging.getLogger(__name__)

_DESCRIPTION = (
    "Trigger and follow loyalty syncs (Alleaves orders → points, reconciled with Alpine IQ, "
    "written to Markitbot), look a customer's points up by phone, and receive Alleaves order "
    "webhooks. Every /api route takes `Authorization: Bearer <token>`; the dashboard's routes "
    "(`/api/loyalty/orgs/...`) also take a signed-in person's session cookie (with its CSRF "
    "token in `X-CSRF-Token` on a change), and answer by that person's role in the org."
)


def create_app(
    services: ApiServices,
    settings: ApiSettings,
    dashboard_services: DashboardServices | None = None,
    *,
    public_url: str = DEFAULT_PUBLIC_URL,
) -> FastAPI:
    """The ASGI app over ``services``; tests pass fakes, ``wiring`` the real clients. Without
    ``dashboard_services`` the dashboard's routes answer 503. ``public_url``
    (``LOYALTY_PUBLIC_URL``) is where people reach it; ValueError unless an http(s) base URL.
    BrowserSdkMissing when the Firebase JS SDK is not installed."""
    vendor = vendor_files()
    docs = settings.docs
    app = FastAPI(
        title="Loyalty sync API",
        version="1",
        description=_DESCRIPTION,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    state = build_state(services, settings, public_url)
    app.state.api = state
    app.state.dashboard = dashboard_services
    # The last added runs first: each request gets its log context, is logged, has its Host
    # checked (and its answer the common headers), then is guarded, then routed.
    app.add_middleware(
        RequestGuard,
        settings=settings,
        limits=Limits(requests=state.limiter, sign_ins=state.sign_in_limiter),
        sessions=state.sessions,
        public_url=state.public_url,
        client_of=lambda scope: client_address(scope, settings.trusted_proxies),
        page_refusal=refusal_page,
        clock=services.clock,
    )
    app.add_middleware(
        EdgeMiddleware,
        hosts=TrustedHosts.of(settings.trusted_hosts, state.public_url),
        https=state.https,
        trusted_proxies=settings.trusted_proxies,
    )
    app.middleware("http")(log_requests)
    app.add_middleware(RequestLogContext)
    install_error_handlers(app)
    install_page_errors(app)
    app.include_router(health.router)
    app.include_router(sync.router)
    app.include_router(runs.router)
    app.include_router(points.router)
    app.include_router(webhooks.router)
    app.include_router(dashboard_api.router)
    app.include_router(metrics.router)
    app.include_router(sign_in.router)
    app.include_router(dashboard.router)
    app.include_router(dashboard_reviews.router)
    app.include_router(enrollment.router)
    app.include_router(people.router)
    # Before the static mount, which would take its paths.
    app.router.add_route(
        f"{VENDOR_PATH}/{{name}}", serve_vendor(vendor), methods=["GET"], include_in_schema=False
    )
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard-static")
    return app


class BrowserSdkMissing(RuntimeError):
    """The Firebase JS SDK's browser files are not installed: the sign-in page cannot work."""


def vendor_files() -> dict[str, Path]:
    """The files ``/dashboard/static/vendor/`` serves, by name; BrowserSdkMissing when one is
    not there."""
    files = {name: BROWSER_SDK / name for name in VENDOR_FILES}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise BrowserSdkMissing(
            f"the dashboard's browser SDK is not installed ({', '.join(missing)} not found in "
            f"{BROWSER_SDK}): run `make install` (it runs npm ci in loyalty_worker/api/browser)"
        )
    return files


def serve_vendor(files: Mapping[str, Path]) -> Callable[[Request], Awaitable[Response]]:
    """The route that serves ``files`` and nothing else, as JavaScript."""

    async def vendor(request: Request) -> Response:
        path = files.get(request.path_params["name"])
        if path is None:
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(
            path,
            media_type="text/javascript; charset=utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    return vendor


async def log_requests(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """One line per request: method, path, status, time."""
    # The path only: query strings carry phone numbers, headers carry tokens. Read from the
    # scope, not ``request.url``: that parses the Host header, which a refused request's may
    # not survive.
    started = time.perf_counter()
    response = await call_next(request)
    log.info(
        "%s %s -> %d (%.1f ms)",
        request.method,
        request.scope["path"],
        response.status_code,
        (time.perf_counter() - started) * 1000,
    )
    return response


class RequestLogContext:
    """Every line logged while a request is served carries the request's context
    (``log_context``), opened empty here and closed when the answer is sent: the routes bind
    what they know, the org a caller acts for (``deps.allow``, the webhook's org) and the run a
    route starts or reads. A route's thread and the request line share the scope, so the line
    ``log_requests`` writes after the route carries them too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = log_context.begin()
        try:
            await self.app(scope, receive, send)
        finally:
            log_context.end(token)
