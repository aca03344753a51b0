"""Alpine IQ: the external loyalty balance, looked up by phone or read in bulk from the contacts.

A 404 on the look-up is an answer ("no account"), not a failure; a 429 or 5xx never reads as
"no account", since that would turn an outage into a wave of false discrepancies. Phone numbers
sit in paths here, so every call is named by a label with the phone masked.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from loyalty_worker.adapters.http import Call, RetryPolicy, decode_json, send
from loyalty_worker.adapters.rate_limit import RateLimit
from loyalty_worker.adapters.wire import (
    AlpineContactRow,
    AlpineContactsPage,
    AlpineLoyalty,
    AlpineWallet,
    describe_problem,
)
from loyalty_worker.domain.models import AlpineProfile
from loyalty_worker.domain.phone import mask_phone, normalize_phone
from loyalty_worker.errors import MalformedRecord, PermanentError
from loyalty_worker.ports.sources import AlpineContact

logger = logging.getLogger(__name__)

SERVICE = "alpine_iq"

_M = TypeVar("_M", bound=BaseModel)


class AlpineIQClient:
    """Reads one Alpine IQ account (``uid``) with its API key; stateless, safe to share."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        uid: str,
        api_key: str,
        retry: RetryPolicy,
        max_pages: int = 5000,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        # settings validate the uid; quoting keeps it one path segment whatever it holds
        self._uid = urllib.parse.quote(uid, safe="")
        self._headers = {"X-APIKEY": api_key}
        self._retry = retry
        self._max_pages = max_pages
        self._rate_limit = rate_limit

    @property
    def rate_limit(self) -> RateLimit | None:
        """How fast this account may call Alpine IQ (None: no limit)."""
        return self._rate_limit

    def lookup(self, phone10: str) -> AlpineProfile | None:
        """The loyalty account of a phone, or None when Alpine IQ has none (404)."""
        phone = _ten_digits(phone10)
        label = f"GET /v2/loyalty/lookup/{mask_phone(phone)}"
        response = self._send("GET", f"/v2/loyalty/lookup/{phone}", label=label, answers=(404,))
        if response.status_code == 404:
            return None
        data = _data(decode_json(response, service=SERVICE, label=label), label)
        return _validated(AlpineLoyalty, data, "loyalty profile", mask_phone(phone)).to_profile()

    def wallet_points(self, phone10: str) -> int | None:
        """The wallet's points of a phone; None when Alpine IQ knows no wallet for it."""
        phone = _ten_digits(phone10)
        label = f"POST /v2/wallet ({mask_phone(phone)})"
        response = self._send(
            "POST", "/v2/wallet", label=label, json_body={"phone": phone}, answers=(404,)
        )
        if response.status_code == 404:
            return None
        data = _data(decode_json(response, service=SERVICE, label=label), label)
        return _validated(AlpineWallet, data, "wallet", mask_phone(phone)).loyalty_points

    def iter_contacts(self, limit: int = 1000) -> Iterator[AlpineContact]:
        """Every contact, page by page, until ``start + size`` reaches ``total`` or a page is empty.

        Alpine IQ documents ``limit`` between 100 and 2000. A row that cannot be read (no
        ``contactID``) is logged and skipped: one bad row must not hide every other balance.
        The listing is bounded: past ``max_pages`` pages, or at a page that repeats the one
        before (an account ignoring ``start``), it stops with PermanentError.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        label = "GET /v1.1/piis/{uid}"
        start = 0
        previous: list[Any] | None = None
        for number in range(1, self._max_pages + 2):
            if number > self._max_pages:
                raise PermanentError(
                    SERVICE, f"{label}: contacts still coming after {self._max_pages} pages"
                )
            response = self._send(
                "GET",
                f"/v1.1/piis/{self._uid}",
                label=label,
                params={"start": start, "limit": limit},
            )
            data = _data(decode_json(response, service=SERVICE, label=label), label)
            page = _validated(AlpineContactsPage, data, "contacts page", f"start {start}")
            # The same rows again: an account (or a proxy) ignoring ``start``.
            if page.results and page.results == previous:
                raise PermanentError(SERVICE, f"{label}: page at start {start} repeats the last")
            previous = page.results
            for position, raw in enumerate(page.results):
                try:
                    yield AlpineContactRow.model_validate(raw).to_contact()
                except ValidationError as exc:
                    logger.warning(
                        "%s: malformed contact at start %d #%d: %s",
                        SERVICE,
                        start,
                        position,
                        describe_problem(exc),
                    )
                    # Its phone, when readable, is left to a look-up of its own (which reports
                    # the customer as malformed) rather than read as "no account".
                    unread = _unread_contact(raw)
                    if unread is not None:
                        yield unread
            size = page.size if page.size is not None else len(page.results)
            if not page.results or size < 1:
                return
            if page.total is not None:
                if start + size >= page.total:
                    return
            elif size < limit:
                return
            start += size

    def _send(
        self,
        method: str,
        path: str,
        *,
        label: str,
        answers: tuple[int, ...] = (),
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        """Every call carries the API key header, the shared retry policy and the account's
        rate limit."""
        return send(
            self._http,
            Call(
                method,
                self._base_url + path,
                label=label,
                params=params,
                json_body=json_body,
                headers=self._headers,
                rate_limit=self._rate_limit,
            ),
            service=SERVICE,
            policy=self._retry,
            answers=answers,
        )


def _ten_digits(phone10: str) -> str:
    """Accounts are keyed by 10 US digits; anything else is a caller's bug, not "no account"."""
    phone = normalize_phone(phone10)
    if phone is None:
        raise ValueError(f"not a 10-digit US phone: {mask_phone(phone10)}")
    return phone


def _unread_contact(raw: Any) -> AlpineContact | None:
    """A contact row that failed validation, with its phone and no balance (None: no phone)."""
    if not isinstance(raw, dict):
        return None
    phones = (raw.get("mobilePhone"), raw.get("phone"))
    phone = next((p for p in map(_phone_or_none, phones) if p is not None), None)
    contact_id = raw.get("contactID")
    if phone is None:
        return None
    return AlpineContact("" if contact_id is None else str(contact_id), phone, None)


def _phone_or_none(value: Any) -> str | None:
    return normalize_phone(value) if isinstance(value, str) else None


def _data(body: Any, label: str) -> Any:
    """Alpine IQ wraps every answer in ``{"data": ...}``."""
    if not isinstance(body, dict) or "data" not in body:
        raise PermanentError(SERVICE, f"{label}: answer has no 'data'")
    return body["data"]


def _validated(model: type[_M], data: Any, kind: str, record_id: str) -> _M:
    """``data`` as ``model``, or a MalformedRecord naming what failed (values left out)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedRecord(SERVICE, kind, record_id, describe_problem(exc)) from exc
