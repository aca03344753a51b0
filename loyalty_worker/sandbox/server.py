"""The sandbox's HTTP app: Alleaves, Alpine IQ and Discord look-alikes and their control routes.

One port serves everything; a client's base URLs are ``{root}/alleaves``, ``{root}/alpine`` and
``{root}/discord/webhooks/{id}/{token}``, and tests drive the rest through ``{root}/sandbox``:

    GET    /sandbox/health                 200 once serving
    GET    /sandbox/stats                  per API: requests, logins, rate_limited,
                                           server_errors, max_per_second (all credentials),
                                           max_per_second_per_credential, max_in_flight
    POST   /sandbox/stats/reset            zero the counters
    GET    /sandbox/faults                 the faults in force
    POST   /sandbox/faults                 change some: latency_ms, error_rate, rate_limit,
                                           token_ttl_s, discord_status (null restores)
    DELETE /sandbox/faults                 back to the faults the sandbox started with
    PUT    /sandbox/orgs/{orgId}/orders    upsert flat orders by id_order
    DELETE /sandbox/orgs/{orgId}/customers/{id}  Alleaves lists that customer no more
    GET    /sandbox/dataset                the dataset as currently served
    GET    /discord/messages               webhook posts: [{webhookId, receivedAt, payload}]
    DELETE /discord/messages               forget them

Everything runs on one event loop: handlers never block, and the configured latency is an
``asyncio.sleep``, so hundreds of slow requests can be in flight at once.

The rate limit (``rate_limit``, requests per second) counts per credential, as the real services
do: per Alleaves login, per Alpine IQ API key, per Discord webhook. Each org gets all of it.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NotRequired, TypedDict

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from loyalty_worker.sandbox.data.records import AlpineContact, Dataset, JsonValue
from loyalty_worker.sandbox.discord import payload_error
from loyalty_worker.sandbox.faults import (
    ALLEAVES,
    ALPINE,
    DISCORD,
    Credential,
    FaultGate,
    Faults,
    FaultState,
)
from loyalty_worker.sandbox.serving import serve as serve  # re-exported: the CLI serves from here
from loyalty_worker.sandbox.store import OrgData, SandboxStore
from loyalty_worker.sandbox.tokens import bearer_token, issue_token, signed_claims, verify_token

# Without both dates, Alleaves silently answers only the last week of orders.
DEFAULT_ORDER_WINDOW_DAYS = 7
DEFAULT_PAGE_SIZE = 100
PIIS_MIN_LIMIT, PIIS_MAX_LIMIT = 100, 2000
_PHONE10 = re.compile(r"\d{10}")


def _json(content: bytes) -> Response:
    return Response(content, media_type="application/json")


def _integer(value: object, name: str, *, minimum: int) -> int:
    """A paging number from JSON or a query string (digits accepted either way), else 400."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise HTTPException(400, f"{name} must be an integer >= {minimum}")
    return value


def _iso_date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name} must be a date, YYYY-MM-DD") from None


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise HTTPException(400, "the body is not JSON") from None


async def _json_object(request: Request) -> dict[str, JsonValue]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return body


