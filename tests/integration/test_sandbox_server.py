"""The sandbox over real HTTP: the imitated APIs' shapes and quirks, faults, and control routes."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from loyalty_worker.devstack import Sandbox, start_sandbox
from loyalty_worker.sandbox.data import generate_dataset
from loyalty_worker.sandbox.faults import Faults

pytestmark = pytest.mark.integration


def _org(sandbox: Sandbox, org_id: str = "org-1") -> dict[str, Any]:
    org: dict[str, Any] = next(o for o in sandbox.dataset()["orgs"] if o["orgId"] == org_id)
    return org


def _login(base_url: str, org: dict[str, Any]) -> str:
    credentials = {key: org["alleaves"][key] for key in ("username", "password", "pin")}
    response = httpx.post(f"{base_url}/auth", json=credentials)
    assert response.status_code == 200
    token: str = response.json()["token"]
    return token


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _start_of_next_second() -> None:
    """Wait for a fresh wall-clock second, so that a quick burst falls in one rate window."""
    time.sleep(1.02 - time.time() % 1)


@pytest.fixture
def alleaves(clean_sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An Alleaves client logged in to org-1."""
    token = _login(clean_sandbox.alleaves_url, _org(clean_sandbox))
    with httpx.Client(
        base_url=clean_sandbox.alleaves_url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


@pytest.fixture
def alpine(clean_sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An Alpine IQ client with org-1's key."""
    key = _org(clean_sandbox)["alpine"]["apiKey"]
    with httpx.Client(base_url=clean_sandbox.alpine_url, headers={"X-APIKEY": key}) as client:
        yield client


def _all_orders(client: httpx.Client, params: dict[str, Any], page_size: int) -> list[Any]:
    orders: list[Any] = []
    page = 1
    while True:
        response = client.get("/order", params={**params, "page": page, "pageSize": page_size})
        assert response.status_code == 200
        rows = response.json()
        assert isinstance(rows, list)
        orders += rows
        if len(rows) < page_size:
            return orders
        page += 1


# Alleaves ---------------------------------------------------------------------------------------


def test_login_hands_out_a_jwt_for_the_org(clean_sandbox: Sandbox) -> None:
    org = _org(clean_sandbox, "org-2")
    credentials = {key: org["alleaves"][key] for key in ("username", "password", "pin")}
    response = httpx.post(f"{clean_sandbox.alleaves_url}/auth", json=credentials)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id_user",
        "name_first",
        "name_last",
        "username",
        "id_company",
        "company",
        "token",
    }
    assert body["username"] == org["alleaves"]["username"]
    header = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[0] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims = _claims(body["token"])
    assert claims["org"] == "org-2"
    assert abs(claims["exp"] - (time.time() + 24 * 3600)) < 5
    assert clean_sandbox.stats()["alleaves"]["logins"] == 1


@pytest.mark.parametrize("wrong", ["username", "password", "pin"])
def test_login_with_a_wrong_credential_is_401(clean_sandbox: Sandbox, wrong: str) -> None:
    credentials = {
        key: _org(clean_sandbox)["alleaves"][key] for key in ("username", "password", "pin")
    }
    credentials[wrong] = "not-" + credentials[wrong]
    response = httpx.post(f"{clean_sandbox.alleaves_url}/auth", json=credentials)
    assert response.status_code == 401
    assert clean_sandbox.stats()["alleaves"]["logins"] == 0


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer eyJhbGciOiJub25lIn0.e30."],
)
def test_alleaves_calls_without_a_valid_token_are_401(
    clean_sandbox: Sandbox, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    base = clean_sandbox.alleaves_url
    assert httpx.get(f"{base}/order", headers=headers).status_code == 401
    response = httpx.post(f"{base}/customer/search", json={"page": 1}, headers=headers)
    assert response.status_code == 401


def test_a_forged_token_is_401(alleaves: httpx.Client) -> None:
    header, payload, signature = (
        alleaves.headers["Authorization"].removeprefix("Bearer ").split(".")
    )
    claims = _claims(f"{header}.{payload}.{signature}")
    claims["org"] = "org-2"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = alleaves.get(
        "/order", headers={"Authorization": f"Bearer {header}.{forged}.{signature}"}
    )
    assert response.status_code == 401


def test_tokens_expire_at_their_exp(clean_sandbox: Sandbox) -> None:
    assert clean_sandbox.set_faults(token_ttl_s=1).token_ttl_s == 1
    token = _login(clean_sandbox.alleaves_url, _org(clean_sandbox))
    exp = _claims(token)["exp"]
    assert exp - time.time() <= 2
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{clean_sandbox.alleaves_url}/order", headers=headers).status_code == 200
    time.sleep(max(0.0, exp - time.time()) + 0.1)
    assert httpx.get(f"{clean_sandbox.alleaves_url}/order", headers=headers).status_code == 401


def test_customers_come_as_objects_keyed_by_position(
    clean_sandbox: Sandbox, alleaves: httpx.Client
) -> None:
    expected = _org(clean_sandbox)["customers"]
    assert len(expected) == 60
    pages = [
        alleaves.post("/customer/search", json={"page": page, "pageSize": 25}).json()
        for page in (1, 2, 3, 4)
    ]
    assert [list(page) for page in pages[:2]] == [[str(n) for n in range(25)]] * 2
    assert list(pages[2]) == [str(n) for n in range(10)]  # the short last page
    assert pages[3] == {}
    assert [row for page in pages for row in page.values()] == expected


def test_customer_search_rejects_a_bad_page(alleaves: httpx.Client) -> None:
    assert alleaves.post("/customer/search", json={"page": 0}).status_code == 400
    assert alleaves.post("/customer/search", content=b"not json").status_code == 400


def test_orders_of_a_date_range_newest_first(
    clean_sandbox: Sandbox, alleaves: httpx.Client
) -> None:
    orders = _org(clean_sandbox)["orders"]
    # Bounds on days that have orders, to show both ends are inclusive.
    end = orders[len(orders) // 4]["date_created"][:10]
    start = orders[len(orders) // 2]["date_created"][:10]
    expected = [o["id_order"] for o in orders if start <= o["date_created"][:10] <= end]
    served = _all_orders(alleaves, {"startDate": start, "endDate": end}, page_size=7)
    assert [o["id_order"] for o in served] == expected
    assert served[0]["date_created"][:10] == end
    assert served[-1]["date_created"][:10] == start
    assert served == [o for o in orders if o["id_order"] in set(expected)]


def test_orders_without_both_dates_are_only_the_last_week(
    clean_sandbox: Sandbox, alleaves: httpx.Client
) -> None:
    today = datetime.now(UTC).date()
    week_ago = (today - timedelta(days=7)).isoformat()
    orders = _org(clean_sandbox)["orders"]
    expected = [o["id_order"] for o in orders if o["date_created"][:10] >= week_ago]
    assert 0 < len(expected) < len(orders)
    for params in ({}, {"startDate": "2000-01-01"}, {"endDate": today.isoformat()}):
        served = _all_orders(alleaves, params, page_size=1000)
        assert [o["id_order"] for o in served] == expected


def test_orders_reject_bad_dates_and_have_no_search(alleaves: httpx.Client) -> None:
    bad = alleaves.get("/order", params={"startDate": "yesterday", "endDate": "2025-01-01"})
    assert bad.status_code == 400
    assert alleaves.post("/order/search", json={"id_customer": 1}).status_code == 404


# Alpine IQ --------------------------------------------------------------------------------------


def test_loyalty_lookup_by_phone(clean_sandbox: Sandbox, alpine: httpx.Client) -> None:
    contact = _org(clean_sandbox)["alpineContacts"][0]
    response = alpine.get(f"/v2/loyalty/lookup/{contact['phone']}")
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "contactID": contact["contactID"],
            "loyalty": True,
            "points": contact["points"],
            "tier": contact["tier"],
            "lastVisit": contact["lastVisit"],
        }
    }


def test_lookup_of_a_phone_without_an_account_is_404(
    clean_sandbox: Sandbox, alpine: httpx.Client
) -> None:
    org = _org(clean_sandbox)
    phones = {c["phone"] for c in org["alpineContacts"]}
    unknown = next(str(n) for n in range(2025550100, 2025559999) if str(n) not in phones)
    assert alpine.get(f"/v2/loyalty/lookup/{unknown}").status_code == 404
    known = org["alpineContacts"][0]["phone"]
    formatted = f"({known[:3]}) {known[3:6]}-{known[6:]}"
    assert alpine.get(f"/v2/loyalty/lookup/{formatted}").status_code == 404


@pytest.mark.parametrize("key", [None, "", "sbx-aiq-wrong"])
def test_alpine_without_a_valid_key_is_401(clean_sandbox: Sandbox, key: str | None) -> None:
    org = _org(clean_sandbox)
    headers = {"X-APIKEY": key} if key is not None else {}
    base = clean_sandbox.alpine_url
    phone = org["alpineContacts"][0]["phone"]
    assert httpx.get(f"{base}/v2/loyalty/lookup/{phone}", headers=headers).status_code == 401
    assert (
        httpx.post(f"{base}/v2/wallet", json={"phone": phone}, headers=headers).status_code == 401
    )
    uid = org["alpine"]["uid"]
    assert httpx.get(f"{base}/v1.1/piis/{uid}", headers=headers).status_code == 401


def test_wallet(clean_sandbox: Sandbox, alpine: httpx.Client) -> None:
    contact = _org(clean_sandbox)["alpineContacts"][1]
    response = alpine.post("/v2/wallet", json={"phone": contact["phone"]})
    assert response.status_code == 200
    assert response.json() == {
        "data": {"loyaltyPoints": contact["points"], "hidePointsInWallet": False}
    }
    assert alpine.post("/v2/wallet", json={"phone": "0000000000"}).status_code == 404


def test_contacts_pages_and_limit_clamping(clean_sandbox: Sandbox, alpine: httpx.Client) -> None:
    org = _org(clean_sandbox)
    contacts = org["alpineContacts"]
    uid = org["alpine"]["uid"]
    data = alpine.get(f"/v1.1/piis/{uid}", params={"start": 10, "limit": 5}).json()["data"]
    assert data["limit"] == 100  # clamped up
    assert data["start"] == 10
    assert data["total"] == len(contacts)
    assert data["size"] == len(data["results"]) == len(contacts) - 10
    first = data["results"][0]
    # The documented listing: ids, phones and names, no balances.
    assert first == {
        "contactID": contacts[10]["contactID"],
        "mobilePhone": contacts[10]["phone"],
        "firstName": contacts[10]["firstName"],
        "lastName": contacts[10]["lastName"],
    }
    big = alpine.get(f"/v1.1/piis/{uid}", params={"limit": 5000}).json()["data"]
    assert big["limit"] == 2000
    assert [r["contactID"] for r in big["results"]] == [c["contactID"] for c in contacts]
    assert (
        alpine.get(f"/v1.1/piis/{uid}", params={"start": len(contacts)}).json()["data"]["results"]
        == []
    )


def test_contacts_of_another_account_are_401(clean_sandbox: Sandbox, alpine: httpx.Client) -> None:
    other_uid = _org(clean_sandbox, "org-2")["alpine"]["uid"]
    assert alpine.get(f"/v1.1/piis/{other_uid}").status_code == 401


# Discord ----------------------------------------------------------------------------------------


def test_webhook_posts_are_recorded(clean_sandbox: Sandbox) -> None:
    payload = {
        "content": "3 discrepancies",
        "embeds": [{"title": "org-1", "fields": [{"name": "a", "value": "b", "inline": True}]}],
    }
    response = httpx.post(clean_sandbox.webhook_url("42", "secret"), json=payload)
    assert response.status_code == 204
    messages = clean_sandbox.messages()
    assert len(messages) == 1
    assert messages[0]["webhookId"] == "42"
    assert messages[0]["payload"] == payload
    received = datetime.fromisoformat(messages[0]["receivedAt"])
    assert abs((datetime.now(UTC) - received).total_seconds()) < 10
    clean_sandbox.clear_messages()
    assert clean_sandbox.messages() == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"content": "x" * 2001}, 50035),
        ({"embeds": [{"title": str(n)} for n in range(11)]}, 50035),
        ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, 50035),
        ({"embeds": [{"description": "x" * 3001}, {"description": "y" * 3000}]}, 50035),
        ({"content": ""}, 50006),
        ({}, 50006),
    ],
)
def test_webhook_enforces_discord_limits(
    clean_sandbox: Sandbox, payload: dict[str, Any], code: int
) -> None:
    response = httpx.post(clean_sandbox.webhook_url(), json=payload)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert clean_sandbox.messages() == []


