"""The door every request passes before any route runs: a body cap, who calls, a rate limit, and
the CSRF check of a change made with a session cookie.

FastAPI reads and parses a route's body before its dependencies run, so a dependency alone would
let a stranger make the API read and parse whatever they send. This ASGI middleware runs first,
in this order, and answers itself when a request fails:

1. a declared ``Content-Length`` over the path's limit: 413, nothing read;
2. who calls, by path (``Door``): a machine route (``/api/...`` but the dashboard's twins, and
   ``/metrics``) takes only ``Authorization: Bearer <token>``: 401 without a known one; the
   dashboard's JSON twins (``/api/loyalty/orgs/...``) take a token or the session cookie (401
   without either); the pages take only the session cookie (a token does not open the
   dashboard; a page without a session sends the person to sign in); health checks, static
   files and the signed webhook take none of these;
3. one rate limit for every caller (``LOYALTY_API_RATE_LIMIT_PER_MIN`` in any minute, a
   sliding-window log per person, token, or before sign-in per client address, in Redis shared
   by every API process), and the sign-in posts' own limit per client address: 429 with
   ``Retry-After``, a page on a page, nothing read;
4. the body, read and counted chunk by chunk (a streamed body declares no length): 413 as soon
   as it passes the limit;
5. a change (any method but GET, HEAD, OPTIONS) made with the session cookie must carry the
   session's CSRF token (the ``X-CSRF-Token`` header, or the form's ``csrf`` field): 403
   otherwise, before the route runs.

Who called is left in the request's state (``principal``) for the routes' dependencies.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import redis
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty_worker.adapters.rate_limit import RedisSlidingWindow
from loyalty_worker.api.auth import BearerRefused, bearer_caller
from loyalty_worker.api.errors import bearer_refused, too_large, unavailable
from loyalty_worker.api.session import SESSION_COOKIE, Principal, cookie_name, csrf_valid
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.ports.people import SessionStore

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/alleaves"
PAGES = "/dashboard"
TWINS = "/api/loyalty/orgs/"
SIGN_IN = "/dashboard/sign-in"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM = "application/x-www-form-urlencoded"
# What answers a refusal on a page as a page: (request, status, detail, headers) -> response.
PageRefusal = Callable[[Request, int, str, dict[str, str]], Response]


@dataclass(frozen=True, slots=True)
class Limits:
    """The guard's limiters (None: that limit is off)."""

    requests: RedisSlidingWindow | None
    sign_ins: RedisSlidingWindow


def door(path: str) -> str:
    """Which door a path is: ``open`` (health, static files, the webhook, sign-in), ``machine``
    (bearer only), ``twin`` (bearer or session) or ``page`` (session only)."""
    if path == WEBHOOK_PATH or path.startswith(("/healthz", PAGES + "/static/")):
        return "open"
    if path == SIGN_IN:
        return "sign-in"
    if path.startswith(TWINS):
        return "twin"
    if path.startswith("/api/") or path == "/metrics":
        return "machine"
    if path == PAGES or path.startswith(PAGES + "/"):
        return "page"
    return "open"


