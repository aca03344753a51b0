"""What Alleaves and Alpine IQ send, as they send it, and how each record becomes a domain value.

The models are lenient where the providers are loose (unknown fields, nulls, numbers as strings)
and strict where the loyalty rules need a fact: an order without a numeric ``subtotal`` is not
guessed at but reported, by id, as a ``MalformedRecord``.

Numbers are held to sane bounds (``domain.bounds``): ids and balances within what Firestore and
a JavaScript reader keep exactly, amounts within one order's plausible size, discounts and
refunds never negative (a negative one would inflate the spend), and numeric text in ASCII
digits only (``Decimal`` and ``int`` also read Arabic-Indic or full-width digits).
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from loyalty_worker.domain.bounds import MAX_AMOUNT, MAX_ID, MAX_POINTS
from loyalty_worker.domain.contact import clean_email, full_name
from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.phone import mask_phones_in, normalize_phone
from loyalty_worker.errors import MalformedRecord
from loyalty_worker.ports.sources import AlpineContact

_ZERO = Decimal(0)


def _day(timestamp: str | None) -> date | None:
    """The calendar day of an ISO timestamp (``2024-05-01T10:00:00.000Z``); None if unreadable."""
    try:
        return date.fromisoformat(timestamp[:10]) if timestamp else None
    except ValueError:
        return None


def _utc_stamp(timestamp: str | None) -> str | None:
    """An ISO timestamp as UTC text to the second (``2024-05-01T10:00:00Z``); a stamp without
    a zone is UTC, as Alleaves writes them; None if unreadable."""
    if not timestamp:
        return None
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if timestamp[10:11] == "T" and timestamp[19:20] in (".", "Z") and timestamp.endswith("Z"):
        return timestamp[:19] + "Z"  # Alleaves' own shape: already UTC to the second, cut
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# Numeric text as JSON writes numbers, in ASCII: ``Decimal("١٢")`` and ``int("１２")`` read
# non-ASCII digits, and ``"²".isdigit()`` is true though ``int("²")`` fails.
_NUMERIC_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def _ascii_number(value: object) -> object:
    """A number given as text must be plain ASCII numeric text; a bool is no number."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, str) and not _NUMERIC_TEXT.fullmatch(value.strip()):
        raise ValueError("not a number in ASCII digits")
    return value


_Number = BeforeValidator(_ascii_number)
RecordId = Annotated[int, _Number, Field(ge=1, le=MAX_ID)]
OwnerId = Annotated[int, _Number, Field(ge=0, le=MAX_ID)]
Amount = Annotated[Decimal, _Number, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, allow_inf_nan=False)]
Deduction = Annotated[Decimal, _Number, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)]
Points = Annotated[int, _Number, Field(ge=0, le=MAX_POINTS)]


class _Wire(BaseModel):
    """Tolerant by default: providers add fields, and send ids or codes as numbers or strings."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, frozen=True)


class AlleavesCustomer(_Wire):
    """A row of ``POST /customer/search``."""

    id_customer: RecordId
    phone: str | None = None
    alpine_user_code: str | None = None
    date_created: str | None = None
    name_first: str | None = None
    name_last: str | None = None
    email: str | None = None

    def to_customer(self) -> Customer:
        """Blank strings mean "absent" at Alleaves; the domain wants None for them. A walk-in
        ("guest") has no name, Alleaves' placeholder e-mail is no e-mail."""
        name = full_name(self.name_first, self.name_last)
        return Customer(
            customer_id=self.id_customer,
            phone=_blank_to_none(self.phone),
            alpine_user_code=_blank_to_none(self.alpine_user_code),
            created_on=_day(self.date_created),
            name=name,
            last_name=_blank_to_none(self.name_last) if name else None,
            email=clean_email(self.email),
        )


class AlleavesOrder(_Wire):
    """A row of ``GET /order``; amounts as ``Decimal`` (numbers or numeric strings, not floats).

    Its other fields but its day (items, names, e-mail, totals) are read past, not kept: a run
    parses every order of the org's history, and keeping them cost a sixth of that time."""

    model_config = ConfigDict(extra="ignore")

    id_order: RecordId
    id_customer: OwnerId | None = None
    status: str
    subtotal: Amount
    # Never negative: "minus a negative discount" would add to the spend.
    discount: Deduction | None = None
    refunded_amount: Deduction | None = None
    date_created: str | None = None

    def to_order(self) -> Order:
        """Anonymous orders (``id_customer`` 0, null or missing) keep customer 0: nobody's."""
        return Order(
            order_id=self.id_order,
            customer_id=self.id_customer or 0,
            status=sys.intern(self.status),
            subtotal=self.subtotal,
            discount=_shared_zero(self.discount),
            refunded_amount=_shared_zero(self.refunded_amount),
            created_at=_utc_stamp(self.date_created),
        )