def test_webhook_accepts_messages_at_the_limits(clean_sandbox: Sandbox) -> None:
    payload = {
        "content": "x" * 2000,
        "embeds": [{"fields": [{"name": "n", "value": "v"}] * 25}]
        + [{"description": "d" * 550} for _ in range(9)],
    }
    assert httpx.post(clean_sandbox.webhook_url(), json=payload).status_code == 204


def test_discord_status_fault_fails_the_webhook_until_restored(
    clean_sandbox: Sandbox,
) -> None:
    clean_sandbox.set_faults(discord_status=503)
    assert httpx.post(clean_sandbox.webhook_url(), json={"content": "hi"}).status_code == 503
    clean_sandbox.set_faults(discord_status=None)
    assert httpx.post(clean_sandbox.webhook_url(), json={"content": "hi"}).status_code == 204
    assert len(clean_sandbox.messages()) == 1
    assert clean_sandbox.stats()["discord"]["server_errors"] == 1


# Faults and control routes ----------------------------------------------------------------------


def test_error_rate_answers_that_share_with_5xx(
    clean_sandbox: Sandbox, alleaves: httpx.Client, alpine: httpx.Client
) -> None:
    clean_sandbox.set_faults(error_rate=1.0)
    statuses = {alleaves.get("/order").status_code for _ in range(30)}
    statuses |= {alpine.post("/v2/wallet", json={"phone": "1"}).status_code for _ in range(30)}
    assert statuses == {500, 502, 503}
    assert httpx.post(clean_sandbox.webhook_url(), json={"content": "x"}).status_code == 204
    clean_sandbox.set_faults(error_rate=0.5)
    failed = sum(alleaves.get("/order").status_code >= 500 for _ in range(200))
    assert 60 <= failed <= 140
    stats = clean_sandbox.stats()
    assert stats["alleaves"]["server_errors"] == 30 + failed
    assert stats["alpine"]["server_errors"] == 30
    assert stats["discord"]["server_errors"] == 0


