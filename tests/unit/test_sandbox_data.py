"""The sandbox's dataset generator: deterministic, well formed, and as dirty as promised."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from loyalty_worker.cli import main
from loyalty_worker.domain.models import AlpineProfile, Order, ReconciliationStatus
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.domain.points import calculate_points
from loyalty_worker.domain.reconciliation import reconcile
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.sandbox.data import (
    DatasetError,
    dump_dataset,
    generate_dataset,
    generate_sized_dataset,
    load_dataset,
)
from loyalty_worker.sandbox.data.orders import IN_STORE_EMAIL
from loyalty_worker.sandbox.data.records import OrgRecord

AS_OF = date(2025, 6, 1)
ALLEAVES_STATUSES = {
    "pending",
    "submitted",
    "confirmed",
    "preparing",
    "processing",
    "ready",
    "completed",
    "delivered",
    "cancelled",
    "voided",
}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ORDER_FIELDS = {
    "id_order",
    "order_number",
    "name_first",
    "name_last",
    "email",
    "phone",
    "date_created",
    "date_updated",
    "status",
    "subtotal",
    "tax",
    "total",
    "payment_method",
    "items",
    "loyalty",
    "points_earned",
    "loyalties",
}
CUSTOMER_FIELDS = {
    "id_customer",
    "name_first",
    "name_last",
    "full_name",
    "email",
    "phone",
    "date_of_birth",
    "date_created",
    "loyalty_points",
    "alpine_user_code",
}


@pytest.fixture(scope="module")
def org1() -> OrgRecord:
    """A mid-sized org-1: large enough for shares to mean something."""
    return generate_dataset(400, 3, as_of=AS_OF)["orgs"][0]


def _amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _calculated_points(org: OrgRecord) -> dict[int, int]:
    """Points the rules give each customer from the dataset's own orders."""
    rules = OrgSettings.parse(org["orgId"], org["settings"]).rules()
    equity = {p["customerId"] for p in org["profiles"] if p.get("equityStatus") is True}
    orders: dict[int, list[Order]] = {}
    for raw in org["orders"]:
        if raw.get("id_customer"):
            orders.setdefault(raw["id_customer"], []).append(
                Order(
                    raw["id_order"],
                    raw["id_customer"],
                    raw["status"],
                    _amount(raw["subtotal"]),
                    _amount(raw.get("discount")),
                    _amount(raw.get("refunded_amount")),
                )
            )
    return {
        customer["id_customer"]: calculate_points(
            orders.get(customer["id_customer"], ()),
            rules,
            equity=customer["id_customer"] in equity,
        ).points_from_orders
        for customer in org["customers"]
    }


def test_same_arguments_give_byte_identical_json() -> None:
    first = dump_dataset(generate_dataset(80, 42, orgs=3, malformed_rate=0.05, as_of=AS_OF))
    again = dump_dataset(generate_dataset(80, 42, orgs=3, malformed_rate=0.05, as_of=AS_OF))
    assert first == again
    assert first != dump_dataset(generate_dataset(80, 43, orgs=3, malformed_rate=0.05, as_of=AS_OF))


def test_orgs_sizes_and_distinct_settings() -> None:
    dataset = generate_dataset(50, 1, orgs=4, as_of=AS_OF)
    orgs = dataset["orgs"]
    assert dataset["asOf"] == "2025-06-01"
    assert [org["orgId"] for org in orgs] == ["org-1", "org-2", "org-3", "org-4"]
    assert [len(org["customers"]) for org in orgs] == [50, 5, 5, 5]
    for org in orgs:
        OrgSettings.parse(org["orgId"], org["settings"])  # every org's settings are valid

    first, second = orgs[0]["settings"], orgs[1]["settings"]
    assert first["pointsPerDollar"] == 1
    assert first["equityMultiplier"] == 1.5
    assert [t["id"] for t in first["tiers"]] == ["bronze", "silver", "gold", "platinum"]
    assert first["sourceOfTruth"] == "alpine_iq"
    assert first["autoAdjust"] is False
    assert first["timezone"] == "America/Los_Angeles"
    assert second["pointsPerDollar"] == 2
    assert second["equityMultiplier"] == 2
    thresholds = [t["threshold"] for t in second["tiers"]]
    assert thresholds != sorted(thresholds)
    assert min(thresholds) > 0
    assert {t["id"] for t in second["tiers"]}.isdisjoint({"bronze", "silver", "gold", "platinum"})
    assert second["sourceOfTruth"] == "orders"
    assert second["autoAdjust"] is True
    assert second["timezone"] == "America/Denver"


