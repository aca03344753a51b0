"""The HTTP boundary every client shares: retries, timeouts and the mapping of outcomes to errors.

Whether a failure is worth retrying is decided here, once, so that the clients above only ever see
a response they asked for or one error of ``loyalty_worker.errors``:

- 2xx, and any status the caller declares as an answer (Alpine IQ's 404 "no account") → response;
- 429 → ``RateLimited`` (with its ``Retry-After``), 5xx / timeouts / connection errors →
  ``TransientError``: retried within the policy's attempts and total time, then raised;
- 401/403 → ``AuthError``, any other 4xx → ``PermanentError``: raised at once.

Messages name the call by a label (method and path, phone numbers masked), never by its URL, query,
headers or body: those carry tokens, API keys and phone numbers.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import KW_ONLY, dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import msgspec

from loyalty_worker.adapters import metrics
from loyalty_worker.adapters.connections import ConnectionStack
from loyalty_worker.adapters.rate_limit import EXTENSION as RATE_LIMIT_EXTENSION
from loyalty_worker.adapters.rate_limit import RateLimit, RateLimitedTransport, RedisRateLimiter
from loyalty_worker.config import Settings
from loyalty_worker.domain.phone import mask_phones_in
from loyalty_worker.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    TransientError,
)

logger = logging.getLogger(__name__)

RetryAfter = Callable[[httpx.Response], float | None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try a call: bounded in attempts *and* total time, with full-jitter backoff.

    ``wait=False`` is the testing switch: no sleeping at all, attempts still bounded. ``sleep`` and
    ``clock`` (monotonic) are injectable so tests can record waits and move time without sleeping.
    """

    max_attempts: int = 4
    max_total_s: float = 30.0
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    # A body larger than this is refused (PermanentError): a provider gone wrong cannot fill
    # memory. An attempt whose response is not read within ``attempt_deadline_s`` times out
    # (httpx's read timeout bounds each read, not a body trickling in for ever).
    max_response_bytes: int = 16 * 2**20
    attempt_deadline_s: float | None = None
    wait: bool = True
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_total_s < 0 or self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry delays and budget must not be negative")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The process-wide policy, from ``LOYALTY_HTTP_MAX_ATTEMPTS`` / ``_MAX_RETRY_S``."""
        return cls(
            max_attempts=settings.http_max_attempts,
            max_total_s=settings.http_max_retry_s,
            max_response_bytes=settings.http_max_response_bytes,
            attempt_deadline_s=settings.http_connect_timeout_s + settings.http_timeout_s,
        )

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: uniform below the capped exponential, so retrying workers spread out."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)


def build_http_client(
    settings: Settings, *, limiter: RedisRateLimiter | None = None
) -> httpx.Client:
    """One pooled, keep-alive client per worker process; every call bounded by explicit timeouts.

    Its connections are shared by the process's threads (``ConnectionStack``): at most
    ``LOYALTY_HTTP_POOL_SIZE`` calls in flight and as many idle connections kept. With a
    ``limiter``, every request (every retry too) sent for an account with a rate limit
    (``Call.rate_limit``) is sent inside a slot of it.
    """
    transport: httpx.BaseTransport = ConnectionStack(max_connections=settings.http_pool_size)
    if limiter is not None:
        transport = RateLimitedTransport(transport, limiter)
    return httpx.Client(
        timeout=httpx.Timeout(settings.http_timeout_s, connect=settings.http_connect_timeout_s),
        transport=transport,
        headers={"User-Agent": "loyalty-worker"},
        follow_redirects=False,
    )


