"""Every error the API answers, mapped to its status in one place.

401 no or an unknown bearer token, or an untrusted webhook (for a webhook, an unknown org or one
with invalid settings too: the sender learns nothing about the org), 404 an unknown org, 413 a
body too large, 422 invalid input (values never echoed: a phone number or a secret may be in
them), 429 a token over its rate (with ``Retry-After``), 500 invalid org settings, 502 a
dependency's refusal, 503 a dependency unavailable (with ``Retry-After``). Routes raise the
package's errors; this maps them, and builds the answers ``guard`` gives before any route runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from loyalty_worker.api.auth import BEARER_CHALLENGE, BearerRefused
from loyalty_worker.api.models import ErrorBody, ValidationErrorBody
from loyalty_worker.errors import PermanentError, SettingsInvalid, TransientError, UnknownOrg
from loyalty_worker.services.lookup.webhooks import WebhookRefused

log = logging.getLogger(__name__)

__all__ = ["BEARER_CHALLENGE", "documented", "install_error_handlers", "responses"]

RETRY_AFTER_S = "5"
SIGNATURE_CHALLENGE = 'Signature realm="alleaves-webhook", headers="x-alleaves-signature"'
_KNOWN = {
    400: "The body is not text (FastAPI reads JSON bodies as UTF-8).",
    401: "Missing or invalid bearer token.",
    403: "The token may not act for this org.",
    404: "Unknown org (no loyalty settings), or no run of the caller's with this id.",
    413: "Body too large.",
    429: "The caller's rate limit is spent; retry after Retry-After seconds.",
    503: "Firestore, Redis or the broker is unavailable; retry later.",
}


def documented(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses``: each status with what it means and its body (422's lists the
    invalid inputs, the others' are an ``ErrorBody``), in the order given."""
    return {
        status: {"model": ValidationErrorBody if status == 422 else ErrorBody, "description": text}
        for status, text in descriptions.items()
    }


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a bearer route: what ``guard`` answers (401, 413, 429), 422
    and the given statuses."""
    known = {status: _KNOWN[status] for status in sorted({401, 413, 429, *statuses})}
    return documented({422: "Invalid input, field named.", **known})


def invalid(loc: tuple[str, str], msg: str) -> RequestValidationError:
    """A 422 naming one input."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"}])


def invalid_body(exc: ValidationError) -> RequestValidationError:
    """A 422 for a body pydantic refused, each error located in the body."""
    return RequestValidationError(
        [
            {"loc": ("body", *error["loc"]), "msg": error["msg"], "type": error["type"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
    )


def _field_name(loc: Sequence[Any]) -> str:
    """The name a person would look for: the last named part (``orgId``, ``phone``)."""
    named = [str(part) for part in loc if isinstance(part, str)]
    return named[-1] if named else ".".join(str(part) for part in loc)


def unavailable(detail: str) -> JSONResponse:
    """503, retry in a few seconds."""
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": RETRY_AFTER_S})


def bearer_refused(exc: BearerRefused) -> JSONResponse:
    """401 with the bearer challenge."""
    return JSONResponse(
        {"detail": exc.detail}, status_code=401, headers={"WWW-Authenticate": exc.challenge}
    )


def too_large(limit: int) -> JSONResponse:
    """413: the body is larger than ``limit`` bytes."""
    return JSONResponse({"detail": f"body larger than {limit} bytes"}, status_code=413)


def invalid_inputs(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Each invalid input: its field's name, where it is, what is wrong; never its value."""
    return [
        {
            "field": _field_name(error.get("loc", ())),
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "value_error")),
        }
        for error in exc.errors()
    ]


async def invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 listing the invalid inputs (FastAPI's default echoes the input: a phone number or a
    secret may be in it)."""
    return JSONResponse({"detail": invalid_inputs(exc)}, status_code=422)


async def _bearer_refused(request: Request, exc: BearerRefused) -> JSONResponse:
    return bearer_refused(exc)


async def _webhook_refused(request: Request, exc: WebhookRefused) -> JSONResponse:
    return JSONResponse(
        {"detail": exc.detail}, status_code=401, headers={"WWW-Authenticate": SIGNATURE_CHALLENGE}
    )


async def _unknown_org(request: Request, exc: UnknownOrg) -> JSONResponse:
    return JSONResponse({"detail": f"unknown org {exc.org_id!r}"}, status_code=404)


async def _settings_invalid(request: Request, exc: SettingsInvalid) -> JSONResponse:
    log.error("%s", exc)
    return JSONResponse({"detail": str(exc)}, status_code=500)


async def _transient(request: Request, exc: TransientError) -> JSONResponse:
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return unavailable(f"{exc.service} is unavailable; retry later")


async def _permanent(request: Request, exc: PermanentError) -> JSONResponse:
    log.error("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": f"{exc.service} refused: {exc.reason}"}, status_code=502)


async def _redis_down(request: Request, exc: redis.RedisError) -> JSONResponse:
    log.warning("%s %s: Redis: %s", request.method, request.url.path, type(exc).__name__)
    return unavailable("redis is unavailable; retry later")


def install_error_handlers(app: FastAPI) -> None:
    """Map the package's errors (and invalid input) to the API's statuses and bodies."""
    app.exception_handler(RequestValidationError)(invalid_input)
    app.exception_handler(BearerRefused)(_bearer_refused)
    app.exception_handler(WebhookRefused)(_webhook_refused)
    app.exception_handler(UnknownOrg)(_unknown_org)
    app.exception_handler(SettingsInvalid)(_settings_invalid)
    app.exception_handler(TransientError)(_transient)
    app.exception_handler(PermanentError)(_permanent)
    app.exception_handler(redis.RedisError)(_redis_down)
