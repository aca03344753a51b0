"""The Alleaves, Alpine IQ and Discord clients against the sandbox, over real HTTP.

The sandbox speaks what the real services speak, so these are the clients' contract tests: what
passes here should pass against production with only the base URLs changed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from loyalty_worker.adapters.alleaves import AlleavesClient
from loyalty_worker.adapters.alpine import AlpineIQClient
from loyalty_worker.adapters.discord import DiscordNotifier
from loyalty_worker.adapters.http import RetryPolicy
from loyalty_worker.devstack import Sandbox, start_sandbox
from loyalty_worker.domain.models import Customer, Order
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.errors import AuthError, MalformedRecord
from loyalty_worker.ports import Alert

pytestmark = pytest.mark.integration

# Short backoffs keep the fault tests quick; the sandbox's 429s ask for one second.
RETRY = RetryPolicy(max_attempts=8, max_total_s=30.0, base_delay_s=0.05, max_delay_s=0.5)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)) as client:
        yield client


def first_org(sandbox: Sandbox) -> dict[str, Any]:
    org: dict[str, Any] = sandbox.dataset()["orgs"][0]
    return org


def alleaves(
    http: httpx.Client,
    sandbox: Sandbox,
    org: dict[str, Any],
    *,
    password: str | None = None,
    page_size: int = 25,
) -> AlleavesClient:
    credentials = org["alleaves"]
    return AlleavesClient(
        http,
        base_url=sandbox.alleaves_url,
        username=credentials["username"],
        password=password if password is not None else credentials["password"],
        pin=str(credentials["pin"]),
        page_size=page_size,
        retry=RETRY,
    )


def alpine(
    http: httpx.Client, sandbox: Sandbox, org: dict[str, Any], *, api_key: str | None = None
) -> AlpineIQClient:
    return AlpineIQClient(
        http,
        base_url=sandbox.alpine_url,
        uid=str(org["alpine"]["uid"]),
        api_key=api_key if api_key is not None else org["alpine"]["apiKey"],
        retry=RETRY,
    )


def customer_ids(client: AlleavesClient) -> list[int]:
    found = list(client.iter_customers())
    assert not [item for item in found if isinstance(item, MalformedRecord)]
    return [item.customer_id for item in found if isinstance(item, Customer)]


def orders_in(org: dict[str, Any], start: date, end: date) -> list[dict[str, Any]]:
    return [
        order
        for order in org["orders"]
        if start.isoformat() <= order["date_created"][:10] <= end.isoformat()
    ]


def test_alleaves_login_and_a_wrong_password(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    org = first_org(clean_sandbox)
    assert customer_ids(alleaves(http, clean_sandbox, org))
    with pytest.raises(AuthError) as caught:
        list(alleaves(http, clean_sandbox, org, password="not-the-password").iter_customers())
    assert "not-the-password" not in str(caught.value)
    assert org["alleaves"]["password"] not in str(caught.value)


def test_an_expired_token_is_replaced_transparently(
    clean_sandbox: Sandbox, http: httpx.Client
) -> None:
    org = first_org(clean_sandbox)
    clean_sandbox.set_faults(token_ttl_s=1)
    client = alleaves(http, clean_sandbox, org)
    expected = [c["id_customer"] for c in org["customers"]]
    assert customer_ids(client) == expected
    time.sleep(1.5)
    assert customer_ids(client) == expected
    assert clean_sandbox.stats()["alleaves"]["logins"] >= 2


def test_all_customers_are_listed_across_pages(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    org = first_org(clean_sandbox)
    ids = customer_ids(alleaves(http, clean_sandbox, org, page_size=7))
    assert len(ids) == len(org["customers"]) > 7
    assert ids == [c["id_customer"] for c in org["customers"]]
    assert clean_sandbox.stats()["alleaves"]["logins"] == 1


def test_orders_of_a_date_range_are_paged_completely(
    clean_sandbox: Sandbox, http: httpx.Client
) -> None:
    dataset = clean_sandbox.dataset()
    org = dataset["orgs"][0]
    end = date.fromisoformat(dataset["asOf"])
    start = end - timedelta(days=365)
    expected = orders_in(org, start, end)
    assert len(expected) > 25
    found = list(alleaves(http, clean_sandbox, org).iter_orders(start, end))
    orders = [item for item in found if isinstance(item, Order)]
    assert len(orders) == len(found) == len(expected)
    assert sorted(o.order_id for o in orders) == sorted(o["id_order"] for o in expected)
    by_id = {o["id_order"]: o for o in expected}
    for got in orders:
        raw = by_id[got.order_id]
        assert got.subtotal == Decimal(str(raw["subtotal"]))
        assert got.customer_id == (raw.get("id_customer") or 0)


def test_rate_limits_are_waited_out(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    org = first_org(clean_sandbox)
    clean_sandbox.set_faults(rate_limit=3)
    assert len(customer_ids(alleaves(http, clean_sandbox, org, page_size=5))) == len(
        org["customers"]
    )
    assert clean_sandbox.stats()["alleaves"]["rate_limited"] > 0


def test_server_errors_are_retried(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    org = first_org(clean_sandbox)
    clean_sandbox.set_faults(error_rate=0.3)
    assert len(customer_ids(alleaves(http, clean_sandbox, org, page_size=5))) == len(
        org["customers"]
    )
    contacts = list(alpine(http, clean_sandbox, org).iter_contacts(limit=100))
    assert len(contacts) == len(org["alpineContacts"])
    stats = clean_sandbox.stats()
    assert stats["alleaves"]["server_errors"] + stats["alpine"]["server_errors"] > 0


def test_malformed_records_are_reported_by_id(http: httpx.Client) -> None:
    private = start_sandbox("--customers", "40", "--seed", "3", "--malformed-rate", "0.1")
    try:
        dataset = private.dataset()
        org = dataset["orgs"][0]
        client = alleaves(http, private, org, page_size=10)

        customers = list(client.iter_customers())
        bad_customers = [c for c in customers if isinstance(c, MalformedRecord)]
        positions = [i for i, c in enumerate(org["customers"]) if "id_customer" not in c]
        assert positions
        assert [b.record_id for b in bad_customers] == [
            f"page {i // 10 + 1} #{i % 10}" for i in positions
        ]
        assert len(customers) == len(org["customers"])

        end = date.fromisoformat(dataset["asOf"])
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
    finally:
        private.stop()


def test_alpine_lookup_no_account_and_a_wrong_key(
    clean_sandbox: Sandbox, http: httpx.Client
) -> None:
    org = first_org(clean_sandbox)
    client = alpine(http, clean_sandbox, org)
    contact = next(c for c in org["alpineContacts"] if c.get("phone"))
    profile = client.lookup(contact["phone"])
    assert profile is not None
    assert (profile.points, profile.contact_id) == (contact["points"], str(contact["contactID"]))
    assert client.wallet_points(contact["phone"]) == contact["points"]

    known = {normalize_phone(c.get("phone")) for c in org["alpineContacts"]}
    unknown = next(p for p in (f"555000{n:04d}" for n in range(10_000)) if p not in known)
    assert client.lookup(unknown) is None

    with pytest.raises(AuthError) as caught:
        alpine(http, clean_sandbox, org, api_key="wrong-key").lookup(contact["phone"])
    assert "wrong-key" not in str(caught.value)
    assert contact["phone"] not in str(caught.value)


def test_alpine_contacts_are_listed_completely(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    org = first_org(clean_sandbox)
    contacts = list(alpine(http, clean_sandbox, org).iter_contacts(limit=100))
    expected = org["alpineContacts"]
    assert len(expected) > 0
    assert sorted(c.contact_id for c in contacts) == sorted(str(c["contactID"]) for c in expected)
    by_id = {str(c["contactID"]): c for c in expected}
    for got in contacts:
        assert got.phone == normalize_phone(by_id[got.contact_id].get("phone"))
        assert got.profile is not None
        assert got.profile.points == by_id[got.contact_id]["points"]


def test_discord_posts_are_recorded_and_a_cut_long_alert_accepted(
    clean_sandbox: Sandbox, http: httpx.Client
) -> None:
    notifier = DiscordNotifier(
        http, webhook_url=clean_sandbox.webhook_url("42", "secret-token"), retry=RETRY
    )
    notifier.send(Alert(title="Loyalty sync", summary="all good"))
    lines = [f"customer {n}: alpine_higher by {n % 97} points" for n in range(5000)]
    sections = [("alpine_higher", lines), *((f"section {n}", lines[:50]) for n in range(30))]
    notifier.send(Alert(title="L" * 400, summary="S" * 5000, sections=sections, severity="error"))

    messages = clean_sandbox.messages()
    assert [m["webhookId"] for m in messages] == ["42", "42"]
    assert messages[0]["payload"]["embeds"][0]["description"] == "all good"
    long_fields = messages[1]["payload"]["embeds"][0]["fields"]
    assert long_fields[0]["value"].endswith("more")
    assert long_fields[-1]["value"].endswith("more sections")


def test_discord_rate_limit_is_waited_out(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    clean_sandbox.set_faults(rate_limit=1)
    notifier = DiscordNotifier(http, webhook_url=clean_sandbox.webhook_url("7", "tok"), retry=RETRY)
    for n in range(3):
        notifier.send(Alert(title=f"alert {n}", summary="s"))
    assert len(clean_sandbox.messages()) == 3
    assert clean_sandbox.stats()["discord"]["rate_limited"] > 0
