"""The Alleaves client against an in-memory Alleaves served through httpx.MockTransport."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from loyalty_worker.adapters.alleaves import REFUSED_LOGIN_HOLD_S, AlleavesAccount, AlleavesClient
from loyalty_worker.adapters.http import RetryPolicy
from loyalty_worker.adapters.wire import AlleavesOrder
from loyalty_worker.domain.models import Customer, Order
from loyalty_worker.errors import AuthError, MalformedRecord
from loyalty_worker.ports.sources import CustomerSource

BASE = "https://alleaves.test/api"
PASSWORD = "hunter2-password"
PIN = "4321"


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT: the client reads ``exp`` and leaves the signature to Alleaves."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.signature"


class FakeAlleaves:
    """Just enough Alleaves: JWT login, customer search pages and dated order pages."""

    def __init__(self, *, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.token_ttl_s = 24 * 3600.0
        self.customers: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.customer_shape = "keyed"
        self.login_delay_s = 0.0
        self.reject_all_tokens = False
        self.logins = 0
        self.company: str | None = "  Green Leaf Dispensary "
        self.requests: list[httpx.Request] = []
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def revoke_tokens(self) -> None:
        self._tokens.clear()

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        path = request.url.path.removeprefix("/api")
        if path == "/auth" and request.method == "POST":
            return self._login(json.loads(request.content))
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        expires = self._tokens.get(bearer)
        if self.reject_all_tokens or expires is None or self.now >= expires:
            return httpx.Response(401, json={"message": "Unauthorized"})
        if path == "/customer/search" and request.method == "POST":
            body = json.loads(request.content)
            return self._customers(body["page"], body["pageSize"])
        if path == "/order" and request.method == "GET":
            return self._orders(request.url.params)
        return httpx.Response(404)

    def _login(self, body: dict[str, Any]) -> httpx.Response:
        if body != {"username": "clerk", "password": PASSWORD, "pin": PIN}:
            return httpx.Response(401, json={"message": "Invalid credentials"})
        time.sleep(self.login_delay_s)
        with self._lock:
            self.logins += 1
            exp = self.now + self.token_ttl_s
            token = jwt({"sub": "clerk", "n": self.logins, "exp": int(exp)})
            self._tokens[token] = exp
        answer = {"id_user": 1, "username": "clerk", "company": self.company, "token": token}
        return httpx.Response(200, json=answer)

    def _customers(self, page: int, size: int) -> httpx.Response:
        rows = self.customers[(page - 1) * size : page * size]
        if self.customer_shape == "array":
            return httpx.Response(200, json=rows)
        if self.customer_shape == "data":
            return httpx.Response(200, json={"data": rows})
        keyed = {str(i): row for i, row in enumerate(rows)}
        # Keys in JSON order other than numeric: the position in the key is what counts.
        return httpx.Response(200, json=dict(reversed(list(keyed.items()))))

    def _orders(self, params: httpx.QueryParams) -> httpx.Response:
        start, end = params.get("startDate"), params.get("endDate")
        if start is None or end is None:
            return httpx.Response(200, json=self.orders[:2])  # the silent default window
        page, size = int(params["page"]), int(params["pageSize"])
        chosen = [o for o in self.orders if start <= o["date_created"][:10] <= end]
        rows = chosen[(page - 1) * size : page * size]
        # Serialised by hand so that amounts keep the exact JSON text the test wrote.
        return httpx.Response(200, content=json.dumps(rows).encode())

    def data_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path != "/api/auth"]


def make_client(
    fake: FakeAlleaves,
    *,
    page_size: int = 100,
    partner_id: str | None = None,
    password: str = PASSWORD,
) -> AlleavesClient:
    return AlleavesClient(
        httpx.Client(transport=httpx.MockTransport(fake.handler)),
        account=AlleavesAccount(
            base_url=BASE, username="clerk", password=password, pin=PIN, partner_id=partner_id
        ),
        page_size=page_size,
        retry=RetryPolicy(max_attempts=3, wait=False),
        clock=fake.clock,
    )


def customer(n: int) -> dict[str, Any]:
    return {
        "id_customer": n,
        "name_first": "guest",
        "phone": f"(555) 010-{n:04d}",
        "email": "",
        "loyalty_points": None,
        "alpine_user_code": f"AIQ{n}" if n % 2 else None,
    }


def order(n: int, day: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id_order": n,
        "id_customer": n % 7,
        "status": "completed",
        "subtotal": "10.00",
        "discount": None,
        "date_created": f"{day}T12:00:00.000Z",
        "email": "no-email@alleaves.local",
    }
    row.update(fields)
    return row


def test_satisfies_the_customer_source_port() -> None:
    source: CustomerSource = make_client(FakeAlleaves())
    assert source is not None


def test_the_company_the_login_names_is_kept_for_the_dashboard() -> None:
    alleaves = FakeAlleaves()
    client = make_client(alleaves)
    assert client.company() is None  # not before a login
    client.fetch_customer_page(1)
    assert client.company() == "Green Leaf Dispensary"
    alleaves.company, alleaves.now = "x" * 500, alleaves.now + 30 * 3600  # the token expired
    client.fetch_customer_page(1)
    assert client.company() == "x" * 120
    alleaves.company, alleaves.now = None, alleaves.now + 30 * 3600
    client.fetch_customer_page(1)
    assert client.company() == "x" * 120  # a login that names none keeps the last name


def test_concurrent_first_calls_share_one_login() -> None:
    fake = FakeAlleaves()
    fake.customers = [customer(n) for n in range(1, 6)]
    fake.login_delay_s = 0.05
    client = make_client(fake)
    barrier = threading.Barrier(20)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(len(list(client.iter_customers())))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [5] * 20
    assert fake.logins == 1
    assert sum(1 for r in fake.requests if r.url.path == "/api/auth") == 1


def test_sends_bearer_token_and_partner_id() -> None:
    fake = FakeAlleaves()
    list(make_client(fake, partner_id="partner-9").iter_customers())
    request = fake.data_requests()[0]
    assert request.headers["Authorization"].startswith("Bearer ")
    assert request.headers["X-Partner-ID"] == "partner-9"
    login = json.loads(fake.requests[0].content)
    assert login == {"username": "clerk", "password": PASSWORD, "pin": PIN}

    plain = FakeAlleaves()
    list(make_client(plain).iter_customers())
    assert "X-Partner-ID" not in plain.data_requests()[0].headers


def test_logs_in_again_shortly_before_the_token_expires() -> None:
    fake = FakeAlleaves()
    client = make_client(fake)
    issued = fake.now
    list(client.iter_customers())
    fake.now = issued + fake.token_ttl_s - 400  # more than 5 minutes left: keep the token
    list(client.iter_customers())
    assert fake.logins == 1
    fake.now = issued + fake.token_ttl_s - 200  # within 5 minutes of exp: renew first
    list(client.iter_customers())
    assert fake.logins == 2
    assert all(r.headers.get("Authorization") for r in fake.data_requests())
    assert len(fake.data_requests()) == 3  # no call ever met a 401


def test_a_short_lived_token_renews_before_it_expires_not_on_every_call() -> None:
    fake = FakeAlleaves()
    fake.token_ttl_s = 60
    client = make_client(fake)
    list(client.iter_customers())
    list(client.iter_customers())
    assert fake.logins == 1
    fake.now += 45
    list(client.iter_customers())
    assert fake.logins == 2


def test_a_401_mid_run_logs_in_again_once_and_retries() -> None:
    fake = FakeAlleaves()
    fake.customers = [customer(1)]
    client = make_client(fake)
    list(client.iter_customers())
    fake.revoke_tokens()
    assert [c for c in client.iter_customers()] == [
        Customer(customer_id=1, phone="(555) 010-0001", alpine_user_code="AIQ1")
    ]
    assert fake.logins == 2


def test_a_second_401_is_an_auth_error() -> None:
    fake = FakeAlleaves()
    fake.reject_all_tokens = True
    with pytest.raises(AuthError) as caught:
        list(make_client(fake).iter_customers())
    assert fake.logins == 2
    assert len(fake.data_requests()) == 2
    assert PASSWORD not in str(caught.value)


def test_a_refused_login_is_not_sent_again_by_every_waiting_caller() -> None:
    fake = FakeAlleaves()
    client = make_client(fake, password="wrong-secret")
    errors: list[BaseException] = []

    def page() -> None:
        try:
            client.fetch_customer_page(1)
        except AuthError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=page) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 16
    assert len(fake.requests) == 1  # one POST /auth for all sixteen callers
    fake.now += REFUSED_LOGIN_HOLD_S
    with pytest.raises(AuthError):
        client.fetch_customer_page(1)
    assert len(fake.requests) == 2  # tried again once the refusal has aged


def test_wrong_password_is_an_auth_error_without_the_password() -> None:
    fake = FakeAlleaves()
    client = make_client(fake, password="wrong-secret")
    with pytest.raises(AuthError) as caught:
        list(client.iter_customers())
    text = str(caught.value) + repr(caught.value.args)
    assert "wrong-secret" not in text
    assert PIN not in text
    assert len(fake.requests) == 1  # a refused login is not retried


@pytest.mark.parametrize("shape", ["keyed", "array", "data"])
def test_customer_pages_in_every_shape_until_a_short_page(shape: str) -> None:
    fake = FakeAlleaves()
    fake.customer_shape = shape
    fake.customers = [customer(n) for n in range(1, 251)]
    found = list(make_client(fake, page_size=100).iter_customers())
    assert [c.customer_id for c in found if isinstance(c, Customer)] == list(range(1, 251))
    pages = [json.loads(r.content) for r in fake.data_requests()]
    assert pages == [{"page": p, "pageSize": 100} for p in (1, 2, 3)]


def test_customer_paging_stops_at_an_empty_page() -> None:
    fake = FakeAlleaves()
    fake.customers = [customer(n) for n in range(1, 201)]
    assert len(list(make_client(fake, page_size=100).iter_customers())) == 200
    assert len(fake.data_requests()) == 3


def test_customer_fields_become_the_domain_customer() -> None:
    fake = FakeAlleaves()
    fake.customers = [
        {"id_customer": "12", "phone": "", "alpine_user_code": 98765, "extra": {"x": 1}},
        {"id_customer": 13, "phone": None},
    ]
    assert list(make_client(fake).iter_customers()) == [
        Customer(customer_id=12, phone=None, alpine_user_code="98765"),
        Customer(customer_id=13, phone=None, alpine_user_code=None),
    ]


def test_malformed_customers_are_reported_by_id_without_stopping() -> None:
    fake = FakeAlleaves()
    fake.customer_shape = "array"
    fake.customers = [
        customer(1),
        {"id_customer": 2, "phone": {"not": "a phone"}},
        {"name_first": "no id", "phone": "555-010-9999"},
        customer(4),
        customer(5),
    ]
    found = list(make_client(fake, page_size=3).iter_customers())
    assert [type(item) for item in found] == [
        Customer,
        MalformedRecord,
        MalformedRecord,
        Customer,
        Customer,
    ]
    bad = [item for item in found if isinstance(item, MalformedRecord)]
    assert [(b.kind, b.record_id, b.reason) for b in bad] == [
        ("customer", "2", "malformed"),
        ("customer", "page 1 #2", "malformed"),
    ]
    assert "phone" in bad[0].problem
    assert "id_customer" in bad[1].problem
    assert all("555-010-9999" not in str(b) for b in bad)


def test_orders_always_send_both_dates_and_page_until_a_short_page() -> None:
    fake = FakeAlleaves()
    fake.orders = [order(n, "2024-03-05") for n in range(1, 206)]
    fake.orders += [order(900 + n, "2023-01-01") for n in range(5)]
    found = list(make_client(fake).iter_orders(date(2024, 3, 1), date(2024, 3, 31)))
    assert [o.order_id for o in found if isinstance(o, Order)] == list(range(1, 206))
    requests = fake.data_requests()
    assert [r.url.params["page"] for r in requests] == ["1", "2", "3"]
    for request in requests:
        assert request.url.params["startDate"] == "2024-03-01"
        assert request.url.params["endDate"] == "2024-03-31"
        assert request.url.params["pageSize"] == "100"


def test_fetch_order_page_reads_one_page_of_a_window() -> None:
    fake = FakeAlleaves()
    fake.orders = [order(n, "2024-03-05") for n in range(1, 151)]
    page = make_client(fake).fetch_order_page(date(2024, 3, 1), date(2024, 3, 31), 2)
    assert [o.order_id for o in page if isinstance(o, Order)] == list(range(101, 151))
    assert fake.data_requests()[0].url.params["page"] == "2"


def test_order_amounts_are_exact_decimals_from_numbers_or_strings() -> None:
    fake = FakeAlleaves()
    fake.orders = [
        order(1, "2024-03-05", subtotal="19.99", discount="1.10", refunded_amount=None),
        order(2, "2024-03-05", subtotal=19.99, discount=0.1, refunded_amount=2.5),
        order(3, "2024-03-05", subtotal=20),
    ]
    found = list(make_client(fake).iter_orders(date(2024, 3, 1), date(2024, 3, 31)))
    first, second, third = found
    assert isinstance(first, Order) and isinstance(second, Order) and isinstance(third, Order)
    assert first.subtotal == Decimal("19.99") and str(first.subtotal) == "19.99"
    assert second.subtotal == Decimal("19.99") and str(second.subtotal) == "19.99"
    assert (first.discount, first.refunded_amount) == (Decimal("1.10"), Decimal(0))
    assert (second.discount, second.refunded_amount) == (Decimal("0.1"), Decimal("2.5"))
    assert (third.subtotal, third.discount, third.refunded_amount) == (
        Decimal(20),
        Decimal(0),
        Decimal(0),
    )


def test_anonymous_orders_belong_to_customer_zero() -> None:
    fake = FakeAlleaves()
    fake.orders = [order(1, "2024-03-05", id_customer=0), order(2, "2024-03-05")]
    del fake.orders[1]["id_customer"]
    found = list(make_client(fake).iter_orders(date(2024, 3, 1), date(2024, 3, 31)))
    assert [o.customer_id for o in found if isinstance(o, Order)] == [0, 0]


def test_malformed_orders_are_reported_by_id_with_their_customer_without_stopping() -> None:
    fake = FakeAlleaves()
    missing = order(11, "2024-03-05", id_customer=42)
    del missing["subtotal"]
    fake.orders = [
        order(10, "2024-03-05"),
        missing,
        order(12, "2024-03-05", id_customer="43", subtotal="twelve"),
        order(13, "2024-03-05", id_customer=None, subtotal="NaN"),
        {"id_customer": 44, "status": "completed", "subtotal": "1", "date_created": "2024-03-05"},
        order(14, "2024-03-05"),
    ]
    found = list(make_client(fake).iter_orders(date(2024, 3, 1), date(2024, 3, 31)))
    assert [type(item) for item in found] == [
        Order,
        MalformedRecord,
        MalformedRecord,
        MalformedRecord,
        MalformedRecord,
        Order,
    ]
    bad = [item for item in found if isinstance(item, MalformedRecord)]
    assert [(b.record_id, b.customer_id) for b in bad] == [
        ("11", 42),
        ("12", 43),
        ("13", None),
        ("page 1 #4", 44),
    ]
    assert all(b.kind == "order" and b.service == "alleaves" for b in bad)
    assert "subtotal" in bad[0].problem and "subtotal" in bad[1].problem


def test_a_5xx_page_is_retried_transparently() -> None:
    fake = FakeAlleaves()
    fake.customers = [customer(1)]
    failures = iter([True, False])

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/customer/search" and next(failures, False):
            return httpx.Response(503)
        return fake.handler(request)

    client = AlleavesClient(
        httpx.Client(transport=httpx.MockTransport(flaky)),
        account=AlleavesAccount(base_url=BASE, username="clerk", password=PASSWORD, pin=PIN),
        retry=RetryPolicy(max_attempts=3, wait=False),
        clock=fake.clock,
    )
    assert len(list(client.iter_customers())) == 1
    assert fake.logins == 1


def test_zero_amounts_and_statuses_are_shared_between_orders() -> None:
    """A run holds every order of an org: equal zeros and statuses are one object each."""
    rows = [
        {"id_order": 1, "status": "completed", "subtotal": "10", "discount": "0.00"},
        {"id_order": 2, "status": "completed", "subtotal": 5, "refunded_amount": 0},
    ]
    first, second = (
        AlleavesOrder.model_validate(json.loads(json.dumps(r))).to_order() for r in rows
    )
    assert first.discount == second.discount == 0
    assert first.discount is second.discount is first.refunded_amount is second.refunded_amount
    assert first.status is second.status
    assert first.subtotal == Decimal("10")