class RequestGuard:
    """ASGI middleware: body cap, caller, rate limits and CSRF before any route."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: ApiSettings,
        limits: Limits,
        sessions: SessionStore,
        public_url: str,
        client_of: Callable[[Scope], str],
        page_refusal: PageRefusal,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._settings = settings
        self._limits = limits
        self._sessions = sessions
        self._cookie = cookie_name(SESSION_COOKIE, public_url)
        self._client_of = client_of
        self._page_refusal = page_refusal
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = (
            self._settings.webhook_max_body_bytes
            if path == WEBHOOK_PATH
            else self._settings.max_body_bytes
        )
        headers = Headers(scope=scope)
        if _declared_length(headers) > limit:
            await too_large(limit)(scope, receive, send)
            return
        kind = door(path)
        principal: Principal | None = None
        if kind != "open":
            try:
                principal = await self._who(kind, headers)
            except BearerRefused as exc:
                await bearer_refused(exc)(scope, receive, send)
                return
            except redis.RedisError as exc:
                log.warning("sessions: Redis: %s", type(exc).__name__)
                await unavailable("redis is unavailable; retry later")(scope, receive, send)
                return
            refusal = await self._over_rate(scope, kind, principal)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        body = await _read_body(receive, limit)
        if body is None:
            await too_large(limit)(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and not _carries_csrf(principal, headers, body):
            log.warning("refused a change without the session's CSRF token (%s)", path)
            refusal = self._refuse(scope, kind, 403, "missing or invalid CSRF token", {})
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self._app(scope, _replay(body, receive), send)

    async def _who(self, kind: str, headers: Headers) -> Principal | None:
        """The caller at this door; BearerRefused where a token is required and none is known."""
        if kind == "machine" or (kind == "twin" and "authorization" in headers):
            caller = bearer_caller(headers.get("authorization"), self._settings.tokens)
            return Principal.of_token(caller)
        session_id = cookie_parser(headers.get("cookie", "")).get(self._cookie)
        if kind in ("twin", "page") and session_id:
            record = await run_in_threadpool(self._sessions.use, session_id, self._clock())
            if record is not None:
                return Principal.of_session(record)
        if kind == "twin":
            bearer_caller(None, self._settings.tokens)  # raises: no token, no session
        return None

    async def _over_rate(
        self, scope: Scope, kind: str, principal: Principal | None
    ) -> Response | None:
        """The answer to give instead of running the route, or None to go on."""
        client = self._client_of(scope)
        checks: list[tuple[RedisSlidingWindow, str, int]] = []
        if self._limits.requests is not None:
            key = principal.key if principal is not None else f"client:{client}"
            checks.append((self._limits.requests, key, self._settings.rate_limit_per_min))
        if kind == "sign-in" and scope["method"] == "POST":
            checks.append(
                (self._limits.sign_ins, f"client:{client}", self._settings.sign_in_limit_per_min)
            )
        for limiter, key, per_min in checks:
            try:
                wait_s = await run_in_threadpool(limiter.try_acquire, key)
            except redis.RedisError as exc:
                log.warning("rate limit: Redis: %s", type(exc).__name__)
                return unavailable("redis is unavailable; retry later")
            if wait_s > 0:
                log.warning("%s over its rate limit", key.partition(":")[0])
                detail = f"rate limit of {per_min} requests per minute reached; retry later"
                wait = {"Retry-After": str(max(1, math.ceil(wait_s)))}
                return self._refuse(scope, kind, 429, detail, wait)
        return None

    def _refuse(
        self, scope: Scope, kind: str, status: int, detail: str, headers: dict[str, str]
    ) -> Response:
        """A refusal: a page on a page, JSON elsewhere."""
        if kind in ("page", "sign-in"):
            return self._page_refusal(Request(scope), status, detail, headers)
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _carries_csrf(principal: Principal | None, headers: Headers, body: bytes) -> bool:
    """Whether a change carries its session's CSRF token, in the header or the form's field
    (a change made without a session needs none: a token or sign-in is no browser's ambient
    credential)."""
    if principal is None or principal.session is None:
        return True
    presented = headers.get("x-csrf-token")
    if presented is None and headers.get("content-type", "").startswith(FORM):
        fields = parse_qs(body.decode("latin-1"), max_num_fields=200)
        presented = next(iter(fields.get("csrf", [])), None)
    return csrf_valid(principal.session, presented)


def _declared_length(headers: Headers) -> int:
    """The declared body length; 0 when none is declared (the stream is counted instead)."""
    declared = headers.get("content-length", "").strip()
    # A malformed length never reaches here through uvicorn (it answers 400 itself).
    if not declared.isdigit():
        return 0
    return int(declared) if len(declared) < 19 else sys.maxsize


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes ``limit`` bytes (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over ``body`` once, then waits on the client (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
