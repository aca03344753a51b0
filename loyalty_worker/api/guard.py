"""The gate every request passes before any route runs: a body cap, the bearer check, a rate limit.

FastAPI reads and parses a route's body before its dependencies run, so a bearer dependency alone
would let a stranger make the API read and parse whatever they send. This ASGI middleware runs
first, in this order, and answers itself when a request fails:

1. a declared ``Content-Length`` over the path's limit: 413, nothing read;
2. an ``/api/`` path without a known bearer token (or, without an ``Authorization`` header, the
   dashboard's session cookie): 401, nothing read;
3. a token over ``LOYALTY_API_RATE_LIMIT_PER_MIN``: 429 with ``Retry-After``, nothing read (the
   limit is a sliding window per token fingerprint in Redis, shared by every API process);
4. the body, read and counted chunk by chunk (a streamed body declares no length): 413 as soon
   as it passes the limit, before the route runs; otherwise the route reads it as sent.

The caller found in step 2 is left in the request's state for ``deps.caller``.
"""

from __future__ import annotations

import logging
import sys

import redis
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty_worker.adapters.rate_limit import RedisSlidingWindow
from loyalty_worker.api.auth import BearerRefused, Caller, bearer_caller
from loyalty_worker.api.errors import bearer_refused, rate_limited, too_large, unavailable
from loyalty_worker.api.session import cookie_caller
from loyalty_worker.api.settings import ApiSettings

log = logging.getLogger(__name__)

BEARER_PREFIX = "/api/"
WEBHOOK_PATH = "/webhooks/alleaves"


class RequestGuard:
    """ASGI middleware: body cap on every route; bearer check and rate limit on ``/api/``."""

    def __init__(
        self, app: ASGIApp, *, settings: ApiSettings, limiter: RedisSlidingWindow | None
    ) -> None:
        """``limiter`` None: no rate limit (``LOYALTY_API_RATE_LIMIT_PER_MIN=0``)."""
        self._app = app
        self._settings = settings
        self._limiter = limiter

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
        if path.startswith(BEARER_PREFIX):
            try:
                caller = bearer_caller(headers.get("authorization"), self._settings.tokens)
            except BearerRefused as exc:
                # The dashboard's pages call their JSON twins with the session cookie instead.
                found = None
                if "authorization" not in headers:
                    found = cookie_caller(headers.get("cookie"), self._settings.tokens)
                if found is None:
                    await bearer_refused(exc)(scope, receive, send)
                    return
                caller = found
            refusal = await self._over_rate(caller)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            scope.setdefault("state", {})["caller"] = caller
        body = await _read_body(receive, limit)
        if body is None:
            await too_large(limit)(scope, receive, send)
            return
        await self._app(scope, _replay(body, receive), send)

    async def _over_rate(self, caller: Caller) -> Response | None:
        """The answer to give instead of running the route, or None to go on."""
        if self._limiter is None:
            return None
        try:
            wait_s = await run_in_threadpool(self._limiter.try_acquire, caller.fingerprint)
        except redis.RedisError as exc:
            log.warning("rate limit: Redis: %s", type(exc).__name__)
            return unavailable("redis is unavailable; retry later")
        if wait_s <= 0:
            return None
        log.warning("caller %s over its rate limit", caller.fingerprint)
        return rate_limited(self._settings.rate_limit_per_min, wait_s)


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
