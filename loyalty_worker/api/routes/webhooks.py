"""``POST /webhooks/alleaves``: Alleaves order and customer events (``services.lookup.webhooks``).

The route finds the org, reads the raw body (the signature covers its exact bytes; ``guard`` has
already refused one over ``LOYALTY_API_WEBHOOK_MAX_BODY_BYTES``) and hands both to the receiver,
in the thread pool since the receiver's clients block.

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import re
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from loyalty_worker import log_context
from loyalty_worker.api.deps import WebhooksDep
from loyalty_worker.api.errors import documented, invalid
from loyalty_worker.api.models import ORG_ID_PATTERN, WebhookAccepted, WebhookEvent

router = APIRouter()

_RESPONSES = documented(
    {
        401: "Bad, missing, stale or replayed signature; or an org that cannot receive webhooks "
        "(unknown, no secret, invalid settings), answered alike.",
        413: "Body too large.",
        422: "No org, or not an event.",
        503: "Redis or the broker is unavailable.",
    }
)
# The body is read raw (the signature covers its bytes), so the schema is declared here.
_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": WebhookEvent.model_json_schema()}},
    }
}


@router.post(
    "/webhooks/alleaves",
    status_code=202,
    summary="Alleaves order webhook: sync that customer",
    response_model=WebhookAccepted,
    response_model_exclude_none=True,
    responses=_RESPONSES,
    openapi_extra=_REQUEST_BODY,
)
async def alleaves_webhook(
    request: Request,
    receiver: WebhooksDep,
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
    log_context.bind(org_id=org_id)
    body = await request.body()
    outcome = await run_in_threadpool(receiver.receive, org_id, x_alleaves_signature, body)
    return WebhookAccepted(
        enqueued=outcome.enqueued, task_id=outcome.task_id, reason=outcome.reason
    )


def _webhook_org(header: str | None, query: str | None) -> str:
    if header and query and header != query:
        raise invalid(("header", "x-alleaves-org"), "differs from the orgId query parameter")
    org_id = header or query
    if not org_id:
        raise invalid(("query", "orgId"), "name the org: x-alleaves-org header or ?orgId=")
    if not re.match(ORG_ID_PATTERN, org_id):
        raise invalid(("query", "orgId"), "not an org id")
    return org_id
