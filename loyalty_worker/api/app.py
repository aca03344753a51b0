"""The loyalty HTTP API: trigger syncs, follow runs, look points up, receive Alleaves webhooks.

An edge, like the CLI: each route parses its input, checks the caller, calls one service or
enqueues one task by name, and maps the package's errors to statuses (404 unknown org, 503 a
dependency unavailable). Nothing here syncs a customer: the workers do, through the broker.

Routes are plain ``def`` functions (FastAPI runs them in its thread pool) because every client
below them (Firestore, Redis, httpx) blocks; only the webhook reads its raw body asynchronously.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at run
time, and some name types local to ``create_app`` (the authenticated caller).
"""

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import redis
from fastapi import FastAPI, Header, HTTPException, Path, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.api.auth import Caller, authenticate
from loyalty_worker.api.enqueue import Enqueuer
from loyalty_worker.api.models import (
    ORG_ID_PATTERN,
    RUN_ID_PATTERN,
    ErrorBody,
    PointsCheck,
    RunAccepted,
    RunStatus,
    SyncRequest,
    TaskAccepted,
    ValidationErrorBody,
    WebhookAccepted,
    WebhookEvent,
)
from loyalty_worker.api.orgs import OrgDirectory, OrgStore
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.api.webhooks import (
    WebhookGuard,
    customer_of,
    event_time,
    normalize_signature,
    signature_matches,
)
from loyalty_worker.domain.phone import mask_phone
from loyalty_worker.errors import (
    PermanentError,
    SettingsInvalid,
    TransientError,
    UnknownOrg,
)
from loyalty_worker.names import new_run_id
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports import LoyaltyLookup
from loyalty_worker.services.check_points import InvalidPhone, check_points

log = logging.getLogger(__name__)

RETRY_AFTER_S = "5"
_BEARER_CHALLENGE = 'Bearer realm="loyalty"'
_SIGNATURE_CHALLENGE = 'Signature realm="alleaves-webhook", headers="x-alleaves-signature"'


@dataclass
class ApiServices:
    """What the routes work with; ``wiring.build_services`` builds the real ones."""

    store: OrgStore
    tracker: RunTracker
    enqueuer: Enqueuer
    redis: redis.Redis
    alpine_for: Callable[[OrgSettings], LoyaltyLookup | None]
    # Key of the profiles' phoneHash (``Settings.phone_key``), to find a profile by phone.
    phone_key: bytes | None = None
    clock: Callable[[], float] = time.time
    new_run_id: Callable[[str], str] = new_run_id