def _by_window(responses: list[httpx.Response]) -> dict[str, list[int]]:
    """Statuses grouped by the rate-limit window (second) the sandbox counted each request in."""
    windows: dict[str, list[int]] = {}
    for response in responses:
        windows.setdefault(response.headers["X-Sandbox-Second"], []).append(response.status_code)
    return windows


def test_rate_limit_per_api_with_retry_after(
    clean_sandbox: Sandbox, alleaves: httpx.Client, alpine: httpx.Client
) -> None:
    clean_sandbox.set_faults(rate_limit=5)
    _start_of_next_second()
    responses = [alleaves.get("/order") for _ in range(8)]
    alpine_response = alpine.post("/v2/wallet", json={"phone": "0000000000"})
    discord = [httpx.post(clean_sandbox.webhook_url(), json={"content": "x"}) for _ in range(6)]
    # Each window lets the first 5 through and refuses the rest, however the 8 calls fell
    # into windows on a busy machine.
    windows = _by_window(responses)
    for statuses in windows.values():
        allowed = min(len(statuses), 5)
        assert statuses == [200] * allowed + [429] * (len(statuses) - allowed)
    refused = [r for r in responses if r.status_code == 429]
    assert all(r.headers["Retry-After"] == "1" for r in refused)
    assert alpine_response.status_code == 404  # its own window: not limited by Alleaves' calls
    for statuses in _by_window(discord).values():
        allowed = min(len(statuses), 5)
        assert statuses == [204] * allowed + [429] * (len(statuses) - allowed)
    assert all(r.json()["retry_after"] == 1.0 for r in discord if r.status_code == 429)
    stats = clean_sandbox.stats()
    assert stats["alleaves"]["rate_limited"] == len(refused)
    assert stats["alleaves"]["max_per_second"] == max(len(s) for s in windows.values())
    assert stats["alpine"]["rate_limited"] == 0
    assert stats["discord"]["rate_limited"] == sum(r.status_code == 429 for r in discord)
    _start_of_next_second()
    assert alleaves.get("/order").status_code == 200


