"""Requests per org and API, for a benchmark of many orgs at once (``--count-calls-by-org``).

``/sandbox/stats`` counts each imitated API's requests, whoever made them. A fleet benchmark
weighs each org by the work it cost, so this middleware, in front of the whole sandbox, also
counts them by org, naming the org the way the imitated API tells it:

- Alleaves: by the ``org`` claim of the bearer token (the API checks its signature; a count
  does not need to), and a login by the username in its body;
- Alpine IQ: by the ``X-APIKEY`` header.

It counts every request under ``/alleaves`` and ``/alpine``, as ``/sandbox/stats`` does: the
ones a fault answers (429, 5xx) too. A request that names no known org counts under ``"?"``.

    GET  /sandbox/stats/orgs     {orgId: {"alleaves": n, "alpine": n}}
    POST /sandbox/stats/reset    zeroes these too
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter, defaultdict

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty_worker.sandbox.data.records import Dataset
from loyalty_worker.sandbox.faults import ALLEAVES, ALPINE

ORG_STATS_PATH = "/sandbox/stats/orgs"
RESET_PATH = "/sandbox/stats/reset"
UNKNOWN_ORG = "?"
_ALLEAVES_LOGIN = f"/{ALLEAVES}/auth"
# Tokens seen, each with its org: a worker process reuses one token per org for a day.
_MAX_TOKENS = 10_000


class Credentials:
    """Which org each Alleaves username and Alpine IQ API key belongs to: all the middleware keeps
    of the dataset."""

    def __init__(self, dataset: Dataset) -> None:
        self.by_username = {org["alleaves"]["username"]: org["orgId"] for org in dataset["orgs"]}
        self.by_api_key = {org["alpine"]["apiKey"]: org["orgId"] for org in dataset["orgs"]}


class OrgCalls:
    """ASGI middleware: counts Alleaves and Alpine IQ requests by org, answers their counts."""

    def __init__(self, app: ASGIApp, *, credentials: Credentials) -> None:
        self.app = app
        self._credentials = credentials
        self._orgs_of_tokens: dict[str, str] = {}
        self.counts: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def as_json(self) -> dict[str, dict[str, int]]:
        return {
            org: {api: counts[api] for api in (ALLEAVES, ALPINE)}
            for org, counts in sorted(self.counts.items())
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == ORG_STATS_PATH and method == "GET":
            await JSONResponse(self.as_json())(scope, receive, send)
            return
        if path == RESET_PATH and method == "POST":
            self.counts.clear()
        elif path == _ALLEAVES_LOGIN:
            body, receive = await _buffered(receive)
            self.counts[self._login_org(body)][ALLEAVES] += 1
        elif path.startswith(f"/{ALLEAVES}/"):
            self.counts[self._token_org(_header(scope, b"authorization"))][ALLEAVES] += 1
        elif path.startswith(f"/{ALPINE}/"):
            key = _header(scope, b"x-apikey")
            self.counts[self._credentials.by_api_key.get(key, UNKNOWN_ORG)][ALPINE] += 1
        await self.app(scope, receive, send)

    def _login_org(self, body: bytes) -> str:
        try:
            username = json.loads(body).get("username")
        except (ValueError, AttributeError):
            return UNKNOWN_ORG
        return self._credentials.by_username.get(username, UNKNOWN_ORG)

    def _token_org(self, authorization: str) -> str:
        """The ``org`` claim of a bearer token, read without checking it (the API does)."""
        token = authorization.partition(" ")[2].strip()
        org = self._orgs_of_tokens.get(token)
        if org is not None:
            return org
        org = _org_claim(token)
        if len(self._orgs_of_tokens) >= _MAX_TOKENS:
            self._orgs_of_tokens.clear()
        self._orgs_of_tokens[token] = org
        return org


def _org_claim(token: str) -> str:
    parts = token.split(".")
    if len(parts) != 3:
        return UNKNOWN_ORG
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return UNKNOWN_ORG
    org = claims.get("org") if isinstance(claims, dict) else None
    return org if isinstance(org, str) else UNKNOWN_ORG


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The request's whole body, and a ``receive`` that hands it to the app as if unread."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay
