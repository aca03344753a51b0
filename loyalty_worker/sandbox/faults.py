"""Misbehaviour on demand, and the counters that show how clients coped with it.

Each imitated API sits behind a ``FaultGate``: it counts the request, then delays it, then may
answer it itself (429 over the rate limit, a random 5xx, a forced Discord status) before the API
sees it. The control routes have no gate, so they are never delayed, failed or limited.

The rate limit counts per credential, as the real services do: each API names whose request it
is (Alleaves: the login, from the bearer token or the login's body; Alpine IQ: the API key;
Discord: the webhook), and each credential may make ``rate_limit`` requests in a wall-clock
second. Two orgs calling at once each get the whole limit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty_worker.sandbox.data.records import JsonValue

ALLEAVES = "alleaves"
ALPINE = "alpine"
DISCORD = "discord"
APIS = (ALLEAVES, ALPINE, DISCORD)
# Random 5xx hit the data APIs only; Discord fails on demand, through ``discord_status``.
_ERROR_APIS = frozenset({ALLEAVES, ALPINE})
_ERROR_STATUSES = (500, 502, 503)
DEFAULT_TOKEN_TTL_S = 24 * 3600.0
_ERROR_STATUS_CODES = frozenset(status.value for status in HTTPStatus if status.value >= 400)
_NUMBERS = frozenset({"latency_ms", "error_rate", "token_ttl_s"})
_OPTIONAL_INTS = frozenset({"rate_limit", "discord_status"})


@dataclass(frozen=True, slots=True)
class Faults:
    """How the sandbox misbehaves; replaced as a whole, so a request sees one consistent set."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit: int | None = None  # requests per second per credential of each API; None: none
    token_ttl_s: float = DEFAULT_TOKEN_TTL_S
    discord_status: int | None = None  # every webhook call answers this status; None: normal

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError("rate_limit must be >= 1, or null for no limit")
        if self.token_ttl_s <= 0:
            raise ValueError("token_ttl_s must be > 0")
        if self.discord_status is not None and self.discord_status not in _ERROR_STATUS_CODES:
            raise ValueError("discord_status must be an HTTP error status (4xx, 5xx), or null")

    def updated(self, changes: Mapping[str, JsonValue]) -> Faults:
        """A copy with ``changes`` (a JSON object) applied; ValueError names a bad field."""
        unknown = set(changes) - _NUMBERS - _OPTIONAL_INTS
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        numbers: dict[str, float] = {}
        optional_ints: dict[str, int | None] = {}
        for name, value in changes.items():
            if isinstance(value, bool):
                raise ValueError(f"{name} must be a number")
            if name in _NUMBERS:
                if not isinstance(value, int | float):
                    raise ValueError(f"{name} must be a number")
                numbers[name] = value
            elif value is None or isinstance(value, int):
                optional_ints[name] = value
            else:
                raise ValueError(f"{name} must be an integer or null")
        return Faults(
            latency_ms=numbers.get("latency_ms", self.latency_ms),
            error_rate=numbers.get("error_rate", self.error_rate),
            # 0 reads naturally as "no limit" on the command line and in JSON alike.
            rate_limit=optional_ints.get("rate_limit", self.rate_limit) or None,
            token_ttl_s=numbers.get("token_ttl_s", self.token_ttl_s),
            discord_status=optional_ints.get("discord_status", self.discord_status),
        )

    def as_json(self) -> dict[str, float | None]:
        return asdict(self)


class ApiStats:
    """Counters of one imitated API since the last reset."""

    def __init__(self, *, counts_logins: bool = False) -> None:
        self.counts_logins = counts_logins
        self.requests = 0
        self.logins = 0
        self.rate_limited = 0
        self.server_errors = 0
        self._second = 0
        self._in_second = 0
        self._busiest = 0
        # This second's requests of each credential, and the most any one made in a second.
        self._credentials_in_second: dict[str, int] = {}
        self._busiest_credential = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def arrive(self, now: float, credential: str) -> tuple[int, int]:
        """Count a request of ``credential``; returns its wall-clock second and how many
        requests of that credential arrived in that second, this one included.

        The same counters serve the fixed-window rate limit and ``max_per_second_per_credential``,
        so the figure a test reads is exactly the one the limit is enforced on.
        """
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        second = int(now)
        if second != self._second:
            self._settle()
            self._second, self._in_second = second, 0
            self._credentials_in_second = {}
        self._in_second += 1
        count = self._credentials_in_second.get(credential, 0) + 1
        self._credentials_in_second[credential] = count
        return second, count

    def _settle(self) -> None:
        """Fold the current second into the busiest ones."""
        self._busiest = max(self._busiest, self._in_second)
        self._busiest_credential = max(
            self._busiest_credential, max(self._credentials_in_second.values(), default=0)
        )

    def left(self) -> None:
        """A request counted by ``arrive`` has been answered (or given up)."""
        self.in_flight -= 1

    def answered(self, status: int) -> None:
        if status == 429:
            self.rate_limited += 1
        elif status >= 500:
            self.server_errors += 1

    def as_json(self) -> dict[str, int]:
        """``max_per_second``: requests received (whatever the answer) in the busiest second,
        all credentials together; ``max_per_second_per_credential``: the most one credential
        made in a second (what the rate limit counts)."""
        self._settle()
        snapshot = {
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "server_errors": self.server_errors,
            "max_per_second": self._busiest,
            "max_per_second_per_credential": self._busiest_credential,
            # the most requests inside the API at once (latency included): concurrency, seen
            # from the server
            "max_in_flight": self.max_in_flight,
        }
        if self.counts_logins:
            snapshot["logins"] = self.logins
        return snapshot


SECOND_HEADER = b"x-sandbox-second"


class FaultState:
    """The faults in force and the counters, shared by every gate and the control routes."""

    def __init__(self, initial: Faults, *, clock: Callable[[], float] = time.time) -> None:
        self.initial = initial
        self.clock = clock  # the wall clock whose seconds are the rate limit's windows
        self.faults = initial
        self.random = random.Random()
        self.stats = self._new_stats()

    @staticmethod
    def _new_stats() -> dict[str, ApiStats]:
        return {api: ApiStats(counts_logins=api == ALLEAVES) for api in APIS}

    def reset_stats(self) -> None:
        self.stats = self._new_stats()

    def stats_json(self) -> dict[str, dict[str, int]]:
        return {api: stats.as_json() for api, stats in self.stats.items()}


# Whose request it is, as the API counts its rate limit: a login, an API key, a webhook. It may
# read the body (an Alleaves login names itself there); the API still reads it whole afterwards.
Credential = Callable[[Request], Awaitable[str]]


class FaultGate:
    """ASGI middleware in front of one imitated API: count, delay, then maybe answer for it."""

    def __init__(
        self, app: ASGIApp, *, api: str, state: FaultState, credential: Credential
    ) -> None:
        self.app = app
        self.api = api
        self.state = state
        self.credential = credential

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        channel = _Rewindable(receive)
        credential = await self.credential(Request(scope, channel.receive))
        channel.rewind()
        stats = self.state.stats[self.api]
        faults = self.state.faults
        second, in_second = stats.arrive(self.state.clock(), credential)
        # A sandbox-only header (no real API sends it): the rate-limit window the request was
        # counted in, so a test can check the limit per window whatever the machine's speed.
        window = (SECOND_HEADER, str(second).encode())

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                stats.answered(message["status"])
                message = {**message, "headers": [*message.get("headers", ()), window]}
            await send(message)

        try:
            if faults.latency_ms > 0:
                await asyncio.sleep(faults.latency_ms / 1000)
            injected = self._injected(faults, in_second)
            if injected is not None:
                await injected(scope, channel.receive, send_counted)
            else:
                await self.app(scope, channel.receive, send_counted)
        finally:
            stats.left()

    def _injected(self, faults: Faults, in_second: int) -> Response | None:
        """The answer a fault gives instead of the API's, or None to let the API answer.

        ``in_second``: the requests of this one's credential in its second, itself included.
        """
        if faults.rate_limit is not None and in_second > faults.rate_limit:
            return _too_many_requests(self.api)
        if self.api in _ERROR_APIS and self.state.random.random() < faults.error_rate:
            return _server_error(self.state.random.choice(_ERROR_STATUSES))
        if self.api == DISCORD and faults.discord_status is not None:
            if faults.discord_status == 429:
                return _too_many_requests(DISCORD)
            phrase = HTTPStatus(faults.discord_status).phrase
            return JSONResponse({"message": phrase, "code": 0}, status_code=faults.discord_status)
        return None


class _Rewindable:
    """A request's incoming messages, read once by the gate and then again, from the start,
    by the API: the body the credential check read is not lost to the API."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._read: list[Message] | None = []
        self._replay: list[Message] = []

    async def receive(self) -> Message:
        if self._replay:
            return self._replay.pop(0)
        message = await self._receive()
        if self._read is not None:
            self._read.append(message)
        return message

    def rewind(self) -> None:
        """Hand the messages read so far to the next reader, once."""
        self._replay, self._read = self._read or [], None


def _too_many_requests(api: str) -> Response:
    """429 as each service sends it: Discord says when to retry in the body too."""
    headers = {"Retry-After": "1"}
    if api == DISCORD:
        body = {"message": "You are being rate limited.", "retry_after": 1.0, "global": False}
        return JSONResponse(body, status_code=429, headers=headers)
    return JSONResponse({"error": "Too Many Requests"}, status_code=429, headers=headers)


def _server_error(status: int) -> Response:
    """A 500 from the application, or a 502/503 page from the proxy in front of it (not JSON)."""
    phrase = HTTPStatus(status).phrase
    if status == 500:
        return JSONResponse({"error": phrase}, status_code=status)
    return HTMLResponse(f"<html><body><h1>{status} {phrase}</h1></body></html>", status_code=status)