def test_sized_dataset_gives_each_org_its_own_size() -> None:
    dataset = generate_sized_dataset([30, 4, 12, 1], 2, as_of=AS_OF)
    orgs = dataset["orgs"]
    assert [org["orgId"] for org in orgs] == ["org-1", "org-2", "org-3", "org-4"]
    assert [len(org["customers"]) for org in orgs] == [30, 4, 12, 1]
    assert [len(org["profiles"]) for org in orgs] == [30, 4, 12, 1]
    for org in orgs:
        OrgSettings.parse(org["orgId"], org["settings"])


def test_default_sizes_are_the_sized_dataset_of_a_tenth_in_the_others() -> None:
    """``generate_dataset`` is unchanged: the sized dataset of its sizes, byte for byte."""
    default = generate_dataset(80, 42, orgs=3, malformed_rate=0.05, as_of=AS_OF)
    sized = generate_sized_dataset([80, 8, 8], 42, malformed_rate=0.05, as_of=AS_OF)
    assert dump_dataset(default) == dump_dataset(sized)
    assert [len(o["customers"]) for o in generate_dataset(5, 1, orgs=2, as_of=AS_OF)["orgs"]] == [
        5,
        1,
    ]


def test_an_org_is_the_same_whatever_the_sizes_of_the_others() -> None:
    small = generate_sized_dataset([20, 7, 3], 9, as_of=AS_OF)["orgs"]
    large = generate_sized_dataset([300, 7, 40], 9, as_of=AS_OF)["orgs"]
    assert small[1] == large[1]
    assert small[0] != large[0]


