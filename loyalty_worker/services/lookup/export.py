"""Export an org's loyalty data for marketing (the seed's "Export loyalty data"), streamed.

One row per profile of the org, written as it is read: an org of 100,000 customers never sits in
memory. Without ``include_pii`` a row carries the loyalty fields, the customer's ids and the phone
masked to its last four digits; with it, also the names, e-mail and phone found on the profile.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TextIO

from loyalty_worker.domain.phone import mask_phone
from loyalty_worker.ports.profiles import ProfileSource

LOYALTY_COLUMNS = (
    "customerId",
    "points",
    "pointsFromOrders",
    "pointsFromAlpine",
    "tier",
    "tierSource",
    "loyaltyStatus",
    "loyaltyReconciled",
    "loyaltyDiscrepancy",
    "ordersProcessed",
    "totalSpent",
    "equityStatus",
    "pointsLastCalculated",
    "alpineUserId",
    "phoneMasked",
)
# Markitbot's own profile fields that identify a person; only ``include_pii`` exports them.
PII_COLUMNS = (
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
_PHONE_FIELDS = ("phone", "phoneNumber", "mobilePhone")
# Cells a spreadsheet would run as a formula (OWASP "CSV injection"): names come from customers.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


def export_row(profile: Mapping[str, Any], *, include_pii: bool) -> dict[str, Any]:
    """One profile's exported fields, in column order; fields the profile lacks are None."""
    row: dict[str, Any] = {name: profile.get(name) for name in LOYALTY_COLUMNS}
    row["customerId"] = profile.get("alleavesCustomerId")
    phone = next((p for name in _PHONE_FIELDS if isinstance(p := profile.get(name), str)), None)
    row["phoneMasked"] = mask_phone(phone) if phone else None
    if include_pii:
        row.update({name: profile.get(name) for name in PII_COLUMNS})
    return row


def export_profiles(
    org_id: str,
    out: TextIO,
    *,
    source: ProfileSource,
    fmt: ExportFormat,
    include_pii: bool = False,
) -> int:
    """Write every profile of the org to ``out``; returns how many rows were written."""
    columns = LOYALTY_COLUMNS + (PII_COLUMNS if include_pii else ())
    writer = None
    if fmt is ExportFormat.CSV:
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
    count = 0
    for profile in source.iter_org_profiles(org_id):
        row = export_row(profile, include_pii=include_pii)
        if writer is not None:
            writer.writerow({name: _csv_cell(value) for name, value in row.items()})
        else:
            present = {name: value for name, value in row.items() if value is not None}
            out.write(json.dumps(present, default=_json_value, separators=(",", ":")) + "\n")
        count += 1
    return count


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=_json_value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
