"""The dataset as a file: written as compact JSON, read back and checked before it is served."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from loyalty_worker.sandbox.data.records import Dataset


class DatasetError(ValueError):
    """A dataset file that is not a dataset: says which file and which part is wrong."""


def dump_dataset(dataset: Dataset) -> str:
    """The dataset as compact JSON text (what ``loyalty-worker dataset`` writes)."""
    return json.dumps(dataset, separators=(",", ":"))


def load_dataset(path: str | Path) -> Dataset:
    """Read and check a dataset file; ``DatasetError`` names the file and the first problem."""
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"dataset {source}: cannot read JSON: {exc}") from None
    return validate_dataset(data, source=str(source))


_ORG_KEYS: Mapping[str, type] = {
    "orgId": str,
    "settings": dict,
    "alleaves": dict,
    "alpine": dict,
    "customers": list,
    "orders": list,
    "alpineContacts": list,
    "profiles": list,
}
_CREDENTIAL_KEYS = {"alleaves": ("username", "password", "pin"), "alpine": ("uid", "apiKey")}


def validate_dataset(data: object, *, source: str = "<dataset>") -> Dataset:
    """``data`` as a dataset, once the structure the sandbox is built on is checked (not every
    record: dirty records are the point)."""

    def fail(where: str, problem: str) -> DatasetError:
        return DatasetError(f"dataset {source}: {where} {problem}")

    if not isinstance(data, dict) or not isinstance(data.get("orgs"), list):
        raise fail("top level", 'must be an object with an "orgs" list')
    if not data["orgs"]:
        raise fail("orgs", "is empty")
    seen: set[str] = set()
    for position, org in enumerate(data["orgs"]):
        where = f"orgs[{position}]"
        if not isinstance(org, dict):
            raise fail(where, "must be an object")
        for key, kind in _ORG_KEYS.items():
            if not isinstance(org.get(key), kind):
                raise fail(f"{where}.{key}", f"must be a {kind.__name__}")
        for block, keys in _CREDENTIAL_KEYS.items():
            for key in keys:
                if not isinstance(org[block].get(key), str) or not org[block][key]:
                    raise fail(f"{where}.{block}.{key}", "must be a non-empty string")
        if org["orgId"] in seen:
            raise fail(f"{where}.orgId", f"{org['orgId']!r} is not unique")
        seen.add(org["orgId"])
        for records in ("orders", "alpineContacts"):
            for number, record in enumerate(org[records]):
                if not isinstance(record, dict):
                    raise fail(f"{where}.{records}[{number}]", "must be an object")
        for number, order in enumerate(org["orders"]):
            if not isinstance(order.get("id_order"), int) or not isinstance(
                order.get("date_created"), str
            ):
                raise fail(
                    f"{where}.orders[{number}]", "needs an integer id_order and a date_created"
                )
    return cast("Dataset", data)