def test_the_rate_limit_refuses_past_the_limit_within_one_window(
    clean_sandbox: Sandbox, alleaves: httpx.Client
) -> None:
    clean_sandbox.set_faults(rate_limit=2)
    _start_of_next_second()  # no earlier test's call in the first window
    responses: list[httpx.Response] = []
    # Bounded: on any machine some window sees more than 2 of these calls.
    for _ in range(200):
        responses.append(alleaves.get("/order"))
        if max(len(s) for s in _by_window(responses).values()) > 2:
            break
    windows = _by_window(responses)
    assert any(
        statuses[2:] == [429] * (len(statuses) - 2) and len(statuses) > 2
        for statuses in windows.values()
    )
    for statuses in windows.values():
        assert statuses[:2] == [200] * min(len(statuses), 2)


def _by_credential_window(calls: list[tuple[str, httpx.Response]]) -> dict[Any, list[int]]:
    """Statuses grouped by credential (its org) and the window the sandbox counted each in."""
    windows: dict[Any, list[int]] = {}
    for org_id, response in calls:
        key = (org_id, response.headers["X-Sandbox-Second"])
        windows.setdefault(key, []).append(response.status_code)
    return windows


def _each_org_thrice_in_one_window(
    calls: list[tuple[str, httpx.Response]], orgs: Iterable[str]
) -> bool:
    windows = _by_credential_window(calls)
    seconds = {second for _, second in windows}
    return any(all(len(windows.get((o, s), [])) >= 3 for o in orgs) for s in seconds)


