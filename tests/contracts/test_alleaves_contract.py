"""One set of CustomerSource checks, run over FakeAlleaves and the real Alleaves client.

The real client talks to the sandbox over HTTP; the fake is loaded with the same generated
dataset. Paging (short and empty last pages), date ranges and malformed records must look the
same through both, so a unit test on the fake means the same on Alleaves. The client's own
concerns (login, token expiry, rate limits, retries) are checked against the sandbox below.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from loyalty_worker.adapters.alleaves import AlleavesClient
from loyalty_worker.devstack import Sandbox, start_sandbox
from loyalty_worker.domain.models import Customer, Order
from loyalty_worker.errors import AuthError, MalformedRecord
from loyalty_worker.ports.sources import CustomerSource
from tests.contracts.sandbox_clients import (
    alleaves_client,
    malformed_dataset,
    malformed_sandbox_args,
    session_dataset,
)
from tests.fakes import FakeAlleaves


@dataclass
class Source:
    """A CustomerSource at any page size, and the dataset org it serves."""

    make: Callable[[int], CustomerSource]
    org: Mapping[str, Any]
    as_of: date


def fake_source(dataset: Mapping[str, Any]) -> Source:
    org = dataset["orgs"][0]
    return Source(
        lambda size: FakeAlleaves.from_rows(org["customers"], org["orders"], page_size=size),
        org,
        date.fromisoformat(dataset["asOf"]),
    )


def sandbox_source(http: httpx.Client, sandbox: Sandbox) -> Source:
    dataset = sandbox.dataset()
    org = dataset["orgs"][0]
    return Source(
        lambda size: alleaves_client(http, sandbox, org, page_size=size),
        org,
        date.fromisoformat(dataset["asOf"]),
    )


@pytest.fixture(params=["fake", pytest.param("sandbox", marks=pytest.mark.integration)])
def source(request: pytest.FixtureRequest) -> Source:
    if request.param == "fake":
        return fake_source(session_dataset())
    sandbox: Sandbox = request.getfixturevalue("clean_sandbox")
    return sandbox_source(request.getfixturevalue("http"), sandbox)


@pytest.fixture(scope="module")
def malformed_sandbox() -> Iterator[Sandbox]:
    private = start_sandbox(*malformed_sandbox_args())
    try:
        yield private
    finally:
        private.stop()


@pytest.fixture(params=["fake", pytest.param("sandbox", marks=pytest.mark.integration)])
def broken_source(request: pytest.FixtureRequest) -> Source:
    """A source whose dataset has customers without an id and orders with a broken subtotal."""
    if request.param == "fake":
        return fake_source(malformed_dataset())
    sandbox: Sandbox = request.getfixturevalue("malformed_sandbox")
    return sandbox_source(request.getfixturevalue("http"), sandbox)


def customer_ids(source: CustomerSource) -> list[int]:
    found = list(source.iter_customers())
    assert not [item for item in found if isinstance(item, MalformedRecord)]
    return [item.customer_id for item in found if isinstance(item, Customer)]


def orders_in(org: Mapping[str, Any], start: date, end: date) -> list[dict[str, Any]]:
    return [
        order
        for order in org["orders"]
        if start.isoformat() <= order["date_created"][:10] <= end.isoformat()
    ]


# --- the port, over the fake and the real client -------------------------------------------


def test_the_fake_serves_the_sandboxs_dataset(source: Source) -> None:
    org = session_dataset(source.as_of)["orgs"][0]
    assert [c["id_customer"] for c in source.org["customers"]] == [
        c["id_customer"] for c in org["customers"]
    ]
    assert len(source.org["orders"]) == len(org["orders"])


def test_all_customers_are_listed_across_pages(source: Source) -> None:
    ids = customer_ids(source.make(7))
    assert len(ids) == len(source.org["customers"]) > 7
    assert ids == [c["id_customer"] for c in source.org["customers"]]


def test_customers_are_read_with_their_alpine_link(source: Source) -> None:
    customers = [c for c in source.make(25).iter_customers() if isinstance(c, Customer)]
    raw = {c["id_customer"]: c for c in source.org["customers"]}
    assert all(
        c.alpine_user_code == (raw[c.customer_id].get("alpine_user_code") or None)
        for c in customers
    )
    assert any(c.alpine_user_code for c in customers)
    assert any(c.phone for c in customers)


def test_customer_pages_are_full_but_the_last_short_one(source: Source) -> None:
    total = len(source.org["customers"])
    assert total % 7
    client = source.make(7)
    assert client.page_size == 7
    pages = [client.fetch_customer_page(page) for page in range(1, total // 7 + 3)]
    assert [len(page) for page in pages] == [7] * (total // 7) + [total % 7, 0]


def test_an_exact_multiple_ends_with_an_empty_page(source: Source) -> None:
    total = len(source.org["customers"])
    size = next(n for n in range(10, total) if total % n == 0)
    client = source.make(size)
    assert [len(client.fetch_customer_page(p)) for p in range(1, total // size + 2)] == [size] * (
        total // size
    ) + [0]
    assert len(customer_ids(client)) == total


def test_orders_of_a_date_range_are_paged_completely(source: Source) -> None:
    end = source.as_of
    start = end - timedelta(days=365)
    expected = orders_in(source.org, start, end)
    assert len(expected) > 25
    found = list(source.make(25).iter_orders(start, end))
    orders = [item for item in found if isinstance(item, Order)]
    assert len(orders) == len(found) == len(expected)
    assert sorted(o.order_id for o in orders) == sorted(o["id_order"] for o in expected)
    by_id = {o["id_order"]: o for o in expected}
    for got in orders:
        raw = by_id[got.order_id]
        assert got.subtotal == Decimal(str(raw["subtotal"]))
        assert got.customer_id == (raw.get("id_customer") or 0)


def test_order_pages_add_up_to_the_range_and_end_short(source: Source) -> None:
    end = source.as_of
    start = end - timedelta(days=400)
    client = source.make(25)
    expected = len(orders_in(source.org, start, end))
    pages: list[list[Order | MalformedRecord]] = []
    while not pages or len(pages[-1]) == 25:
        pages.append(client.fetch_order_page(start, end, len(pages) + 1))
    assert sum(len(page) for page in pages) == expected
    assert len(pages[-1]) == expected % 25
    assert client.fetch_order_page(start, end, len(pages) + 1) == []
    ids = [o.order_id for page in pages for o in page if isinstance(o, Order)]
    assert len(set(ids)) == expected  # no order on two pages


def test_both_ends_of_a_range_are_included(source: Source) -> None:
    days = sorted({o["date_created"][:10] for o in source.org["orders"]})
    first, last = date.fromisoformat(days[-3]), date.fromisoformat(days[-1])
    expected = sorted(o["id_order"] for o in orders_in(source.org, first, last))
    on_ends = [o for o in source.org["orders"] if o["date_created"][:10] in (days[-3], days[-1])]
    assert on_ends
    client = source.make(100)
    assert sorted(o.order_id for o in client.iter_orders(first, last) if isinstance(o, Order)) == (
        expected
    )
    page = client.fetch_order_page(first, last, 1)
    assert sorted(o.order_id for o in page if isinstance(o, Order)) == expected


def test_a_range_without_orders_is_empty(source: Source) -> None:
    later = source.as_of + timedelta(days=30)
    client = source.make(25)
    assert list(client.iter_orders(later, later + timedelta(days=7))) == []
    assert client.fetch_order_page(later, later, 1) == []


def test_malformed_records_are_reported_by_id(broken_source: Source) -> None:
    org = broken_source.org
    client = broken_source.make(10)

    customers = list(client.iter_customers())
    bad_customers = [c for c in customers if isinstance(c, MalformedRecord)]
    positions = [i for i, c in enumerate(org["customers"]) if "id_customer" not in c]
    assert positions
    assert [b.record_id for b in bad_customers] == [
        f"page {i // 10 + 1} #{i % 10}" for i in positions
    ]
    assert all(b.kind == "customer" for b in bad_customers)
    assert len(customers) == len(org["customers"])

    end = broken_source.as_of
    start = end - timedelta(days=4 * 365)
    orders = list(client.iter_orders(start, end))
    bad_orders = [o for o in orders if isinstance(o, MalformedRecord)]
    broken = [o for o in org["orders"] if o.get("subtotal") in (None, "n/a")]
    assert broken
    assert sorted((b.record_id, b.customer_id) for b in bad_orders) == sorted(
        (str(o["id_order"]), o["id_customer"]) for o in broken
    )
    assert all(b.kind == "order" and "subtotal" in b.problem for b in bad_orders)
    assert len(orders) == len(orders_in(org, start, end))


# --- the real client's own concerns, against the sandbox -----------------------------------


def first_org(sandbox: Sandbox) -> dict[str, Any]:
    org: dict[str, Any] = sandbox.dataset()["orgs"][0]
    return org


@pytest.mark.integration
def test_login_and_a_wrong_password(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    org = first_org(clean_sandbox)
    assert customer_ids(alleaves_client(http, clean_sandbox, org))
    with pytest.raises(AuthError) as caught:
        wrong = alleaves_client(http, clean_sandbox, org, password="not-the-password")
        list(wrong.iter_customers())
    assert "not-the-password" not in str(caught.value)
    assert org["alleaves"]["password"] not in str(caught.value)


@pytest.mark.integration
def test_an_expired_token_is_replaced_transparently(
    clean_sandbox: Sandbox, http: httpx.Client
) -> None:
    org = first_org(clean_sandbox)
    clean_sandbox.set_faults(token_ttl_s=1)
    client: AlleavesClient = alleaves_client(http, clean_sandbox, org)
    expected = [c["id_customer"] for c in org["customers"]]
    assert customer_ids(client) == expected
    time.sleep(1.5)
    assert customer_ids(client) == expected
    assert clean_sandbox.stats()["alleaves"]["logins"] >= 2


@pytest.mark.integration
def test_one_login_serves_every_page(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    org = first_org(clean_sandbox)
    assert len(customer_ids(alleaves_client(http, clean_sandbox, org, page_size=7))) > 7
    assert clean_sandbox.stats()["alleaves"]["logins"] == 1


@pytest.mark.integration
def test_rate_limits_are_waited_out(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    org = first_org(clean_sandbox)
    clean_sandbox.set_faults(rate_limit=3)
    assert len(customer_ids(alleaves_client(http, clean_sandbox, org, page_size=5))) == len(
        org["customers"]
    )
    assert clean_sandbox.stats()["alleaves"]["rate_limited"] > 0


@pytest.mark.integration
def test_server_errors_are_retried(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    org = first_org(clean_sandbox)
    clean_sandbox.set_faults(error_rate=0.3)
    assert len(customer_ids(alleaves_client(http, clean_sandbox, org, page_size=3))) == len(
        org["customers"]
    )
    assert clean_sandbox.stats()["alleaves"]["server_errors"] > 0