@pytest.mark.parametrize(
    ("sizes", "message"),
    [([], "at least one org"), ([5, 0], "size must be >= 1"), ([-1], "size must be >= 1")],
)
def test_sized_generator_rejects_impossible_sizes(sizes: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_sized_dataset(sizes, 1, as_of=AS_OF)


def test_credentials_are_distinctive_and_differ_between_orgs() -> None:
    orgs = generate_dataset(20, 5, orgs=3, as_of=AS_OF)["orgs"]
    secrets = [org["alleaves"]["password"] for org in orgs] + [
        org["alpine"]["apiKey"] for org in orgs
    ]
    assert len(set(secrets)) == len(secrets)
    assert all(len(secret) >= 24 for secret in secrets)
    for org in orgs:
        assert set(org["alleaves"]) == {"username", "password", "pin", "locationId"}
        assert set(org["alpine"]) == {"uid", "apiKey"}


def test_ids_are_unique_and_orders_reference_customers() -> None:
    dataset = generate_dataset(300, 9, orgs=3, as_of=AS_OF)
    all_customer_ids: list[int] = []
    for org in dataset["orgs"]:
        customer_ids = [c["id_customer"] for c in org["customers"]]
        assert len(set(customer_ids)) == len(customer_ids)
        all_customer_ids += customer_ids
        order_ids = [o["id_order"] for o in org["orders"]]
        assert len(set(order_ids)) == len(order_ids)
        owners = {o["id_customer"] for o in org["orders"] if o.get("id_customer")}
        assert owners <= set(customer_ids)
        assert {p["customerId"] for p in org["profiles"]} == set(customer_ids)
    assert len(set(all_customer_ids)) == len(all_customer_ids)


def test_customers_have_every_field_and_phone_kind(org1: OrgRecord) -> None:
    customers = org1["customers"]
    assert all(set(c) == CUSTOMER_FIELDS for c in customers)
    assert all(c["loyalty_points"] in (0, None) for c in customers)
    phones = [c["phone"] for c in customers]
    assert "" in phones
    assert None in phones
    assert "12345" in phones or any(p and normalize_phone(p) is None for p in phones)
    patterns = {
        "paren": r"\(\d{3}\) \d{3}-\d{4}",
        "plus_dots": r"\+1 \d{3}\.\d{3}\.\d{4}",
        "digits10": r"\d{10}",
        "digits11": r"1\d{10}",
        "e164": r"\+1\d{10}",
    }
    for name, pattern in patterns.items():
        assert any(p and re.fullmatch(pattern, p) for p in phones), name
    valid = [normalize_phone(p) for p in phones if normalize_phone(p)]
    assert len(valid) == len(set(valid))
    assert any(c["name_first"] == "guest" for c in customers)


def test_shares_of_equity_and_customers_without_orders(org1: OrgRecord) -> None:
    count = len(org1["customers"])
    equity = [p for p in org1["profiles"] if p.get("equityStatus") is True]
    assert 0.12 <= len(equity) / count <= 0.18
    assert any("equityStatus" not in p for p in org1["profiles"])
    assert all({"firstName", "marketingOptIn", "notes"} <= set(p) for p in org1["profiles"])
    with_orders = {o.get("id_customer") for o in org1["orders"]}
    without = [c for c in org1["customers"] if c["id_customer"] not in with_orders]
    assert 0.05 <= len(without) / count <= 0.10
    assert 4.5 <= len(org1["orders"]) / count <= 6.0


def test_orders_cover_statuses_amount_styles_and_anonymous_ones(org1: OrgRecord) -> None:
    orders = org1["orders"]
    assert all(set(o) >= ORDER_FIELDS for o in orders)
    statuses = Counter(o["status"] for o in orders)
    assert {s.lower() for s in statuses} >= ALLEAVES_STATUSES
    assert {s.lower() for s in statuses} - ALLEAVES_STATUSES  # unknown ones too
    assert any(s.isupper() for s in statuses)
    assert any(s[0].isupper() and not s.isupper() for s in statuses)
    assert any(o.get("id_customer") == 0 for o in orders)
    assert any("id_customer" not in o for o in orders)
    assert any(o["email"] == IN_STORE_EMAIL for o in orders)
    assert any(o["email"] != IN_STORE_EMAIL for o in orders)
    assert any(isinstance(o["subtotal"], float) for o in orders)
    assert any(isinstance(o["subtotal"], str) for o in orders)
    assert all(Decimal(str(o["subtotal"])) > 0 for o in orders)
    assert any("discount" not in o for o in orders)
    assert any("discount" in o and o["discount"] is None for o in orders)
    assert any(o.get("refunded_amount") for o in orders)
    assert all(o["points_earned"] is None and o["loyalties"] == [] for o in orders)
    assert all(
        set(item) == {"id_item", "item", "quantity", "price", "category"}
        for o in orders
        for item in o["items"]
    )


def test_order_dates_span_three_years_newest_first(org1: OrgRecord) -> None:
    orders = org1["orders"]
    created = [o["date_created"] for o in orders]
    assert all(TIMESTAMP.fullmatch(c) for c in created)
    assert all(TIMESTAMP.fullmatch(o["date_updated"]) for o in orders)
    assert all(o["date_updated"] >= o["date_created"] for o in orders)
    assert created == sorted(created, reverse=True)
    newest = datetime.fromisoformat(created[0]).date()
    oldest = datetime.fromisoformat(created[-1]).date()
    assert newest < AS_OF
    assert AS_OF - newest < timedelta(days=7)
    assert timedelta(days=2 * 365) < AS_OF - oldest <= timedelta(days=3 * 365 + 1)


def test_alpine_balances_cover_every_reconciliation_case(org1: OrgRecord) -> None:
    rules = OrgSettings.parse(org1["orgId"], org1["settings"]).rules()
    calculated = _calculated_points(org1)
    contacts = {c["phone"]: c for c in org1["alpineContacts"]}
    statuses: Counter[ReconciliationStatus] = Counter()
    both_zero = 0
    customer_phones = set()
    for customer in org1["customers"]:
        phone = normalize_phone(customer["phone"])
        if phone is None:
            continue
        customer_phones.add(phone)
        contact = contacts.get(phone)
        if contact is None:
            assert customer["alpine_user_code"] is None
            statuses[ReconciliationStatus.NO_ALPINE_ACCOUNT] += 1
            continue
        assert customer["alpine_user_code"] == contact["contactID"]
        points = calculated[customer["id_customer"]]
        statuses[reconcile(points, AlpineProfile(contact["points"]), rules).status] += 1
        both_zero += points == 0 and contact["points"] == 0
    assert set(statuses) == set(ReconciliationStatus)
    assert both_zero > 0
    with_phone = sum(statuses.values())
    assert 0.12 <= statuses[ReconciliationStatus.NO_ALPINE_ACCOUNT] / with_phone <= 0.18
    assert set(contacts) - customer_phones  # accounts whose phone no customer has
    tiers = {c["tier"] for c in org1["alpineContacts"]}
    assert {"bronze", "vip", None} <= tiers
    assert any(t is not None and t.isupper() for t in tiers)


def test_even_a_small_dataset_holds_every_case() -> None:
    org = generate_dataset(60, 7, as_of=AS_OF)["orgs"][0]
    assert {o["status"].lower() for o in org["orders"]} >= ALLEAVES_STATUSES
    assert {"", None} <= {c["phone"] for c in org["customers"]}
    assert any(isinstance(o["subtotal"], str) for o in org["orders"])
    assert any(p.get("equityStatus") is True for p in org["profiles"])


def test_malformed_rate_breaks_that_share_of_customers_and_orders() -> None:
    clean = generate_dataset(200, 4, as_of=AS_OF)["orgs"][0]
    broken = generate_dataset(200, 4, malformed_rate=0.1, as_of=AS_OF)["orgs"][0]
    assert all("id_customer" in c for c in clean["customers"])
    assert sum("id_customer" not in c for c in broken["customers"]) == 20
    bad = [o for o in broken["orders"] if o.get("subtotal", "n/a") == "n/a"]
    owned = [o for o in broken["orders"] if o.get("id_customer")]
    assert len(bad) == round(len(owned) * 0.1)
    assert all(o.get("id_customer") for o in bad)
    assert any("subtotal" not in o for o in bad)
    assert any(o.get("subtotal") == "n/a" for o in bad)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"customers": 0, "seed": 1}, "customers"),
        ({"customers": 5, "seed": 1, "orgs": 0}, "orgs"),
        ({"customers": 5, "seed": 1, "malformed_rate": 1.5}, "malformed_rate"),
    ],
)
def test_generator_rejects_impossible_arguments(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_dataset(**arguments)


def test_load_dataset_round_trips(tmp_path: Path) -> None:
    dataset = generate_dataset(10, 2, as_of=AS_OF)
    path = tmp_path / "dataset.json"
    path.write_text(dump_dataset(dataset))
    assert load_dataset(path) == dataset


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read JSON"),
        ('{"orgs": {}}', 'top level must be an object with an "orgs" list'),
        ('{"orgs": []}', "orgs is empty"),
    ],
)
def test_load_dataset_says_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match=re.escape(message)) as caught:
        load_dataset(path)
    assert str(path) in str(caught.value)