def test_the_rate_limit_counts_per_credential_so_each_org_gets_all_of_it(
    clean_sandbox: Sandbox,
) -> None:
    orgs = {org_id: _org(clean_sandbox, org_id) for org_id in ("org-1", "org-2")}
    alleaves = {
        org_id: httpx.Client(
            base_url=clean_sandbox.alleaves_url,
            headers={"Authorization": f"Bearer {_login(clean_sandbox.alleaves_url, org)}"},
        )
        for org_id, org in orgs.items()
    }
    alpine = {
        org_id: httpx.Client(
            base_url=clean_sandbox.alpine_url, headers={"X-APIKEY": org["alpine"]["apiKey"]}
        )
        for org_id, org in orgs.items()
    }
    clean_sandbox.set_faults(rate_limit=2)
    _start_of_next_second()
    calls: dict[str, list[tuple[str, httpx.Response]]] = {"alleaves": [], "alpine": []}
    # Bounded: on any machine some window soon holds three calls of each org at each API.
    for _ in range(100):
        for org_id in orgs:
            calls["alleaves"].append((org_id, alleaves[org_id].get("/order")))
            calls["alpine"].append(
                (org_id, alpine[org_id].post("/v2/wallet", json={"phone": "0000000000"}))
            )
        if all(_each_org_thrice_in_one_window(made, orgs) for made in calls.values()):
            break
    for client in (*alleaves.values(), *alpine.values()):
        client.close()
    passed = {"alleaves": 200, "alpine": 404}  # the wallet knows no such phone
    for api, made in calls.items():
        # In each window each org's first two pass and the rest are refused, whatever the other
        # org sent in that window.
        for statuses in _by_credential_window(made).values():
            allowed = min(len(statuses), 2)
            assert statuses == [passed[api]] * allowed + [429] * (len(statuses) - allowed), api
        stats = clean_sandbox.stats()[api]
        assert stats["max_per_second_per_credential"] >= 3
        assert stats["max_per_second"] >= 6  # both orgs in one window: twice one limit's worth
        assert stats["rate_limited"] == sum(r.status_code == 429 for _, r in made)


