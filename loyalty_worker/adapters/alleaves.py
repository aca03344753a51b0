"""Alleaves POS: the org's customers and order history, behind one JWT login shared by all threads.

Alleaves has no refresh endpoint: a token is used until shortly before its ``exp``, and a 401 in the
middle of a run (the token expired or was revoked) earns exactly one more login and one retry.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from loyalty_worker.adapters.http import Call, RetryPolicy, decode_json, send
from loyalty_worker.adapters.rate_limit import RateLimit
from loyalty_worker.adapters.wire import parse_customer, parse_order
from loyalty_worker.domain.models import Customer, Order
from loyalty_worker.errors import AuthError, MalformedRecord, PermanentError

logger = logging.getLogger(__name__)

SERVICE = "alleaves"
# Log in again this long before the token's exp, so no call in flight meets an expired token.
REFRESH_MARGIN_S = 300.0
# A refused login is answered from memory this long (an org's clients are rebuilt every minute,
# so corrected credentials are tried again by then).
REFUSED_LOGIN_HOLD_S = 30.0
# The longest company name kept (what the login calls the business; the dashboard shows it).
COMPANY_MAX = 120


@dataclass(frozen=True, slots=True, kw_only=True)
class AlleavesAccount:
    """One org's Alleaves account: where it answers and what the worker logs in with."""

    base_url: str
    username: str
    password: str = field(repr=False)
    pin: str = field(repr=False)
    partner_id: str | None = None  # sent as X-Partner-ID when Alleaves issued the integration one
    rate_limit: RateLimit | None = None  # how fast this account may call (None: no limit)