def test_load_dataset_names_the_missing_field(tmp_path: Path) -> None:
    dataset = json.loads(dump_dataset(generate_dataset(5, 2, as_of=AS_OF)))
    del dataset["orgs"][1]["alpine"]["apiKey"]
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(dataset))
    with pytest.raises(DatasetError, match=re.escape("orgs[1].alpine.apiKey")):
        load_dataset(path)


def test_dataset_command_writes_the_generated_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = dump_dataset(generate_dataset(15, 8, orgs=3, as_of=AS_OF)) + "\n"
    arguments = [
        "dataset",
        "--customers",
        "15",
        "--seed",
        "8",
        "--orgs",
        "3",
        "--as-of",
        "2025-06-01",
    ]
    assert main(arguments) == 0
    assert capsys.readouterr().out == expected
    out = tmp_path / "dataset.json"
    assert main([*arguments, "--out", str(out)]) == 0
    assert out.read_text() == expected


def test_dataset_command_takes_each_orgs_size(capsys: pytest.CaptureFixture[str]) -> None:
    expected = dump_dataset(generate_sized_dataset([12, 3, 3, 5], 8, as_of=AS_OF)) + "\n"
    arguments = ["dataset", "--org-sizes", "12,2x3,5", "--seed", "8", "--as-of", "2025-06-01"]
    assert main(arguments) == 0
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize(
    "arguments",
    [
        ["dataset", "--org-sizes", "12,3", "--orgs", "2", "--seed", "8"],
        ["sandbox", "--org-sizes", "12,3", "--customers", "12"],
        ["sandbox", "--org-sizes", "12,3", "--orgs", "2"],
        ["sandbox", "--org-sizes", "12,3", "--dataset", "dataset.json"],
    ],
)
def test_org_sizes_exclude_the_other_ways_to_size(
    arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(arguments) == 2
    assert "excludes" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["12,x3", "3x", "0x5", "12,0", "ten", "2x3x4", ""])
def test_org_sizes_refuse_what_is_no_size(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dataset", "--org-sizes", text, "--seed", "1"])
    assert exited.value.code == 2
    assert "--org-sizes" in capsys.readouterr().err


def test_sandbox_command_serves_each_orgs_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """``loyalty-worker sandbox --org-sizes`` serves a dataset of those sizes."""
    served: list[Starlette] = []
    monkeypatch.setattr("loyalty_worker.sandbox.server.serve", lambda app, **_: served.append(app))
    assert main(["sandbox", "--org-sizes", "9,2x4", "--seed", "3", "--port", "0"]) == 0
    orgs = asyncio.run(_get_json(served[0], "/sandbox/dataset"))["orgs"]
    assert [len(org["customers"]) for org in orgs] == [9, 4, 4]
    assert orgs[1]["alpine"] == generate_sized_dataset([1, 4], 3, as_of=AS_OF)["orgs"][1]["alpine"]


async def _get_json(app: Starlette, path: str) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        return (await client.get(path)).json()