def _utc_now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AlleavesApi:
    """Alleaves POS: a login that hands out JWTs, customers by page, orders by date range."""

    def __init__(self, store: SandboxStore, state: FaultState) -> None:
        self.store = store
        self.state = state
        # A fresh secret per process: tokens from an earlier sandbox never validate.
        self.secret = secrets.token_bytes(32)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/auth", self.auth, methods=["POST"]),
            Route("/customer/search", self.customers, methods=["POST"]),
            Route("/order", self.orders, methods=["GET"]),
        ]

    async def auth(self, request: Request) -> Response:
        body = await _json_object(request)
        org = self.store.alleaves_login(body.get("username"), body.get("password"), body.get("pin"))
        if org is None:
            raise HTTPException(401, "invalid username, password or PIN")
        now = time.time()
        user_id, company_id = 5000 + org.position, 300 + org.position
        token = issue_token(
            self.secret,
            {
                "sub": str(user_id),
                "id_user": user_id,
                "id_company": company_id,
                "org": org.org_id,
                "iat": int(now),
                "exp": math.ceil(now + self.state.faults.token_ttl_s),
            },
        )
        self.state.stats[ALLEAVES].logins += 1
        return JSONResponse(
            {
                "id_user": user_id,
                "name_first": "Loyalty",
                "name_last": "Sync",
                "username": org.alleaves["username"],
                "id_company": company_id,
                "company": org.record.get("name", org.org_id),
                "token": token,
            }
        )

    def _authorised(self, request: Request) -> OrgData:
        """The org of the bearer token; 401 when it is missing, forged or expired."""
        token = bearer_token(request.headers.get("authorization", ""))
        claims = verify_token(self.secret, token, now=time.time()) if token else None
        org = self.store.org(claims["org"]) if claims else None
        if org is None:
            raise HTTPException(401, "missing, invalid or expired token")
        return org

    async def credential(self, request: Request) -> str:
        """The login a request counts against for the rate limit: the one its token was issued
        to (expired or not), else the username a login sends; "" for neither (one count)."""
        token = bearer_token(request.headers.get("authorization", ""))
        if token:
            claims = signed_claims(self.secret, token)
            org = self.store.org(claims["org"]) if claims else None
            return org.alleaves["username"] if org else ""
        try:
            body = json.loads(await request.body())
        except (ValueError, ClientDisconnect):
            return ""
        username = body.get("username") if isinstance(body, dict) else None
        return username if isinstance(username, str) else ""

    async def customers(self, request: Request) -> Response:
        org = self._authorised(request)
        body = await _json_object(request)
        page = _integer(body.get("page", 1), "page", minimum=1)
        size = _integer(body.get("pageSize", DEFAULT_PAGE_SIZE), "pageSize", minimum=1)
        rows = org.customers[(page - 1) * size : page * size]
        # The quirk: an object keyed by position in the page, not an array.
        return JSONResponse({str(position): row for position, row in enumerate(rows)})

    async def orders(self, request: Request) -> Response:
        org = self._authorised(request)
        query = request.query_params
        page = _integer(query.get("page", "1"), "page", minimum=1)
        size = _integer(query.get("pageSize", str(DEFAULT_PAGE_SIZE)), "pageSize", minimum=1)
        start_text, end_text = query.get("startDate"), query.get("endDate")
        if start_text and end_text:
            start, end = _iso_date(start_text, "startDate"), _iso_date(end_text, "endDate")
        else:
            end = datetime.now(UTC).date()
            start = end - timedelta(days=DEFAULT_ORDER_WINDOW_DAYS)
        return _json(b"[" + b",".join(org.orders.page(start, end, page, size)) + b"]")


class ListedContact(TypedDict):
    """A row of Alpine IQ's contacts listing; the balance fields only with the shortcut on."""

    contactID: str
    mobilePhone: str | None
    firstName: str | None
    lastName: str | None
    points: NotRequired[int]
    tier: NotRequired[str | None]
    lastVisit: NotRequired[str | None]