class AlleavesClient:
    """Reads customers and orders of one Alleaves account; safe to share between threads."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        account: AlleavesAccount,
        page_size: int = 100,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.time,
        max_pages: int = 5000,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._http = http
        self._base_url = account.base_url.rstrip("/")
        self._credentials = {
            "username": account.username,
            "password": account.password,
            "pin": account.pin,
        }
        self._partner_id = account.partner_id
        self._rate_limit = account.rate_limit
        self._page_size = page_size
        self._retry = retry
        self._clock = clock
        self._max_pages = max_pages
        self._login_lock = threading.Lock()
        # (token, renew_at) swapped as one tuple, so readers outside the lock never see a mix.
        self._session: tuple[str, float] | None = None
        # A refused login and until when it stands: callers waiting on the lock fail with it
        # instead of each sending the same wrong credentials again.
        self._refused: tuple[AuthError, float] | None = None
        self._company: str | None = None

    @property
    def page_size(self) -> int:
        return self._page_size

    def company(self) -> str | None:
        return self._company

    @property
    def rate_limit(self) -> RateLimit | None:
        """How fast this account may call Alleaves (None: no limit)."""
        return self._rate_limit

    def iter_customers(self) -> Iterator[Customer | MalformedRecord]:
        """Every customer, page by page from 1, until an empty or short page (there is no total);
        never past ``max_pages`` pages (PermanentError)."""
        page = 1
        while True:
            records = self.fetch_customer_page(page)
            yield from records
            if len(records) < self._page_size:
                return
            page = self._next_page(page, "customer listing")

    def fetch_customer_page(self, page: int) -> list[Customer | MalformedRecord]:
        """One page (from 1) of the customer listing; public so pages can be fetched in parallel."""
        payload = self._call(
            "POST", "/customer/search", json_body={"page": page, "pageSize": self._page_size}
        )
        rows = _page_rows(payload, page)
        return [parse_customer(raw, page=page, position=i) for i, raw in enumerate(rows)]

    def iter_orders(self, start: date, end: date) -> Iterator[Order | MalformedRecord]:
        """Every order created from ``start`` to ``end`` (inclusive), flat, until a short page;
        never past ``max_pages`` pages (PermanentError)."""
        page = 1
        while True:
            orders = self.fetch_order_page(start, end, page)
            yield from orders
            if len(orders) < self._page_size:
                return
            page = self._next_page(page, f"orders {start}..{end}")

    def _next_page(self, page: int, what: str) -> int:
        if page >= self._max_pages:
            raise PermanentError(SERVICE, f"{what} still full at {self._max_pages} pages")
        return page + 1

    def fetch_order_page(self, start: date, end: date, page: int) -> list[Order | MalformedRecord]:
        """One page of a date window; public so that a caller can fetch windows in parallel.

        Both dates are always sent: without them Alleaves silently answers a small default window.
        """
        params: dict[str, str | int] = {
            "page": page,
            "pageSize": self._page_size,
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
        }
        payload = self._call("GET", "/order", params=params)
        rows = _page_rows(payload, page)
        return [parse_order(raw, page=page, position=i) for i, raw in enumerate(rows)]

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
    ) -> Any:
        """An authenticated call; a 401 means the token died: log in again once and retry once."""
        label = f"{method} {path}"
        for _ in range(2):
            token = self._token()
            headers = {"Authorization": f"Bearer {token}"}
            if self._partner_id:
                headers["X-Partner-ID"] = self._partner_id
            call = Call(
                method,
                self._base_url + path,
                label=label,
                params=params,
                json_body=json_body,
                headers=headers,
                rate_limit=self._rate_limit,
            )
            response = send(self._http, call, service=SERVICE, policy=self._retry, answers=(401,))
            if response.status_code != 401:
                return decode_json(response, service=SERVICE, label=label)
            logger.info("%s: %s answered 401; logging in again", SERVICE, label)
            self._forget(token)
        raise AuthError(SERVICE, f"{label}: not authorised (401) even after logging in again")

    def _token(self) -> str:
        """The current token, logging in first when there is none or it is about to expire.

        Double-checked under a lock, so that threads arriving together share a single login.
        """
        session = self._session
        if session is not None and self._clock() < session[1]:
            return session[0]
        with self._login_lock:
            session = self._session
            if session is None or self._clock() >= session[1]:
                if self._refused is not None and self._clock() < self._refused[1]:
                    raise self._refused[0]
                try:
                    session = self._login()
                except AuthError as exc:
                    self._refused = (exc, self._clock() + REFUSED_LOGIN_HOLD_S)
                    raise
                self._session = session
            return session[0]

    def _forget(self, token: str) -> None:
        """Drop a refused token, unless another thread already replaced it with a fresh one."""
        with self._login_lock:
            if self._session is not None and self._session[0] == token:
                self._session = None

    def _login(self) -> tuple[str, float]:
        """``POST /auth``; the token is renewed shortly before its ``exp`` claim."""
        label = "POST /auth"
        call = Call(
            "POST",
            self._base_url + "/auth",
            label=label,
            json_body=self._credentials,
            rate_limit=self._rate_limit,
        )
        response = send(self._http, call, service=SERVICE, policy=self._retry)
        body = decode_json(response, service=SERVICE, label=label)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(SERVICE, f"{label}: login answered without a token")
        company = body.get("company")
        if isinstance(company, str) and company.strip():
            self._company = company.strip()[:COMPANY_MAX]
        now = self._clock()
        expires_at = _jwt_expiry(token)
        if expires_at is None:
            # No readable exp: keep the token until Alleaves refuses it (the 401 path logs in).
            logger.info("%s: token carries no readable exp; renewing on 401 only", SERVICE)
            return token, float("inf")
        # A short-lived token renews halfway through its life rather than on every call.
        margin = min(REFRESH_MARGIN_S, max(expires_at - now, 0.0) / 2)
        return token, expires_at - margin


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (base64url JSON payload); the signature is Alleaves' to check."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


def _page_rows(payload: Any, page: int) -> list[Any]:
    """Rows of any page shape Alleaves answers: ``{"0": row}``, ``[row]``, ``{"data": [row]}``."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        data = payload.get("data")
        if isinstance(data, list):
            return data
        # ASCII digits only: "²".isdigit() is true, but int("²") fails.
        keyed = [
            (int(key), row)
            for key, row in payload.items()
            if isinstance(key, str) and key.isascii() and key.isdigit()
        ]
        if keyed or not payload:
            return [row for _, row in sorted(keyed, key=lambda item: item[0])]
    raise PermanentError(SERVICE, f"page {page}: unexpected response shape")
