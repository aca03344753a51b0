"""Export an org's loyalty data for marketing (the seed's "Export loyalty data"), streamed.

One row per profile of the org, written as it is read: an org of 100,000 customers never sits in
memory. Without ``include_pii`` a row carries the loyalty fields, the customer's ids and the phone
masked to its last four digits; with it, also the names, e-mail and phone found on the profile.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TextIO, TypedDict

from loyalty_worker.domain.phone import mask_phone
from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.ports.profiles import ProfileSource


class LoyaltyColumns(TypedDict):
    """A profile's loyalty fields as exported, in column order (None: the profile has none)."""

    customerId: int | None
    points: int | None
    pointsFromOrders: int | None
    pointsFromAlpine: int | None
    tier: str | None
    tierSource: str | None
    loyaltyStatus: str | None
    loyaltyReconciled: bool | None
    loyaltyDiscrepancy: int | None
    ordersProcessed: int | None
    totalSpent: float | None
    equityStatus: bool | None
    pointsLastCalculated: datetime | str | None
    alpineUserId: str | None
    phoneMasked: str | None


class IdentityColumns(TypedDict):
    """Markitbot's own profile fields that identify a person, in column order; only
    ``include_pii`` exports them. Those ``ProfileDocument`` does not model go out as stored."""

    firstName: str | None
    lastName: str | None
    fullName: object
    displayName: object
    name: object
    email: str | None
    phone: str | None
    phoneNumber: object
    mobilePhone: object


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One profile's row: its loyalty columns, and its identity columns when asked for."""

    loyalty: LoyaltyColumns
    identity: IdentityColumns | None

    def cells(self) -> Iterator[tuple[str, object]]:
        """Each column's name and value, in column order."""
        yield from self.loyalty.items()
        if self.identity is not None:
            yield from self.identity.items()


# The columns are the rows' fields, in order: a column cannot be named without its field.
LOYALTY_COLUMNS = tuple(LoyaltyColumns.__annotations__)
PII_COLUMNS = tuple(IdentityColumns.__annotations__)
_PHONE_FIELDS = ("phone", "phoneNumber", "mobilePhone")
# Cells a spreadsheet would run as a formula (OWASP "CSV injection"): names come from customers.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


def export_row(profile: ProfileDocument, *, include_pii: bool) -> ExportRow:
    """One profile's exported fields; fields the profile lacks are None."""
    phone = next((p for name in _PHONE_FIELDS if isinstance(p := profile.get(name), str)), None)
    loyalty: LoyaltyColumns = {
        "customerId": profile.get("alleavesCustomerId"),
        "points": profile.get("points"),
        "pointsFromOrders": profile.get("pointsFromOrders"),
        "pointsFromAlpine": profile.get("pointsFromAlpine"),
        "tier": profile.get("tier"),
        "tierSource": profile.get("tierSource"),
        "loyaltyStatus": profile.get("loyaltyStatus"),
        "loyaltyReconciled": profile.get("loyaltyReconciled"),
        "loyaltyDiscrepancy": profile.get("loyaltyDiscrepancy"),
        "ordersProcessed": profile.get("ordersProcessed"),
        "totalSpent": profile.get("totalSpent"),
        "equityStatus": profile.get("equityStatus"),
        "pointsLastCalculated": profile.get("pointsLastCalculated"),
        "alpineUserId": profile.get("alpineUserId"),
        "phoneMasked": mask_phone(phone) if phone else None,
    }
    return ExportRow(loyalty, _identity(profile) if include_pii else None)


def _identity(profile: ProfileDocument) -> IdentityColumns:
    return {
        "firstName": profile.get("firstName"),
        "lastName": profile.get("lastName"),
        "fullName": profile.get("fullName"),
        "displayName": profile.get("displayName"),
        "name": profile.get("name"),
        "email": profile.get("email"),
        "phone": profile.get("phone"),
        "phoneNumber": profile.get("phoneNumber"),
        "mobilePhone": profile.get("mobilePhone"),
    }


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
        cells = export_row(profile, include_pii=include_pii).cells()
        if writer is not None:
            writer.writerow({name: _csv_cell(value) for name, value in cells})
        else:
            present = {name: value for name, value in cells if value is not None}
            out.write(json.dumps(present, default=_json_value, separators=(",", ":")) + "\n")
        count += 1
    return count


def _csv_cell(value: object) -> str:
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


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
