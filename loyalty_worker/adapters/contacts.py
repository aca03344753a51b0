"""Customers' contacts in Firestore (``ports.ContactStore``), and the export audit.

``loyalty_contacts/{orgId}_{customerId}`` (``domain.contact.ContactDocument``) and
``loyalty_exports/{auto}`` (``ports.contacts.ExportRecord``, kept for the audit's retention:
``adapters.audit_records.KeptRecords``). Writes are top-level merges
in batches of at most 500; reads are batched gets, prefix and equality queries with a limit, and
ordered queries from a keyset cursor, each served by an index of ``firestore.indexes.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from loyalty_worker.adapters.audit_records import EXPORTS, KeptRecords
from loyalty_worker.adapters.firestore import (
    CONTACTS,
    MAX_BATCH_WRITES,
    READ_CHUNK,
    _translate_errors,
)
from loyalty_worker.adapters.firestore_writes import merge_write_pb
from loyalty_worker.domain.contact import ContactDocument, contact_id
from loyalty_worker.domain.retention import DEFAULT_RETENTION
from loyalty_worker.ports.contacts import ExportRecord

# The highest code point Firestore orders: ``prefix + PREFIX_END`` ends a prefix range.
PREFIX_END = "\uf8ff"


class FirestoreContactStore:
    """``ContactStore`` over a ``google.cloud.firestore.Client``."""

    def __init__(
        self,
        client: firestore.Client,
        *,
        timeout_s: float = 10.0,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._exports = KeptRecords(
            client, EXPORTS, "export records", timeout_s=timeout_s, retention=retention
        )

    def _org(self, org_id: str) -> Any:
        contacts = self._client.collection(CONTACTS)
        return contacts.where(filter=FieldFilter("orgId", "==", org_id))

    def write_contacts(self, contacts: Sequence[ContactDocument]) -> None:
        collection = self._client.collection(CONTACTS)
        for start in range(0, len(contacts), MAX_BATCH_WRITES):
            chunk = contacts[start : start + MAX_BATCH_WRITES]
            batch = self._client.batch()
            batch._add_write_pbs(
                [
                    merge_write_pb(
                        collection.document(
                            contact_id(contact["orgId"], contact["customerId"])
                        )._document_path,
                        dict(contact),
                    )
                    for contact in chunk
                ]
            )
            with _translate_errors(f"write {len(chunk)} contacts", "write"):
                batch.commit(timeout=self._timeout_s)

    def lacking_sync(self, org_id: str, customer_ids: Sequence[int]) -> list[int]:
        collection = self._client.collection(CONTACTS)
        lacking: list[int] = []
        ids = list(dict.fromkeys(customer_ids))
        for start in range(0, len(ids), READ_CHUNK):
            chunk = ids[start : start + READ_CHUNK]
            wanted = [collection.document(contact_id(org_id, cid)) for cid in chunk]
            with _translate_errors(f"read {len(chunk)} contacts of org {org_id}", "read"):
                snapshots = self._client.get_all(
                    wanted, field_paths=["loyaltyStatus"], timeout=self._timeout_s
                )
                having = {s.id for s in snapshots if s.exists and (s.to_dict() or {})}
            lacking += [cid for cid in chunk if contact_id(org_id, cid) not in having]
        return lacking

    def delete_unlisted(self, org_id: str, run_id: str) -> int:
        query = self._org(org_id).where(filter=FieldFilter("listedRun", "!=", run_id))
        with _translate_errors(f"list unlisted contacts of org {org_id}"):
            references = [s.reference for s in query.select([]).stream(timeout=self._timeout_s)]
        for start in range(0, len(references), MAX_BATCH_WRITES):
            batch = self._client.batch()
            for reference in references[start : start + MAX_BATCH_WRITES]:
                batch.delete(reference)
            with _translate_errors(f"delete unlisted contacts of org {org_id}", "write"):
                batch.commit(timeout=self._timeout_s)
        return len(references)

    def get_contacts(self, org_id: str, customer_ids: Sequence[int]) -> dict[int, ContactDocument]:
        collection = self._client.collection(CONTACTS)
        wanted = [
            collection.document(contact_id(org_id, cid)) for cid in dict.fromkeys(customer_ids)
        ]
        found: dict[int, ContactDocument] = {}
        for start in range(0, len(wanted), READ_CHUNK):
            chunk = wanted[start : start + READ_CHUNK]
            with _translate_errors(f"read {len(chunk)} contacts of org {org_id}", "read"):
                snapshots = list(self._client.get_all(chunk, timeout=self._timeout_s))
            for snapshot in snapshots:
                document = snapshot.to_dict() if snapshot.exists else None
                if document is not None and document.get("orgId") == org_id:
                    found[int(document["customerId"])] = cast(ContactDocument, document)
        return found

    def find_by_prefix(
        self, org_id: str, field: str, prefix: str, *, limit: int
    ) -> list[ContactDocument]:
        query = (
            self._org(org_id)
            .where(filter=FieldFilter(field, ">=", prefix))
            .where(filter=FieldFilter(field, "<", prefix + PREFIX_END))
            .order_by(field)
            .limit(limit)
        )
        with _translate_errors(f"find contacts of org {org_id} by {field}"):
            return _contacts(query.stream(timeout=self._timeout_s))

    def find_equal(
        self, org_id: str, field: str, value: str, *, limit: int
    ) -> list[ContactDocument]:
        query = self._org(org_id).where(filter=FieldFilter(field, "==", value)).limit(limit)
        with _translate_errors(f"find contacts of org {org_id} by {field}"):
            return _contacts(query.stream(timeout=self._timeout_s))

    def page_contacts(
        self,
        org_id: str,
        equals: Mapping[str, str],
        order: Sequence[tuple[str, bool]],
        *,
        after: Sequence[int] | None = None,
        limit: int,
    ) -> list[ContactDocument]:
        query = self._org(org_id)
        for field, value in equals.items():
            query = query.where(filter=FieldFilter(field, "==", value))
        for field, descending in order:
            direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
            query = query.order_by(field, direction=direction)
        if after is not None:
            query = query.start_after(
                {field: value for (field, _), value in zip(order, after, strict=True)}
            )
        with _translate_errors(f"list contacts of org {org_id}"):
            return _contacts(query.limit(limit).stream(timeout=self._timeout_s))

    def count_contacts(self, org_id: str, equals: Mapping[str, str]) -> int:
        query = self._org(org_id)
        for field, value in equals.items():
            query = query.where(filter=FieldFilter(field, "==", value))
        with _translate_errors(f"count contacts of org {org_id}"):
            results = query.count(alias="n").get(timeout=self._timeout_s)
        for row in results:
            for item in row if isinstance(row, list) else [row]:
                if getattr(item, "alias", None) == "n":
                    return int(item.value)
        return 0

    def record_export(self, record: ExportRecord) -> None:
        self._exports.add(record)

    def latest_exports(
        self, org_id: str, *, limit: int, since: datetime | None = None
    ) -> list[ExportRecord]:
        return cast(list[ExportRecord], self._exports.latest(org_id, limit=limit, since=since))

    def delete_exports_before(self, cutoff: datetime, *, limit: int) -> int:
        return self._exports.delete_before(cutoff, limit=limit)


def _contacts(snapshots: Any) -> list[ContactDocument]:
    return [
        cast(ContactDocument, document)
        for snapshot in snapshots
        if (document := snapshot.to_dict()) is not None
    ]