def _error(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": description}}


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    known = {
        401: "Missing or invalid bearer token.",
        403: "The token may not act for this org.",
        404: "Unknown org (no loyalty settings), or unknown run.",
        503: "Firestore, Redis or the broker is unavailable; retry later.",
    }
    responses: dict[int | str, dict[str, Any]] = {
        422: {"model": ValidationErrorBody, "description": "Invalid input, field named."}
    }
    for status in statuses:
        responses.update(_error(status, known[status]))
    return responses


def create_app(services: ApiServices, settings: ApiSettings) -> FastAPI:
    """The ASGI app over ``services``; tests pass fakes, ``wiring`` the real clients."""
    directory = OrgDirectory(services.store, fallback_secrets=settings.webhook_secrets)
    guard = WebhookGuard(
        services.redis,
        replay_window_s=settings.webhook_replay_window_s,
        dedupe_window_s=settings.webhook_dedupe_window_s,
    )
    app = FastAPI(
        title="Loyalty sync API",
        version="1",
        description="Trigger and follow loyalty syncs (Alleaves orders → points, reconciled with "
        "Alpine IQ, written to Markitbot), look a customer's points up by phone, and receive "
        "Alleaves order webhooks. Every /api route takes `Authorization: Bearer <token>`.",
    )
    bearer = HTTPBearer(
        auto_error=False,
        scheme_name="bearer",
        description="A token of LOYALTY_API_TOKENS, allowed for the org it names.",
    )

    def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> Caller:
        if credentials is None:
            raise HTTPException(
                401, "missing bearer token", headers={"WWW-Authenticate": _BEARER_CHALLENGE}
            )
        found = authenticate(credentials.credentials, settings.tokens)
        if found is None:
            log.warning("refused a request with an unknown bearer token")
            raise HTTPException(
                401,
                "invalid bearer token",
                headers={"WWW-Authenticate": f'{_BEARER_CHALLENGE}, error="invalid_token"'},
            )
        return found

    Authenticated = Annotated[Caller, Security(caller)]

    def allow(who: Caller, org_id: str) -> None:
        if not who.allows(org_id):
            log.warning("caller %s refused for org %s", who.fingerprint, org_id)
            raise HTTPException(403, f"this token may not act for org {org_id!r}")

    _install_error_handlers(app)

    @app.middleware("http")
    async def log_requests(request: Request, call_next: Any) -> Any:
        # The path only: query strings carry phone numbers, headers carry tokens.
        started = time.perf_counter()
        response = await call_next(request)
        log.info(
            "%s %s -> %d (%.1f ms)",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    @app.get("/healthz", summary="Liveness", response_model=dict[str, str])
    def healthz() -> dict[str, str]:
        """The process answers (checks no dependency)."""
        return {"status": "ok"}

    @app.post(
        "/api/loyalty/sync",
        status_code=202,
        summary="Trigger a sync of an org, or of one customer",
        response_model=RunAccepted | TaskAccepted,
        responses=_responses(401, 403, 404, 503),
    )
    def trigger_sync(body: SyncRequest, who: Authenticated, response: Response) -> Any:
        """Enqueue ``loyalty.sync_org`` (answers a run id) or ``loyalty.sync_customer`` (a task
        id). A second org run while one is going is refused by the worker: its run reads
        ``duplicate`` and names the running one."""
        allow(who, body.org_id)
        directory.get_org_settings(body.org_id)
        if body.customer_id is not None:
            task_id = services.enqueuer.sync_customer(
                body.org_id, body.customer_id, dry_run=body.dry_run
            )
            log.info(
                "caller %s: org %s customer %d: sync enqueued (task %s)",
                who.fingerprint,
                body.org_id,
                body.customer_id,
                task_id,
            )
            return TaskAccepted(task_id=task_id)
        run_id = services.new_run_id(body.org_id)
        # Recorded before it is enqueued, so that the run reads "queued" rather than unknown
        # until a worker starts it (which overwrites this record).
        services.tracker.start(run_id, body.org_id, status="queued", dryRun=int(body.dry_run))
        try:
            services.enqueuer.sync_org(body.org_id, run_id=run_id, dry_run=body.dry_run)
        except TransientError as exc:
            services.tracker.update(run_id, status="failed", error=f"{exc.reason}: {exc}")
            raise
        log.info("caller %s: org %s: run %s enqueued", who.fingerprint, body.org_id, run_id)
        status_url = f"/api/loyalty/runs/{run_id}"
        response.headers["Location"] = status_url
        return RunAccepted(run_id=run_id, status_url=status_url)

    @app.get(
        "/api/loyalty/runs/{runId}",
        summary="A run's progress and summary",
        response_model=RunStatus,
        response_model_exclude_none=True,
        responses=_responses(401, 403, 404, 503),
    )
    def run_status(
        run_id: Annotated[
            str, Path(alias="runId", pattern=RUN_ID_PATTERN, description="The run id.")
        ],
        who: Authenticated,
    ) -> RunStatus:
        """Live progress from Redis; once Redis has forgotten the run, its stored summary."""
        progress = services.tracker.progress(run_id)
        if progress.org_id is None:
            stored = services.store.get_run_summary(run_id)
            org_id = stored.get("orgId") if stored else None
            if stored is None or not isinstance(org_id, str):
                raise HTTPException(404, f"unknown run {run_id!r}")
            allow(who, org_id)
            return RunStatus(
                run_id=run_id,
                org_id=org_id,
                status=str(stored.get("status", "completed")),
                listed=stored.get("listed"),
                done=int(stored.get("listed") or 0),
                failed=int(stored.get("failed") or 0),
                error=stored.get("error"),
                summary=stored,
            )
        allow(who, progress.org_id)
        return RunStatus(
            run_id=run_id,
            org_id=progress.org_id,
            status=progress.status,
            listed=progress.listed,
            done=progress.done,
            failed=progress.failed,
            error=progress.error,
            summary=progress.summary,
        )

    @app.get(
        "/api/loyalty/points",
        summary="A customer's points by phone: calculated and Alpine IQ, reconciled",
        response_model=PointsCheck,
        responses=_responses(401, 403, 404, 503),
    )
    def points(
        org_id: Annotated[
            str, Query(alias="orgId", pattern=ORG_ID_PATTERN, description="The org.")
        ],
        phone: Annotated[
            str,
            Query(min_length=1, max_length=32, description="The customer's US phone, any format."),
        ],
        who: Authenticated,
    ) -> PointsCheck:
        """The profile's calculated points (last sync) and Alpine IQ's live balance. With Alpine
        IQ down the answer comes from Firestore alone: ``alpineAvailable`` false, and a note."""
        allow(who, org_id)
        org = directory.get_org_settings(org_id)
        try:
            answer = check_points(
                org_id,
                phone,
                store=directory,
                alpine=services.alpine_for(org),
                phone_key=services.phone_key,
            )
        except InvalidPhone as exc:
            raise RequestValidationError(
                [{"loc": ("query", "phone"), "msg": str(exc), "type": "value_error"}]
            ) from None
        log.info(
            "caller %s: org %s: points of %s: %s",
            who.fingerprint,
            org_id,
            mask_phone(phone),
            answer["status"],
        )
        return PointsCheck.model_validate(answer)

    @app.post(
        "/webhooks/alleaves",
        status_code=202,
        summary="Alleaves order webhook: sync that customer",
        response_model=WebhookAccepted,
        response_model_exclude_none=True,
        responses={
            401: {"model": ErrorBody, "description": "Bad, missing, stale or replayed signature."},
            413: {"model": ErrorBody, "description": "Body too large."},
            422: {"model": ValidationErrorBody, "description": "No org, or not an event."},
            503: {"model": ErrorBody, "description": "Redis or the broker is unavailable."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": WebhookEvent.model_json_schema()}},
            }
        },
    )
    async def alleaves_webhook(
        request: Request,
        x_alleaves_signature: Annotated[
            str | None,
            Header(description="Hex HMAC-SHA256 of the raw body with the org's webhook secret."),
        ] = None,
        x_alleaves_org: Annotated[
            str | None, Header(description="The org the event belongs to.")
        ] = None,
        org_query: Annotated[
            str | None, Query(alias="orgId", description="The org, when no header names it.")
        ] = None,
    ) -> WebhookAccepted:
        """Verified, fresh, first-seen events about an order or a customer enqueue that
        customer's ``loyalty.sync_customer``, once per dedupe window; others are acknowledged."""
        org_id = _webhook_org(x_alleaves_org, org_query)
        body = await _read_body(request, settings.webhook_max_body_bytes)
        return await run_in_threadpool(handle_webhook, org_id, x_alleaves_signature, body)

    def handle_webhook(org_id: str, signature_header: str | None, body: bytes) -> WebhookAccepted:
        if not signature_header:
            raise _unsigned("missing x-alleaves-signature")
        signature = normalize_signature(signature_header)
        if signature is None:
            raise _unsigned("malformed x-alleaves-signature")
        try:
            secret = directory.webhook_secret(org_id)
        except UnknownOrg:
            log.warning("webhook for unknown org %s refused", org_id)
            raise _unsigned("signature does not match") from None
        if secret is None:
            log.warning("webhook for org %s refused: the org has no webhook secret", org_id)
            raise _unsigned("signature does not match")
        if not signature_matches(body, signature, secret):
            log.warning("webhook for org %s refused: bad signature", org_id)
            raise _unsigned("signature does not match")
        event = _parse_event(body)
        sent_at = event_time(event.timestamp)
        window = settings.webhook_replay_window_s
        if sent_at is None or abs(services.clock() - sent_at) > window:
            log.warning("webhook for org %s refused: timestamp outside %d s", org_id, window)
            raise _unsigned(f"timestamp missing or more than {window} s from now")
        if not guard.first_delivery(org_id, signature):
            log.warning("webhook for org %s refused: replayed delivery", org_id)
            raise _unsigned("this delivery was already received")
        customer_id = customer_of(event.event, event.data)
        if customer_id is None:
            reason = f"event {event.event!r} names no customer to sync"
            return WebhookAccepted(enqueued=False, reason=reason)
        if not guard.claim_customer(org_id, customer_id):
            return WebhookAccepted(
                enqueued=False,
                reason=f"a sync of customer {customer_id} is already queued",
            )
        try:
            task_id = services.enqueuer.sync_customer(
                org_id, customer_id, delay_s=float(guard.dedupe_window_s)
            )
        except TransientError:
            # Nothing was enqueued: let the sender's retry of this very delivery through.
            guard.release_customer(org_id, customer_id)
            guard.forget_delivery(org_id, signature)
            raise
        log.info(
            "webhook %s: org %s customer %d: sync enqueued (task %s)",
            event.event,
            org_id,
            customer_id,
            task_id,
        )
        return WebhookAccepted(enqueued=True, task_id=task_id)

    return app


def _unsigned(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": _SIGNATURE_CHALLENGE})


def _webhook_org(header: str | None, query: str | None) -> str:
    if header and query and header != query:
        raise _invalid(("header", "x-alleaves-org"), "differs from the orgId query parameter")
    org_id = header or query
    if not org_id:
        raise _invalid(("query", "orgId"), "name the org: x-alleaves-org header or ?orgId=")
    if not re.match(ORG_ID_PATTERN, org_id):
        raise _invalid(("query", "orgId"), "not an org id")
    return org_id


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_event(body: bytes) -> WebhookEvent:
    try:
        return WebhookEvent.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {"loc": ("body", *error["loc"]), "msg": error["msg"], "type": error["type"]}
                for error in exc.errors(include_url=False, include_input=False)
            ]
        ) from None


def _invalid(loc: tuple[str, str], msg: str) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"}])


def _field_name(loc: Sequence[Any]) -> str:
    """The name a person would look for: the last named part (``orgId``, ``phone``)."""
    named = [str(part) for part in loc if isinstance(part, str)]
    return named[-1] if named else ".".join(str(part) for part in loc)


def _install_error_handlers(app: FastAPI) -> None:
    def unavailable(detail: str) -> JSONResponse:
        return JSONResponse(
            {"detail": detail}, status_code=503, headers={"Retry-After": RETRY_AFTER_S}
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the input; a phone number or a secret may be in it.
        errors = [
            {
                "field": _field_name(error.get("loc", ())),
                "loc": list(error.get("loc", ())),
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "value_error")),
            }
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(UnknownOrg)
    async def unknown_org(request: Request, exc: UnknownOrg) -> JSONResponse:
        return JSONResponse({"detail": f"unknown org {exc.org_id!r}"}, status_code=404)

    @app.exception_handler(SettingsInvalid)
    async def settings_invalid(request: Request, exc: SettingsInvalid) -> JSONResponse:
        log.error("%s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=500)

    @app.exception_handler(TransientError)
    async def transient(request: Request, exc: TransientError) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return unavailable(f"{exc.service} is unavailable; retry later")

    @app.exception_handler(PermanentError)
    async def permanent(request: Request, exc: PermanentError) -> JSONResponse:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": f"{exc.service} refused: {exc.reason}"}, status_code=502)

    @app.exception_handler(redis.RedisError)
    async def redis_down(request: Request, exc: redis.RedisError) -> JSONResponse:
        log.warning("%s %s: Redis: %s", request.method, request.url.path, type(exc).__name__)
        return unavailable("redis is unavailable; retry later")
