"""The marketing export: loyalty fields only unless asked, streamed, safe in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loyalty_worker import cli
from loyalty_worker.api import wiring
from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.services.lookup.export import (
    LOYALTY_COLUMNS,
    PII_COLUMNS,
    ExportFormat,
    export_profiles,
)
from tests.fakes import QueryableProfileStore

SYNCED_AT = datetime(2026, 1, 30, 2, 0, tzinfo=UTC)


@pytest.fixture
def store() -> QueryableProfileStore:
    store = QueryableProfileStore()
    store.settings["org-1"] = {}
    store.profiles["org-1_1"] = {
        "orgId": "org-1",
        "alleavesCustomerId": 1,
        "firstName": "Ana",
        "lastName": "Ruiz",
        "email": "ana@example.com",
        "phone": "(555) 123-4567",
        "notes": "likes edibles",
        "points": 475,
        "pointsFromOrders": 450,
        "pointsFromAlpine": 475,
        "tier": "silver",
        "tierSource": "alpine_iq",
        "loyaltyStatus": "within_tolerance",
        "loyaltyReconciled": True,
        "loyaltyDiscrepancy": 25,
        "ordersProcessed": 6,
        "totalSpent": 450.5,
        "equityStatus": True,
        "pointsLastCalculated": SYNCED_AT,
        "alpineUserId": "C-1",
    }
    store.profiles["org-1_2"] = {
        "orgId": "org-1",
        "alleavesCustomerId": 2,
        "firstName": '=HYPERLINK("http://x")',
        "points": 0,
        "pointsFromOrders": 0,
        "tier": "bronze",
        "tierSource": "calculated",
        "loyaltyStatus": "no_alpine_account",
        "loyaltyReconciled": None,
        "loyaltyDiscrepancy": -3,
    }
    store.profiles["org-2_1"] = {"orgId": "org-2", "alleavesCustomerId": 1, "points": 9}
    return store


def export(store: QueryableProfileStore, fmt: ExportFormat, *, pii: bool = False) -> str:
    out = io.StringIO()
    count = export_profiles("org-1", out, source=store, fmt=fmt, include_pii=pii)
    assert count == 2
    return out.getvalue()


def test_csv_has_loyalty_fields_and_a_masked_phone_only(store: QueryableProfileStore) -> None:
    text = export(store, ExportFormat.CSV)
    # The header other systems read: these columns, in this order.
    assert text.splitlines()[0] == (
        "customerId,points,pointsFromOrders,pointsFromAlpine,tier,tierSource,loyaltyStatus,"
        "loyaltyReconciled,loyaltyDiscrepancy,ordersProcessed,totalSpent,equityStatus,"
        "pointsLastCalculated,alpineUserId,phoneMasked"
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == LOYALTY_COLUMNS
    assert rows[0]["customerId"] == "1"
    assert rows[0]["points"] == "475"
    assert rows[0]["loyaltyReconciled"] == "true"
    assert rows[0]["equityStatus"] == "true"
    assert rows[0]["pointsLastCalculated"] == "2026-01-30T02:00:00+00:00"
    assert rows[0]["phoneMasked"] == "***-***-4567"
    assert rows[1]["pointsFromAlpine"] == "" and rows[1]["loyaltyReconciled"] == ""
    assert rows[1]["loyaltyDiscrepancy"] == "-3"  # a number, not a formula: left as it is
    for secret in ("Ana", "Ruiz", "ana@example.com", "123-4567", "5551234567", "edibles"):
        assert secret not in text


def test_ndjson_with_pii_carries_what_the_profile_has(store: QueryableProfileStore) -> None:
    lines = export(store, ExportFormat.NDJSON, pii=True).splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["firstName"] == "Ana" and first["email"] == "ana@example.com"
    assert first["phone"] == "(555) 123-4567"
    assert first["pointsLastCalculated"] == "2026-01-30T02:00:00+00:00"
    assert "notes" not in first  # not a loyalty field, not an identity field
    assert "email" not in second and "pointsFromAlpine" not in second  # absent: left out
    assert set(first) <= set(LOYALTY_COLUMNS + PII_COLUMNS)


def test_ndjson_without_pii_has_no_names(store: QueryableProfileStore) -> None:
    first = json.loads(export(store, ExportFormat.NDJSON).splitlines()[0])
    assert not set(first) & set(PII_COLUMNS)
    assert first["phoneMasked"] == "***-***-4567"


def test_csv_cells_a_spreadsheet_would_run_are_defused(store: QueryableProfileStore) -> None:
    rows = list(csv.DictReader(io.StringIO(export(store, ExportFormat.CSV, pii=True))))
    assert rows[1]["firstName"] == '\'=HYPERLINK("http://x")'
    assert tuple(rows[0]) == LOYALTY_COLUMNS + PII_COLUMNS
    assert PII_COLUMNS == (
        "firstName",
        "lastName",
        "fullName",
        "displayName",
        "name",
        "email",
        "phone",
        "phoneNumber",
        "mobilePhone",
    )


def test_rows_are_written_as_they_are_read() -> None:
    out = io.StringIO()

    class Source:
        def iter_org_profiles(self, org_id: str) -> Iterator[ProfileDocument]:
            for customer_id in range(1, 4):
                # every earlier profile is already out before the next one is read
                assert out.getvalue().count("\n") == customer_id
                yield {"orgId": org_id, "alleavesCustomerId": customer_id, "points": customer_id}

    assert export_profiles("org-1", out, source=Source(), fmt=ExportFormat.CSV) == 3


def test_cli_export_writes_the_file_whole(
    store: QueryableProfileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wiring, "build_queries", lambda settings: store)
    target = tmp_path / "org-1.ndjson"
    code = cli.main(["export", "--org", "org-1", "--format", "ndjson", "--out", str(target)])
    assert code == 0
    assert [json.loads(line)["customerId"] for line in target.read_text().splitlines()] == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["org-1.ndjson"]


def test_cli_export_to_stdout_and_unknown_org(
    store: QueryableProfileStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(wiring, "build_queries", lambda settings: store)
    assert cli.main(["export", "--org", "org-1"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == ",".join(LOYALTY_COLUMNS)
    assert cli.main(["export", "--org", "org-9"]) == 2
    assert "unknown org" in capsys.readouterr().err