class AlpineApi:
    """Alpine IQ: loyalty look-up by phone, the wallet, and the contacts listing.

    The contacts listing is the documented one: ids, phones and names, no balances (each
    customer's balance costs a look-up). ``balances_in_listing`` adds ``points``, ``tier`` and
    ``lastVisit`` to its rows: a labelled shortcut that models a bulk export some accounts may
    have, which the documented API does not promise.
    """

    def __init__(self, store: SandboxStore, *, balances_in_listing: bool = False) -> None:
        self.store = store
        self.balances_in_listing = balances_in_listing

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v2/loyalty/lookup/{phone}", self.lookup, methods=["GET"]),
            Route("/v2/wallet", self.wallet, methods=["POST"]),
            Route("/v1.1/piis/{uid}", self.contacts, methods=["GET"]),
        ]

    @staticmethod
    async def credential(request: Request) -> str:
        """The API key a request counts against for the rate limit ("" for none)."""
        return request.headers.get("x-apikey", "")

    def _account(self, request: Request) -> OrgData:
        org = self.store.alpine_account(request.headers.get("x-apikey"))
        if org is None:
            raise HTTPException(401, "invalid API key")
        return org

    @staticmethod
    def _contact(org: OrgData, phone: object) -> AlpineContact:
        """The loyalty account of a ten-digit phone; 404 otherwise, as Alpine IQ answers."""
        contact = None
        if isinstance(phone, str) and _PHONE10.fullmatch(phone):
            contact = org.contacts_by_phone.get(phone)
        if contact is None:
            raise HTTPException(404, "no loyalty account for that phone")
        return contact

    async def lookup(self, request: Request) -> Response:
        contact = self._contact(self._account(request), request.path_params["phone"])
        return JSONResponse(
            {
                "data": {
                    "contactID": contact["contactID"],
                    "loyalty": True,
                    "points": contact["points"],
                    "tier": contact.get("tier"),
                    "lastVisit": contact.get("lastVisit"),
                }
            }
        )

    async def wallet(self, request: Request) -> Response:
        org = self._account(request)
        body = await _json_object(request)
        contact = self._contact(org, body.get("phone"))
        return JSONResponse(
            {"data": {"loyaltyPoints": contact["points"], "hidePointsInWallet": False}}
        )

    def _listed(self, contact: AlpineContact) -> ListedContact:
        """A contact as the listing shows it: documented fields, balances only as the shortcut."""
        row: ListedContact = {
            "contactID": contact["contactID"],
            "mobilePhone": contact.get("phone"),
            "firstName": contact.get("firstName"),
            "lastName": contact.get("lastName"),
        }
        if self.balances_in_listing:
            row["points"] = contact["points"]
            row["tier"] = contact.get("tier")
            row["lastVisit"] = contact.get("lastVisit")
        return row

    async def contacts(self, request: Request) -> Response:
        org = self._account(request)
        if request.path_params["uid"] != str(org.alpine["uid"]):
            raise HTTPException(401, "this API key does not open that account")
        start = _integer(request.query_params.get("start", "0"), "start", minimum=0)
        limit = _integer(request.query_params.get("limit", str(PIIS_MIN_LIMIT)), "limit", minimum=0)
        limit = min(max(limit, PIIS_MIN_LIMIT), PIIS_MAX_LIMIT)
        results = [self._listed(contact) for contact in org.contacts[start : start + limit]]
        return JSONResponse(
            {
                "data": {
                    "results": results,
                    "start": start,
                    "limit": limit,
                    "size": len(results),
                    "total": len(org.contacts),
                }
            }
        )


class ReceivedMessage(TypedDict):
    """A webhook post as the control route lists it."""

    webhookId: str
    receivedAt: str
    payload: JsonValue


