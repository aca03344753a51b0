"""The enrollment list: customers without an Alpine IQ account, with how to reach them, to
invite them to one; and its CSV for the org's marketing tool, each export recorded.

One ordered query of ``loyalty_contacts`` a page (``orgId``, ``loyaltyStatus``, ``reach``,
the tier when filtered, then the sort: most points from orders or latest order first, the
customer id breaking ties), read from a keyset cursor; the total is an aggregation count.
Contact details are shown in full: these are the signed-in people of the org. Neither Alleaves
nor Alpine IQ records marketing consent, so ``marketingConsent`` is shown as unknown and the
CSV holds every row of the filter.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urlencode

from pydantic import Field

from loyalty_worker.domain.contact import ContactDocument, mask_email
from loyalty_worker.domain.models import ReconciliationStatus
from loyalty_worker.domain.phone import mask_phone
from loyalty_worker.ports.contacts import ContactStore, ExportRecord
from loyalty_worker.services.dashboard.cursors import PageCursor, page_links
from loyalty_worker.services.dashboard.discrepancies import PAGE_SIZE, STREAM_BATCH
from loyalty_worker.services.dashboard.page import ListPage, PageModel

NO_ACCOUNT = ReconciliationStatus.NO_ALPINE_ACCOUNT.value
Sort = Literal["points", "recent"]
Reach = Literal["usable", "placeholder", "none"]
ORDERS: dict[str, tuple[tuple[str, bool], ...]] = {
    "points": (("pointsFromOrders", True), ("customerId", False)),
    "recent": (("lastOrderDay", True), ("customerId", False)),
}
CSV_COLUMNS = (
    "customerId",
    "name",
    "phone",
    "email",
    "reachability",
    "pointsFromOrders",
    "lastOrder",
    "tier",
    "marketingConsent",
)
# Export records shown on the page.
LATEST_EXPORTS = 5


@dataclass(frozen=True, slots=True)
class EnrollmentFilter:
    """Which customers (how they can be reached, a tier), in which order, which page."""

    reach: Reach = "usable"
    tier: str | None = None
    sort: Sort = "points"
    cursor: PageCursor | None = None
    page_size: int = PAGE_SIZE

    def equals(self) -> dict[str, str]:
        found = {"loyaltyStatus": NO_ACCOUNT, "reach": self.reach}
        return {**found, "tier": self.tier} if self.tier else found

    def query(self) -> dict[str, str]:
        """The filter and sort as a page's query (no cursor)."""
        shown: dict[str, str] = {"reach": self.reach, "sort": self.sort}
        return {**shown, "tier": self.tier} if self.tier else shown

    def describe(self) -> str:
        return urlencode(self.query())


class EnrollmentRow(PageModel):
    """A customer to invite to an Alpine IQ account."""

    customer_id: int
    name: str | None
    phone: str | None = Field(description="Ten digits, in full (the org's signed-in people).")
    email: str | None
    reachability: str | None = Field(description="Of the phone: usable, placeholder, ...")
    points_from_orders: int
    last_order: str | None = Field(description="The day of the latest counted order.")
    tier: str | None
    marketing_consent: bool | None = Field(description="Null: not recorded anywhere.")


class ExportEntry(PageModel):
    by: str
    at: datetime
    rows: int
    filter: str


class EnrollmentPage(ListPage):
    """One page of the enrollment list, and the latest exports of it."""

    items: list[EnrollmentRow]
    exports: list[ExportEntry]


def masked_page(page: EnrollmentPage) -> EnrollmentPage:
    """The page as a person who may not see contact details sees it (phones and e-mails
    masked)."""
    rows = [
        row.model_copy(
            update={
                "phone": mask_phone(row.phone) if row.phone else None,
                "email": mask_email(row.email),
            }
        )
        for row in page.items
    ]
    return page.model_copy(update={"items": rows})


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _row(contact: ContactDocument) -> EnrollmentRow:
    """A contact as a row; a field of another type than the worker writes (edited by hand)
    shows as missing rather than failing the page."""
    consent = contact.get("marketingConsent")
    return EnrollmentRow(
        customer_id=_int(contact.get("customerId")),
        name=_text(contact.get("name")),
        phone=_text(contact.get("phone")),
        email=_text(contact.get("email")),
        reachability=_text(contact.get("reachability")),
        points_from_orders=_int(contact.get("pointsFromOrders")),
        last_order=_text(contact.get("lastOrderAt")),
        tier=_text(contact.get("tier")),
        marketing_consent=consent if isinstance(consent, bool) else None,
    )


def _key(contact: ContactDocument, sort: str) -> tuple[int, ...]:
    field = ORDERS[sort][0][0]
    return (_int(contact.get(field)), _int(contact.get("customerId")))


def enrollment(
    org_id: str,
    contacts: ContactStore,
    flt: EnrollmentFilter,
    *,
    reads: Executor,
    exports_since: datetime | None = None,
) -> EnrollmentPage:
    """One page of the list (its total counted beside it on ``reads``), and the latest
    exports (made at or after ``exports_since``, the audit's retention, when given)."""
    equals = flt.equals()
    total = reads.submit(contacts.count_contacts, org_id, equals)
    exports = reads.submit(
        contacts.latest_exports, org_id, limit=LATEST_EXPORTS, since=exports_since
    )
    after = flt.cursor.after if flt.cursor is not None else None
    found = contacts.page_contacts(
        org_id, equals, ORDERS[flt.sort], after=after, limit=flt.page_size + 1
    )
    more = len(found) > flt.page_size
    found = found[: flt.page_size]
    links = page_links(flt.cursor, flt.sort, _key(found[-1], flt.sort) if more else None)
    counted = total.result()
    return EnrollmentPage(
        org_id=org_id,
        total=counted,
        page=links.page,
        next=links.next,
        prev=links.prev,
        page_size=flt.page_size,
        pages=max((counted + flt.page_size - 1) // flt.page_size, 1),
        items=[_row(c) for c in found],
        exports=[ExportEntry.model_validate(dict(e)) for e in exports.result()],
    )


def enrollment_rows(
    org_id: str, contacts: ContactStore, flt: EnrollmentFilter
) -> Iterator[EnrollmentRow]:
    """Every row of the filter, in its order (the CSV), read a batch at a time."""
    after: tuple[int, ...] | None = None
    while True:
        found = contacts.page_contacts(
            org_id, flt.equals(), ORDERS[flt.sort], after=after, limit=STREAM_BATCH
        )
        yield from (_row(c) for c in found)
        if len(found) < STREAM_BATCH:
            return
        after = _key(found[-1], flt.sort)


def audited(
    rows: Iterator[EnrollmentRow],
    contacts: ContactStore,
    *,
    org_id: str,
    by: str,
    at: datetime,
    flt: EnrollmentFilter,
) -> Iterator[EnrollmentRow]:
    """``rows``, and once they have been sent (all, or as many as the download took), a
    record of the export: who, when, how many rows, which filter."""
    count = 0
    try:
        for row in rows:
            count += 1
            yield row
    finally:
        record: ExportRecord = {
            "orgId": org_id,
            "by": by,
            "at": at,
            "rows": count,
            "filter": flt.describe(),
        }
        contacts.record_export(record)
