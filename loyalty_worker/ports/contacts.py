"""Customers' contact details (``domain.contact``) and the record of their exports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NotRequired, Protocol, TypedDict

from loyalty_worker.domain.contact import ContactDocument


class ExportRecord(TypedDict):
    """``loyalty_exports/{auto}``: one export of contact details (who, when, how many rows);
    ``expireAt`` (``at`` plus the audit's retention, for a TTL policy) is added as it is
    written."""

    orgId: str
    by: str
    at: datetime
    rows: int
    filter: str
    expireAt: NotRequired[datetime]


class ContactWriter(Protocol):
    """What a run writes: the listed customers' contacts, and the end of those it no longer
    lists."""

    def write_contacts(self, contacts: Sequence[ContactDocument]) -> None:
        """Merge each contact's fields into ``loyalty_contacts/{orgId}_{customerId}``
        (batched); fields it does not name stay."""
        ...

    def lacking_sync(self, org_id: str, customer_ids: Sequence[int]) -> list[int]:
        """Those of ``customer_ids`` whose contact holds no sync's fields yet (no
        ``loyaltyStatus``; batched reads of that field alone)."""
        ...

    def delete_unlisted(self, org_id: str, run_id: str) -> int:
        """Delete the org's contacts that ``run_id`` did not list (``listedRun`` another
        run's); how many. Only after a complete listing of every customer."""
        ...


class ContactStore(ContactWriter, Protocol):
    """Contacts as the dashboard reads them, and its export audit."""

    def get_contacts(self, org_id: str, customer_ids: Sequence[int]) -> dict[int, ContactDocument]:
        """The contacts of ``customer_ids`` that exist, by customer id (batched reads)."""
        ...

    def find_by_prefix(
        self, org_id: str, field: str, prefix: str, *, limit: int
    ) -> list[ContactDocument]:
        """Up to ``limit`` of the org's contacts whose ``field`` starts with ``prefix``, by
        that field."""
        ...

    def find_equal(
        self, org_id: str, field: str, value: str, *, limit: int
    ) -> list[ContactDocument]:
        """Up to ``limit`` of the org's contacts whose ``field`` equals ``value``."""
        ...

    def page_contacts(
        self,
        org_id: str,
        equals: Mapping[str, str],
        order: Sequence[tuple[str, bool]],
        *,
        after: Sequence[int] | None = None,
        limit: int,
    ) -> list[ContactDocument]:
        """Up to ``limit`` of the org's contacts whose fields equal ``equals``, ordered by
        ``order`` (each ``(field, descending)``, the last ``customerId``), after the contact
        whose order fields hold ``after``; a contact missing an order field is left out."""
        ...

    def count_contacts(self, org_id: str, equals: Mapping[str, str]) -> int:
        """How many of the org's contacts have every field of ``equals`` equal to its value."""
        ...

    def record_export(self, record: ExportRecord) -> None:
        """Keep one export's record, with its ``expireAt`` (``at`` plus the retention)."""
        ...

    def latest_exports(
        self, org_id: str, *, limit: int, since: datetime | None = None
    ) -> list[ExportRecord]:
        """The org's latest export records, newest first; only those made at or after
        ``since`` when given."""
        ...

    def delete_exports_before(self, cutoff: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` (at most 500: one batched write) of the export records of
        every org made before ``cutoff``; how many were deleted."""
        ...