class DiscordApi:
    """Discord incoming webhooks: posts are checked against Discord's limits and recorded."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMessage] = []

    @staticmethod
    async def credential(request: Request) -> str:
        """The webhook a post counts against for the rate limit: its URL's path."""
        return request.url.path

    def webhook_routes(self) -> list[BaseRoute]:
        return [Route("/{webhook_id}/{token}", self.post, methods=["POST"])]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/messages", self.list_messages, methods=["GET"]),
            Route("/messages", self.clear_messages, methods=["DELETE"]),
        ]

    async def post(self, request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            body = {"message": "The request body contains invalid JSON.", "code": 50109}
            return JSONResponse(body, status_code=400)
        error = payload_error(payload)
        if error is not None:
            return JSONResponse(error, status_code=400)
        self.messages.append(
            {
                "webhookId": request.path_params["webhook_id"],
                "receivedAt": _utc_now_text(),
                "payload": payload,
            }
        )
        return Response(status_code=204)

    async def list_messages(self, request: Request) -> Response:
        return JSONResponse(self.messages)

    async def clear_messages(self, request: Request) -> Response:
        self.messages.clear()
        return Response(status_code=204)


class ControlApi:
    """Routes for tests and benchmarks: never delayed, failed or rate limited."""

    def __init__(self, store: SandboxStore, state: FaultState) -> None:
        self.store = store
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/stats", self.stats, methods=["GET"]),
            Route("/stats/reset", self.reset_stats, methods=["POST"]),
            Route("/faults", self.faults, methods=["GET"]),
            Route("/faults", self.change_faults, methods=["POST"]),
            Route("/faults", self.restore_faults, methods=["DELETE"]),
            Route("/orgs/{org_id}/orders", self.upsert_orders, methods=["PUT"]),
            Route("/orgs/{org_id}/customers/{id:int}", self.remove_customer, methods=["DELETE"]),
            Route("/dataset", self.dataset, methods=["GET"]),
        ]

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.stats_json())

    async def reset_stats(self, request: Request) -> Response:
        self.state.reset_stats()
        return JSONResponse(self.state.stats_json())

    async def faults(self, request: Request) -> Response:
        return JSONResponse(self.state.faults.as_json())

    async def change_faults(self, request: Request) -> Response:
        changes = await _json_object(request)
        try:
            self.state.faults = self.state.faults.updated(changes)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse(self.state.faults.as_json())

    async def restore_faults(self, request: Request) -> Response:
        self.state.faults = self.state.initial
        return JSONResponse(self.state.faults.as_json())

    async def remove_customer(self, request: Request) -> Response:
        org = self.store.org(request.path_params["org_id"])
        if org is None:
            raise HTTPException(404, "no such org")
        return JSONResponse({"removed": org.remove_customer(request.path_params["id"])})

    async def upsert_orders(self, request: Request) -> Response:
        org = self.store.org(request.path_params["org_id"])
        if org is None:
            raise HTTPException(404, "no such org")
        orders = await _json_body(request)
        if not isinstance(orders, list) or not all(isinstance(order, dict) for order in orders):
            raise HTTPException(400, "the body must be a JSON list of orders")
        try:
            created, updated = org.orders.upsert(orders)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse({"created": created, "updated": updated})

    async def dataset(self, request: Request) -> Response:
        return JSONResponse(self.store.as_json())


async def _http_error(request: Request, exc: Exception) -> Response:
    """Errors as JSON, the way the imitated APIs send them, rather than Starlette's plain text."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(
    dataset: Dataset,
    faults: Faults | None = None,
    *,
    alpine_balances_in_listing: bool = False,
) -> Starlette:
    """The whole sandbox over ``dataset`` (see ``data``), starting with ``faults``.

    ``alpine_balances_in_listing``: Alpine IQ's contacts listing carries each contact's balance
    (a shortcut the documented API does not offer; off, every balance costs a look-up).
    """
    store = SandboxStore(dataset)
    state = FaultState(faults or Faults())
    discord = DiscordApi()

    alleaves = AlleavesApi(store, state)
    alpine = AlpineApi(store, balances_in_listing=alpine_balances_in_listing)

    def gated(api: str, routes: Sequence[BaseRoute], credential: Credential) -> FaultGate:
        return FaultGate(Router(list(routes)), api=api, state=state, credential=credential)

    return Starlette(
        routes=[
            Mount("/alleaves", app=gated(ALLEAVES, alleaves.routes(), alleaves.credential)),
            Mount("/alpine", app=gated(ALPINE, alpine.routes(), alpine.credential)),
            Mount(
                "/discord",
                routes=[
                    Mount(
                        "/webhooks",
                        app=gated(DISCORD, discord.webhook_routes(), discord.credential),
                    ),
                    *discord.control_routes(),
                ],
            ),
            Mount("/sandbox", routes=ControlApi(store, state).routes()),
        ],
        exception_handlers={HTTPException: _http_error},
    )