def test_a_login_counts_against_the_login_as_its_token_does(clean_sandbox: Sandbox) -> None:
    org_1, org_2 = _org(clean_sandbox, "org-1"), _org(clean_sandbox, "org-2")
    token = _login(clean_sandbox.alleaves_url, org_1)

    def login(org: dict[str, Any]) -> httpx.Response:
        credentials = {key: org["alleaves"][key] for key in ("username", "password", "pin")}
        return httpx.post(f"{clean_sandbox.alleaves_url}/auth", json=credentials)

    clean_sandbox.set_faults(rate_limit=1)
    for _ in range(20):  # until all three fall in one window (the first try, but for a stall)
        _start_of_next_second()
        calls = [
            login(org_1),
            httpx.get(
                f"{clean_sandbox.alleaves_url}/order", headers={"Authorization": f"Bearer {token}"}
            ),
            login(org_2),
        ]
        if len({r.headers["X-Sandbox-Second"] for r in calls}) == 1:
            break
    # org-1's login spent org-1's one request of the second; org-2's login is its own.
    assert [r.status_code for r in calls] == [200, 429, 200]
    assert calls[0].json()["username"] == org_1["alleaves"]["username"]  # the body still read


def test_the_control_routes_are_never_rate_limited(clean_sandbox: Sandbox) -> None:
    clean_sandbox.set_faults(rate_limit=1)
    for _ in range(10):
        clean_sandbox.stats()  # raises on any error status
        clean_sandbox.set_faults()
    assert clean_sandbox.stats()["alleaves"]["requests"] == 0


def test_stats_count_the_busiest_second(clean_sandbox: Sandbox, alpine: httpx.Client) -> None:
    uid = _org(clean_sandbox)["alpine"]["uid"]
    _start_of_next_second()
    responses = [alpine.get(f"/v1.1/piis/{uid}") for _ in range(7)]
    _start_of_next_second()
    responses += [alpine.get(f"/v1.1/piis/{uid}") for _ in range(3)]
    busiest = max(len(statuses) for statuses in _by_window(responses).values())
    stats = clean_sandbox.stats()["alpine"]
    assert stats == {
        "requests": 10,
        "rate_limited": 0,
        "server_errors": 0,
        "max_per_second": busiest,  # 7, unless a busy machine spread them over more seconds
        "max_per_second_per_credential": busiest,  # one API key made them all
        "max_in_flight": 1,  # one after the other
    }
    clean_sandbox.reset_stats()
    assert clean_sandbox.stats()["alpine"]["requests"] == 0


def test_latency_delays_api_calls_but_not_control_routes(
    clean_sandbox: Sandbox, alpine: httpx.Client
) -> None:
    clean_sandbox.set_faults(latency_ms=3000)
    started = time.monotonic()
    alpine.post("/v2/wallet", json={"phone": "0000000000"})
    assert time.monotonic() - started >= 3.0  # a lower bound: it never comes early
    started = time.monotonic()
    clean_sandbox.stats()
    # a control route is not held for the 3 s (a loaded machine adds far less than half of it)
    assert time.monotonic() - started < 1.5


def test_latency_is_concurrent(clean_sandbox: Sandbox) -> None:
    clean_sandbox.set_faults(latency_ms=500)
    key = _org(clean_sandbox)["alpine"]["apiKey"]

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(
            base_url=clean_sandbox.alpine_url, headers={"X-APIKEY": key}, limits=limits
        ) as client:
            responses = await asyncio.gather(
                *(client.post("/v2/wallet", json={"phone": "0000000000"}) for _ in range(100))
            )
        return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [404] * 100
    # Served side by side, not one after another: many were inside the API at once (counted by
    # the sandbox itself, so a slow machine changes nothing; one at a time would be 1).
    assert clean_sandbox.stats()["alpine"]["max_in_flight"] >= 10


def test_faults_are_validated_and_restored(clean_sandbox: Sandbox) -> None:
    for bad in ({"error_rate": 2}, {"latency_ms": -1}, {"surprise": 1}, {"discord_status": 299}):
        response = httpx.post(f"{clean_sandbox.base_url}/sandbox/faults", json=bad)
        assert response.status_code == 400, bad
    assert clean_sandbox.set_faults(rate_limit=0).rate_limit is None
    changed = clean_sandbox.set_faults(latency_ms=5, rate_limit=50)
    assert changed == Faults(latency_ms=5, rate_limit=50)
    assert clean_sandbox.reset_faults().rate_limit is None