def _shared_zero(amount: Decimal | None) -> Decimal:
    """Absent or zero as one shared ``Decimal``: a run holds every order of an org at once, and
    most discounts and refunds are zero (equal values, so the rules' results are unchanged)."""
    return _ZERO if amount is None or amount == 0 else amount


class AlpineLoyalty(_Wire):
    """The ``data`` of ``GET /v2/loyalty/lookup/{phone10}``."""

    contact_id: str | None = Field(default=None, alias="contactID")
    loyalty: bool = True
    points: Points  # a negative balance is a malformed record, not a gap of its own
    tier: str | None = None
    last_visit: str | None = Field(default=None, alias="lastVisit")

    def to_profile(self) -> AlpineProfile | None:
        """A contact not enrolled in loyalty (``loyalty: false``) has no account to compare with."""
        if not self.loyalty:
            return None
        return AlpineProfile(
            points=self.points,
            tier=_blank_to_none(self.tier),
            last_visit=self.last_visit,
            contact_id=self.contact_id,
        )


class AlpineWallet(_Wire):
    """The ``data`` of ``POST /v2/wallet``."""

    loyalty_points: Points | None = Field(default=None, alias="loyaltyPoints")


class AlpineContactRow(_Wire):
    """A row of ``GET /v1.1/piis/{uid}``; our sandbox also puts the balance on it."""

    contact_id: str = Field(alias="contactID")
    mobile_phone: str | None = Field(default=None, alias="mobilePhone")
    phone: str | None = None
    points: Points | None = None
    tier: str | None = None
    last_visit: str | None = Field(default=None, alias="lastVisit")

    def to_contact(self) -> AlpineContact:
        """Phone normalised for matching; a profile only when the row carries a balance."""
        profile = None
        if self.points is not None:
            profile = AlpineProfile(
                points=self.points,
                tier=_blank_to_none(self.tier),
                last_visit=self.last_visit,
                contact_id=self.contact_id,
            )
        return AlpineContact(
            contact_id=self.contact_id,
            phone=normalize_phone(self.mobile_phone) or normalize_phone(self.phone),
            profile=profile,
        )


class AlpineContactsPage(_Wire):
    """The ``data`` of one contacts page; ``total`` may be absent, then a short page ends it."""

    results: list[Any] = Field(default_factory=list)
    size: int | None = None
    total: int | None = None


def parse_customer(raw: object, *, page: int, position: int) -> Customer | MalformedRecord:
    """A customer row, or a MalformedRecord named by its id (by page and position without one)."""
    try:
        return AlleavesCustomer.model_validate(raw).to_customer()
    except ValidationError as exc:
        record_id = _readable_int(raw, "id_customer")
        return MalformedRecord(
            "alleaves",
            "customer",
            str(record_id) if record_id is not None else f"page {page} #{position}",
            describe_problem(exc),
        )


def parse_order(raw: object, *, page: int, position: int) -> Order | MalformedRecord:
    """An order row, or a MalformedRecord naming ``id_order`` and, when readable, its customer."""
    try:
        return AlleavesOrder.model_validate(raw).to_order()
    except ValidationError as exc:
        order_id = _readable_int(raw, "id_order")
        return MalformedRecord(
            "alleaves",
            "order",
            str(order_id) if order_id is not None else f"page {page} #{position}",
            describe_problem(exc),
            customer_id=_readable_int(raw, "id_customer"),
        )


def describe_problem(exc: ValidationError) -> str:
    """Which fields failed and why, without the values: they may hold phones or e-mails."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "record"
        problems.append(f"{where}: {error['msg']}")
    return mask_phones_in("; ".join(problems))


def _readable_int(raw: object, key: str) -> int | None:
    """An id read loosely (int or numeric string) for naming a record that failed validation."""
    if not isinstance(raw, dict):
        return None
    value = raw.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    return None


def _blank_to_none(value: str | None) -> str | None:
    """Providers send "" for unknown; treat it like null."""
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None
