"""The Alpine IQ client against an in-memory Alpine IQ served through httpx.MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from loyalty_worker.adapters.alpine import AlpineIQClient
from loyalty_worker.adapters.http import RetryPolicy
from loyalty_worker.domain.models import AlpineProfile
from loyalty_worker.errors import (
    AuthError,
    MalformedRecord,
    PermanentError,
    RateLimited,
    TransientError,
)
from loyalty_worker.ports.sources import AlpineContact, LoyaltyLookup

BASE = "https://alpine.test/api"
UID = "1234"
API_KEY = "alpine-secret-api-key"
PHONE = "5550104567"


class FakeAlpine:
    """Loyalty look-ups, wallets and the contacts listing of one account, keyed by phone."""

    def __init__(self) -> None:
        self.profiles: dict[str, dict[str, Any]] = {}
        self.wallets: dict[str, int] = {}
        self.contacts: list[dict[str, Any]] = []
        self.report_total = True
        self.queued: list[httpx.Response] = []
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.queued:
            return self.queued.pop(0)
        if request.headers.get("X-APIKEY") != API_KEY:
            return httpx.Response(401, json={"error": "invalid api key"})
        path = request.url.path.removeprefix("/api")
        if path.startswith("/v2/loyalty/lookup/"):
            profile = self.profiles.get(path.rsplit("/", 1)[1])
            if profile is None:
                return httpx.Response(404, json={"error": "not found"})
            return httpx.Response(200, json={"data": profile})
        if path == "/v2/wallet":
            points = self.wallets.get(json.loads(request.content)["phone"])
            if points is None:
                return httpx.Response(404)
            return httpx.Response(200, json={"data": {"loyaltyPoints": points}})
        if path == f"/v1.1/piis/{UID}":
            start, limit = int(request.url.params["start"]), int(request.url.params["limit"])
            rows = self.contacts[start : start + limit]
            data: dict[str, Any] = {"results": rows, "start": start, "limit": limit}
            data["size"] = len(rows)
            if self.report_total:
                data["total"] = len(self.contacts)
            return httpx.Response(200, json={"data": data})
        return httpx.Response(404)


def make_client(fake: FakeAlpine, *, api_key: str = API_KEY, **retry: Any) -> AlpineIQClient:
    return AlpineIQClient(
        httpx.Client(transport=httpx.MockTransport(fake.handler)),
        base_url=BASE,
        uid=UID,
        api_key=api_key,
        retry=RetryPolicy(**{"max_attempts": 3, "wait": False, **retry}),
    )


def no_secrets(error: Exception) -> bool:
    text = str(error) + repr(error.args)
    return API_KEY not in text and PHONE not in text


def test_satisfies_the_loyalty_lookup_port() -> None:
    lookup: LoyaltyLookup = make_client(FakeAlpine())
    assert lookup is not None


def test_lookup_returns_the_profile_and_sends_the_api_key() -> None:
    fake = FakeAlpine()
    fake.profiles[PHONE] = {
        "contactID": 777,
        "loyalty": True,
        "points": "1233",
        "tier": "gold",
        "lastVisit": "2024-03-05T10:00:00Z",
        "unknown": [1, 2],
    }
    profile = make_client(fake).lookup("(555) 010-4567")
    assert profile == AlpineProfile(
        points=1233, tier="gold", last_visit="2024-03-05T10:00:00Z", contact_id="777"
    )
    request = fake.requests[0]
    assert request.url.path == f"/api/v2/loyalty/lookup/{PHONE}"
    assert request.headers["X-APIKEY"] == API_KEY


def test_no_account_is_none_not_an_error() -> None:
    assert make_client(FakeAlpine()).lookup(PHONE) is None


def test_a_contact_not_enrolled_in_loyalty_has_no_profile() -> None:
    fake = FakeAlpine()
    fake.profiles[PHONE] = {"contactID": "1", "loyalty": False, "points": 0}
    assert make_client(fake).lookup(PHONE) is None


def test_429_is_rate_limited_never_no_account() -> None:
    fake = FakeAlpine()
    fake.queued = [httpx.Response(429, headers={"Retry-After": "1"})] * 3
    with pytest.raises(RateLimited) as caught:
        make_client(fake).lookup(PHONE)
    assert len(fake.requests) == 3
    assert no_secrets(caught.value)


def test_5xx_is_transient_never_no_account() -> None:
    fake = FakeAlpine()
    fake.queued = [httpx.Response(503)] * 3
    with pytest.raises(TransientError) as caught:
        make_client(fake).lookup(PHONE)
    assert "***-***-4567" in str(caught.value)
    assert no_secrets(caught.value)


def test_429_retry_after_is_honoured_then_the_lookup_succeeds() -> None:
    fake = FakeAlpine()
    fake.profiles[PHONE] = {"contactID": "1", "points": 5}
    fake.queued = [httpx.Response(429, headers={"Retry-After": "3"})]
    waits: list[float] = []
    client = make_client(fake, wait=True, sleep=waits.append)
    assert client.lookup(PHONE) == AlpineProfile(points=5, contact_id="1")
    assert waits == [3.0]


def test_5xx_is_retried_then_succeeds() -> None:
    fake = FakeAlpine()
    fake.profiles[PHONE] = {"contactID": "1", "points": 5}
    fake.queued = [httpx.Response(500), httpx.Response(502)]
    assert make_client(fake).lookup(PHONE) == AlpineProfile(points=5, contact_id="1")
    assert len(fake.requests) == 3


def test_wrong_api_key_is_an_auth_error_without_key_or_phone() -> None:
    fake = FakeAlpine()
    with pytest.raises(AuthError) as caught:
        make_client(fake, api_key="wrong-secret-key").lookup(PHONE)
    assert len(fake.requests) == 1
    assert "wrong-secret-key" not in str(caught.value) + repr(caught.value.args)
    assert no_secrets(caught.value)


@pytest.mark.parametrize("points", ["lots", -5, None])
def test_a_profile_without_usable_points_is_malformed_and_names_the_phone_masked(
    points: object,
) -> None:
    fake = FakeAlpine()
    fake.profiles[PHONE] = {"contactID": "1", "points": points}
    with pytest.raises(MalformedRecord) as caught:
        make_client(fake).lookup(PHONE)
    assert caught.value.record_id == "***-***-4567"
    assert "points" in caught.value.problem
    assert no_secrets(caught.value)


def test_an_answer_without_data_is_permanent() -> None:
    fake = FakeAlpine()
    fake.queued = [httpx.Response(200, json={"points": 5})]
    with pytest.raises(PermanentError, match="data"):
        make_client(fake).lookup(PHONE)


def test_a_phone_that_is_not_ten_digits_is_refused_masked() -> None:
    with pytest.raises(ValueError, match=r"\*\*\*-\*\*\*-4567") as caught:
        make_client(FakeAlpine()).lookup("+44 20 5550104567")
    assert "5550104567" not in str(caught.value)


def test_wallet_points() -> None:
    fake = FakeAlpine()
    fake.wallets[PHONE] = 1233
    client = make_client(fake)
    assert client.wallet_points("1-555-010-4567") == 1233
    assert json.loads(fake.requests[0].content) == {"phone": PHONE}
    assert client.wallet_points("5550100000") is None


def contact(n: int, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"contactID": f"c{n}", "mobilePhone": f"+1 (555) 010-{n:04d}"}
    row.update(fields)
    return row


def test_contacts_are_paged_until_start_plus_size_reaches_total() -> None:
    fake = FakeAlpine()
    fake.contacts = [contact(n, points=n, tier="bronze") for n in range(2350)]
    contacts = list(make_client(fake).iter_contacts(limit=1000))
    assert len(contacts) == 2350
    assert [r.url.params["start"] for r in fake.requests] == ["0", "1000", "2000"]
    assert all(r.url.params["limit"] == "1000" for r in fake.requests)
    assert contacts[7] == AlpineContact(
        contact_id="c7",
        phone="5550100007",
        profile=AlpineProfile(points=7, tier="bronze", contact_id="c7"),
    )


def test_contacts_stop_at_an_empty_page_when_no_total_is_sent() -> None:
    fake = FakeAlpine()
    fake.report_total = False
    fake.contacts = [contact(n) for n in range(200)]
    assert len(list(make_client(fake).iter_contacts(limit=100))) == 200
    assert [r.url.params["start"] for r in fake.requests] == ["0", "100", "200"]


def test_contact_phones_and_profiles() -> None:
    fake = FakeAlpine()
    fake.contacts = [
        {"contactID": 1, "phone": "555.010.0001"},
        {"contactID": "2", "mobilePhone": "", "phone": "(555) 010-0002", "points": "40"},
        {"contactID": "3", "mobilePhone": "12"},
        {"mobilePhone": "5550100004"},
        {"contactID": "5", "mobilePhone": "5550100005", "points": 0, "lastVisit": "2024-01-01"},
        {"contactID": "6", "mobilePhone": "5550100006", "points": -5},
    ]
    contacts = list(make_client(fake).iter_contacts())
    assert contacts == [
        AlpineContact(contact_id="1", phone="5550100001", profile=None),
        AlpineContact(
            contact_id="2", phone="5550100002", profile=AlpineProfile(points=40, contact_id="2")
        ),
        AlpineContact(contact_id="3", phone=None, profile=None),
        # malformed rows (no id, a negative balance) keep their phone, with no balance: the
        # customer's own look-up reports them, never "no account"
        AlpineContact(contact_id="", phone="5550100004", profile=None),
        AlpineContact(
            contact_id="5",
            phone="5550100005",
            profile=AlpineProfile(points=0, last_visit="2024-01-01", contact_id="5"),
        ),
        AlpineContact(contact_id="6", phone="5550100006", profile=None),
    ]


def test_contacts_under_a_wrong_key_are_an_auth_error() -> None:
    with pytest.raises(AuthError):
        list(make_client(FakeAlpine(), api_key="nope").iter_contacts())


def test_the_uid_stays_one_path_segment_whatever_it_holds() -> None:
    paths: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path)
        return httpx.Response(200, json={"data": {"results": [], "start": 0, "limit": 100}})

    client = AlpineIQClient(
        httpx.Client(transport=httpx.MockTransport(handler)),
        base_url=BASE,
        uid="../v2/wallet?x=1",
        api_key=API_KEY,
        retry=RetryPolicy(max_attempts=1, wait=False),
    )
    assert list(client.iter_contacts()) == []
    assert paths[0].split(b"?")[0].endswith(b"/v1.1/piis/..%2Fv2%2Fwallet%3Fx%3D1")