def retry_after_header(response: httpx.Response) -> float | None:
    """Seconds asked by ``Retry-After``: delta-seconds or an HTTP-date (relative to ``Date``)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # The server's own Date header is the fairest "now": it cancels any skew between our clocks.
    now = time.time()
    server_date = response.headers.get("Date")
    if server_date is not None:
        with contextlib.suppress(TypeError, ValueError):
            now = email.utils.parsedate_to_datetime(server_date).timestamp()
    return max(when.timestamp() - now, 0.0)


def call_label(method: str, url: httpx.URL | str) -> str:
    """How a call is named in errors and logs: method and path only, phone numbers masked."""
    try:
        path = httpx.URL(url).path
    except httpx.InvalidURL:
        path = "<invalid URL>"  # never the text itself: it may hold a token
    return f"{method.upper()} {mask_phones_in(path)}"


@dataclass(frozen=True, slots=True)
class Call:
    """One call as a client means it: what to send, and the label errors and logs name it by."""

    method: str
    url: str
    _: KW_ONLY
    label: str | None = None  # None: method and path, phone numbers masked (``call_label``)
    params: Mapping[str, str | int] | None = None
    json_body: Any = None
    headers: Mapping[str, str] | None = None
    # The limit of the account whose credentials the call sends (None: no limit); every
    # attempt takes a slot of it.
    rate_limit: RateLimit | None = None

    @property
    def name(self) -> str:
        return self.label or call_label(self.method, self.url)


def send(
    http: httpx.Client,
    call: Call,
    *,
    service: str,
    policy: RetryPolicy,
    answers: Collection[int] = (),
    retry_after: RetryAfter = retry_after_header,
) -> httpx.Response:
    """Perform one call under ``policy``; returns a 2xx (or declared) response, else raises.

    Only transient failures are retried. A 429 whose ``Retry-After`` does not fit in what is left of
    the total budget is raised at once, so that the caller (a Celery task) can wait it out instead
    of holding a worker.
    """
    name = call.name
    api = metrics.api_name(service)
    route = metrics.route_group(api, call.url)
    started = policy.clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            response = _measured_fetch(http, call, policy, api=api, route=route)
        except _TooLarge as exc:
            raise PermanentError(
                service, f"{name}: response larger than {exc.limit} bytes: refused"
            ) from None
        except httpx.TimeoutException as exc:
            error: TransientError = TransientError(service, f"{name}: timed out ({_kind(exc)})")
            asked: float | None = None
        except httpx.TransportError as exc:
            error = TransientError(service, f"{name}: connection failed ({_kind(exc)})")
            asked = None
        except (httpx.RequestError, httpx.InvalidURL, httpx.StreamError) as exc:
            # A malformed URL (a bad base URL or id), a body that cannot be decoded, a redirect
            # loop: trying again gives the same answer.
            raise PermanentError(service, f"{name}: request failed ({_kind(exc)})") from None
        else:
            status = response.status_code
            if response.is_success or status in answers:
                return response
            if status == 429:
                asked = retry_after(response)
                error = RateLimited(service, f"{name}: rate limited (429)", asked)
            elif status >= 500:
                error = TransientError(service, f"{name}: server error ({status})")
                asked = None
            elif status in (401, 403):
                raise AuthError(service, f"{name}: not authorised ({status})")
            else:
                raise PermanentError(service, f"{name}: rejected ({status})")

        if attempt >= policy.max_attempts:
            raise error
        delay = asked if asked is not None else policy.backoff_s(attempt)
        if policy.clock() - started + delay > policy.max_total_s:
            raise error
        logger.warning(
            "%s: %s; retry %d/%d in %.2fs",
            service,
            error.message,
            attempt,
            policy.max_attempts - 1,
            delay,
        )
        metrics.RETRIES.labels("http").inc()
        if policy.wait and delay > 0:
            policy.sleep(delay)


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def _measured_fetch(
    http: httpx.Client, call: Call, policy: RetryPolicy, *, api: str, route: str
) -> httpx.Response:
    """One attempt, counted by outcome and timed (``loyalty_upstream_*``)."""
    started = time.perf_counter()
    try:
        response = _fetch(http, call, policy)
    except Exception as exc:
        metrics.record_upstream(api, route, time.perf_counter() - started, None, exc)
        raise
    metrics.record_upstream(api, route, time.perf_counter() - started, response.status_code, None)
    return response


# Headers that describe the body as sent; the response handed on holds it decoded.
_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _fetch(http: httpx.Client, call: Call, policy: RetryPolicy) -> httpx.Response:
    """One attempt, its body read in chunks: refused past ``policy.max_response_bytes``, timed
    out past ``policy.attempt_deadline_s``."""
    started = policy.clock()
    request = http.build_request(
        call.method,
        call.url,
        params=call.params,
        json=call.json_body,
        headers=call.headers,
        extensions={RATE_LIMIT_EXTENSION: call.rate_limit} if call.rate_limit else None,
    )
    response = http.send(request, stream=True)
    limit = policy.max_response_bytes
    try:
        declared = response.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise _TooLarge(limit)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise _TooLarge(limit)
            deadline = policy.attempt_deadline_s
            if deadline is not None and policy.clock() - started > deadline:
                raise httpx.ReadTimeout("response not read within the deadline", request=request)
    finally:
        response.close()
    kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS]
    return httpx.Response(
        response.status_code,
        headers=kept,
        content=bytes(body),
        request=request,
        extensions=response.extensions,
    )


# Fractional numbers are handed over as their text and become ``Decimal``: exact, as with
# ``json.loads(parse_float=Decimal)``, at a fraction of its CPU (order pages are most of a run's).
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def decode_json(response: httpx.Response, *, service: str, label: str) -> Any:
    """The JSON body, fractional numbers as ``Decimal``: no amount ever passes through float.

    What the fast decoder refuses (``NaN``, a lone surrogate) is read by ``json`` as before, so
    such a body is judged record by record, not refused whole.
    """
    content = response.content
    try:
        return _DECODER.decode(content)
    except msgspec.DecodeError:
        pass
    try:
        return json.loads(content, parse_float=Decimal)
    except ValueError as exc:
        raise PermanentError(service, f"{label}: response is not JSON ({_kind(exc)})") from exc


def _kind(exc: Exception) -> str:
    """The exception's class only: its text may repeat the URL, which can hold a token."""
    return exc.__class__.__name__