def test_dataset_route_serves_the_generated_dataset(clean_sandbox: Sandbox) -> None:
    served = clean_sandbox.dataset()
    generated = generate_dataset(60, 7, as_of=date.fromisoformat(served["asOf"]))
    assert served == generated
    assert [len(org["customers"]) for org in served["orgs"]] == [60, 6]


# A sandbox of its own -----------------------------------------------------------------------------


@pytest.fixture
def private_sandbox() -> Iterator[Sandbox]:
    """A sandbox whose data a test may change, started with options of its own."""
    process = start_sandbox("--customers", "8", "--seed", "3", "--orgs", "1", "--token-ttl-s", "90")
    try:
        yield process
    finally:
        process.stop()


def test_command_line_faults_are_in_force(private_sandbox: Sandbox) -> None:
    assert private_sandbox.set_faults().token_ttl_s == 90
    org = private_sandbox.dataset()["orgs"][0]
    token = _login(private_sandbox.alleaves_url, org)
    assert abs(_claims(token)["exp"] - (time.time() + 90)) < 3


def test_orders_upsert_changes_what_is_served(private_sandbox: Sandbox) -> None:
    org = private_sandbox.dataset()["orgs"][0]
    orders = org["orders"]
    token = _login(private_sandbox.alleaves_url, org)
    today = datetime.now(UTC)
    voided = {**orders[-1], "status": "VOIDED"}
    moved = {**orders[-2], "date_created": today.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    new = {**orders[0], "id_order": 99_999_999, "date_created": moved["date_created"]}
    counts = private_sandbox.upsert_orders("org-1", [voided, moved, new])
    assert counts == {"created": 1, "updated": 2}

    with httpx.Client(
        base_url=private_sandbox.alleaves_url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        day = voided["date_created"][:10]
        that_day = _all_orders(client, {"startDate": day, "endDate": day}, page_size=100)
        assert [o for o in that_day if o["id_order"] == voided["id_order"]] == [voided]
        recent = _all_orders(client, {}, page_size=100)
        recent_ids = [o["id_order"] for o in recent]
        assert {99_999_999, moved["id_order"]} <= set(recent_ids)
        assert len(recent_ids) == len(set(recent_ids))
    served = private_sandbox.dataset()["orgs"][0]["orders"]
    assert len(served) == len(orders) + 1
    assert served[:2] == sorted([moved, new], key=lambda o: o["id_order"], reverse=True)


def test_orders_upsert_rejects_bad_input(private_sandbox: Sandbox) -> None:
    url = f"{private_sandbox.base_url}/sandbox/orgs"
    assert httpx.put(f"{url}/org-1/orders", json=[{"status": "completed"}]).status_code == 400
    assert httpx.put(f"{url}/org-1/orders", json={"id_order": 1}).status_code == 400
    assert httpx.put(f"{url}/org-9/orders", json=[]).status_code == 404


def test_balances_in_the_listing_only_with_the_shortcut_flag() -> None:
    with start_sandbox(
        "--customers", "8", "--seed", "3", "--orgs", "1", "--alpine-balances-in-listing"
    ) as shortcut:
        org = shortcut.dataset()["orgs"][0]
        headers = {"X-APIKEY": org["alpine"]["apiKey"]}
        url = f"{shortcut.alpine_url}/v1.1/piis/{org['alpine']['uid']}"
        rows = httpx.get(url, headers=headers).json()["data"]["results"]
    by_id = {contact["contactID"]: contact for contact in org["alpineContacts"]}
    assert len(rows) == len(by_id) > 0
    for row in rows:
        contact = by_id[row["contactID"]]
        assert (row["points"], row["tier"], row["lastVisit"]) == (
            contact["points"],
            contact["tier"],
            contact["lastVisit"],
        )


def test_start_sandbox_reports_stderr_when_it_cannot_start(tmp_path: Any) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(RuntimeError, match="cannot read JSON"):
        start_sandbox("--dataset", str(missing))
