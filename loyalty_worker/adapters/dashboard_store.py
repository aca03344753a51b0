"""The dashboard's Firestore reads, and the review state it keeps (``ports.DashboardStore``).

Documents it adds beside Markitbot's profiles (never inside them):

- ``loyalty_reviews/{orgId}_{customerId}``: a discrepancy's review state (``state``,
  ``outcome``, ``comment``, ``discrepancy``, ``loyaltyStatus`` and ``tier`` it was reviewed at,
  who and when; ``domain.review.Review``), with the subcollection ``audit/{entry}``: one
  document per change (who, when, from, to, the entry an undo reverts;
  ``domain.review.AuditEntry``), its id the change's number (``changes`` on the review), and
  ``expireAt`` (``at`` plus the retention) for the TTL policy of the ``audit`` collection group.
  The audit is read a page at a time (newest first, from a keyset cursor: ``at``, then the id,
  served by ``at``'s single-field index), never whole; the retention's sweep deletes old entries
  of every review with one collection-group query (``at`` below the cut-off), whose index is a
  field override of ``firestore.indexes.json``.
- reads ``customers/{orgId}_{id}/loyalty_history`` (written by ``FirestoreProfileStore``).

Documents leave here typed (``ProfileDocument``, ``HistoryEntry``, ``RunSummaryDocument``, the
review's dataclasses; read by ``dashboard_documents``): a top-level field holding another type
than its declared one (a person edited it by hand) is left out, so the services never meet a
string where a count belongs.

Counts and sums are aggregation queries (Firestore counts server-side); short lists are
equality queries with a limit; the long ones (discrepancies, no Alpine IQ account) are ordered
queries read a page at a time from a keyset cursor (``start_after``), each served by a composite
index of ``firestore.indexes.json``. Where one is not deployed, Firestore refuses the ordered
query: the store logs a warning once and reads the first ``FALLBACK_SCAN`` profiles of the
equality query instead, ordered here (enough for a small org). Runs likewise, with their own
index and fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import cmp_to_key
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from loyalty_worker.adapters.dashboard_documents import (
    Document,
    audit_document,
    audit_fields,
    audit_of,
    history_of,
    is_int,
    profile_of,
    review_document,
    review_fields,
    review_of,
    run_of,
)
from loyalty_worker.adapters.firestore import (
    HISTORY,
    MAX_BATCH_WRITES,
    PROFILES,
    RUN_SUMMARIES,
    FirestoreProfileStore,
    _translate_errors,
    delete_documents,
)
from loyalty_worker.domain.profile import HistoryEntry, ProfileDocument, profile_id
from loyalty_worker.domain.retention import DEFAULT_RETENTION, stamp_expires_at
from loyalty_worker.domain.review import (
    AuditEntry,
    Review,
    ReviewChange,
    ReviewRefused,
    ReviewState,
)
from loyalty_worker.domain.run import RunSummaryDocument
from loyalty_worker.ports.dashboard import AuditKey, KeyValue

log = logging.getLogger(__name__)

REVIEWS = "loyalty_reviews"
AUDIT = "audit"
# An org's runs read to find its latest ones (sorted here, newest first).
RUN_SCAN_LIMIT = 500
# Profiles read by equality alone, then ordered here, when an ordered query lacks its index.
FALLBACK_SCAN = 5000
# Profiles per batched read (``get_all``), values per "in" filter (Firestore's limit).
READ_CHUNK = 300
IN_LIMIT = 30


class FirestoreDashboardStore:
    """``DashboardStore`` over a ``google.cloud.firestore.Client``."""

    def __init__(
        self,
        client: firestore.Client,
        *,
        timeout_s: float = 5.0,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._retention = retention  # an audit entry's expireAt: its ``at`` plus this
        self._ordered_runs = True  # False once Firestore says the index is missing
        self._unindexed: set[tuple[tuple[str, ...], tuple[tuple[str, bool], ...]]] = set()

    def list_org_ids(self) -> list[str]:
        return FirestoreProfileStore(self._client, timeout_s=self._timeout_s).list_org_ids()

    def _org_profiles(self, org_id: str, equals: Mapping[str, str] | None = None) -> Any:
        query = self._client.collection(PROFILES).where(filter=FieldFilter("orgId", "==", org_id))
        for field, value in (equals or {}).items():
            query = query.where(filter=FieldFilter(field, "==", value))
        return query

    def count_profiles(self, org_id: str, equals: Mapping[str, str] | None = None) -> int:
        query = self._org_profiles(org_id, equals)
        with _translate_errors(f"count profiles of org {org_id}"):
            results = query.count(alias="n").get(timeout=self._timeout_s)
        return int(_aggregate(results, "n"))

    def sum_profiles(self, org_id: str, field: str) -> int:
        query = self._org_profiles(org_id)
        with _translate_errors(f"sum {field} of org {org_id}"):
            results = query.sum(field, alias="s").get(timeout=self._timeout_s)
        return int(_aggregate(results, "s") or 0)

    def list_profiles(
        self, org_id: str, field: str, values: Sequence[str], *, limit: int
    ) -> list[ProfileDocument]:
        found: list[ProfileDocument] = []
        for value in values:  # one equality query per value: no IN/ordering index needed
            query = self._org_profiles(org_id, {field: value})
            with _translate_errors(f"list profiles of org {org_id}"):
                found += _profiles(query.limit(limit - len(found)).stream(timeout=self._timeout_s))
            if len(found) >= limit:
                break
        return found

    def page_profiles(
        self,
        org_id: str,
        equals: Mapping[str, str],
        order: Sequence[tuple[str, bool]],
        *,
        after: Sequence[KeyValue] | None = None,
        limit: int,
        fields: Sequence[str] | None = None,
    ) -> list[ProfileDocument]:
        query = self._org_profiles(org_id, equals)
        if fields is not None:  # the order fields too: the fallback orders by them
            query = query.select(sorted({*fields, *(field for field, _ in order)}))
        shape = (tuple(sorted(equals)), tuple(order))
        if shape not in self._unindexed:
            ordered = query
            for field, descending in order:
                direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
                ordered = ordered.order_by(field, direction=direction)
            if after is not None:
                ordered = ordered.start_after(
                    {field: value for (field, _), value in zip(order, after, strict=True)}
                )
            with _translate_errors(f"list profiles of org {org_id}"):
                try:
                    return _profiles(ordered.limit(limit).stream(timeout=self._timeout_s))
                except api_exceptions.FailedPrecondition:
                    self._unindexed.add(shape)
                    log.warning(
                        "customers lacks the composite index (orgId, %s, %s): see "
                        "firestore.indexes.json; ordering the first %d profiles here",
                        ", ".join(sorted(equals)),
                        ", ".join(f"{f} {'desc' if d else 'asc'}" for f, d in order),
                        FALLBACK_SCAN,
                    )
        with _translate_errors(f"list profiles of org {org_id}"):
            found = _profiles(query.limit(FALLBACK_SCAN).stream(timeout=self._timeout_s))
        return order_page(found, order, after=after, limit=limit)

    def read_profiles(
        self, org_id: str, customer_ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, ProfileDocument]:
        profiles = self._client.collection(PROFILES)
        found: dict[int, ProfileDocument] = {}
        for start in range(0, len(customer_ids), READ_CHUNK):
            chunk = customer_ids[start : start + READ_CHUNK]
            references = [profiles.document(profile_id(org_id, cid)) for cid in chunk]
            with _translate_errors(f"read profiles of org {org_id}"):
                snapshots = list(
                    self._client.get_all(
                        references,
                        field_paths=None if fields is None else [*fields, "orgId"],
                        timeout=self._timeout_s,
                    )
                )
            for snapshot in snapshots:
                document = snapshot.to_dict() if snapshot.exists else None
                if document is not None and document.get("orgId") == org_id:
                    found[int(snapshot.id.rsplit("_", 1)[1])] = profile_of(document)
        return found

    def get_profile(self, org_id: str, customer_id: int) -> ProfileDocument | None:
        reference = self._client.collection(PROFILES).document(profile_id(org_id, customer_id))
        with _translate_errors(f"read profile {org_id}/{customer_id}"):
            snapshot = reference.get(timeout=self._timeout_s)
        document = snapshot.to_dict() if snapshot.exists else None
        if document is None or document.get("orgId") != org_id:
            return None
        return profile_of(document)

    def list_org_runs(self, org_id: str, *, limit: int) -> list[RunSummaryDocument]:
        return self.list_org_runs_since(org_id, None, limit=limit)

    def list_org_runs_since(
        self, org_id: str, since: float | None, *, limit: int, fields: Sequence[str] | None = None
    ) -> list[RunSummaryDocument]:
        """Newest first by ``startedAt`` (from ``since`` on, when given): served by the
        composite index (``orgId`` ascending, ``startedAt`` descending) where it is deployed;
        without it Firestore refuses the ordered query, and the org's runs are read by equality
        alone and sorted and cut here (the first ``RUN_SCAN_LIMIT`` by document id, enough for
        an org's first year or so)."""
        runs = self._client.collection(RUN_SUMMARIES).where(
            filter=FieldFilter("orgId", "==", org_id)
        )
        if fields is not None:  # the start too: the fallback orders and cuts by it
            runs = runs.select(sorted({*fields, "startedAt"}))
        if self._ordered_runs:
            ordered = runs.order_by("startedAt", direction=firestore.Query.DESCENDING)
            if since is not None:
                ordered = ordered.where(filter=FieldFilter("startedAt", ">=", since))
            with _translate_errors(f"list runs of org {org_id}"):
                try:
                    return _runs(ordered.limit(limit).stream(timeout=self._timeout_s))
                except api_exceptions.FailedPrecondition:
                    self._ordered_runs = False
                    log.warning("loyalty_sync_runs lacks the (orgId, startedAt desc) index")
        with _translate_errors(f"list runs of org {org_id}"):
            found = _runs(runs.limit(RUN_SCAN_LIMIT).stream(timeout=self._timeout_s))
        found.sort(key=lambda run: run.get("startedAt") or 0.0, reverse=True)
        return [r for r in found if since is None or (r.get("startedAt") or 0.0) >= since][:limit]

    def list_history(self, org_id: str, customer_id: int, *, limit: int) -> list[HistoryEntry]:
        profile = self._client.collection(PROFILES).document(profile_id(org_id, customer_id))
        query = (
            profile.collection(HISTORY)
            .order_by("at", direction=firestore.Query.DESCENDING)
            .limit(limit)
        )
        with _translate_errors(f"read history of {org_id}/{customer_id}"):
            return [
                history_of(document)
                for snapshot in query.stream(timeout=self._timeout_s)
                if (document := snapshot.to_dict()) is not None
            ]

    def get_reviews(
        self,
        org_id: str,
        *,
        state: ReviewState | None = None,
        customer_ids: Sequence[int] | None = None,
    ) -> dict[int, Review]:
        query = self._client.collection(REVIEWS).where(filter=FieldFilter("orgId", "==", org_id))
        if state is not None:
            query = query.where(filter=FieldFilter("state", "==", state.value))
        queries = [query]
        if customer_ids is not None:  # "in" takes up to 30 values
            ids = list(customer_ids)
            queries = [
                query.where(filter=FieldFilter("customerId", "in", ids[start : start + IN_LIMIT]))
                for start in range(0, len(ids), IN_LIMIT)
            ]
        found: dict[int, Review] = {}
        with _translate_errors(f"read reviews of org {org_id}"):
            for each in queries:
                for snapshot in each.stream(timeout=self._timeout_s):
                    document = snapshot.to_dict()
                    if document is not None and is_int(document.get("customerId")):
                        found[document["customerId"]] = review_of(review_fields(document))
        return found

    def count_reviews(
        self, org_id: str, *, state: ReviewState, loyalty_status: str, tier: str | None = None
    ) -> int:
        query: Any = self._client.collection(REVIEWS)
        query = query.where(filter=FieldFilter("orgId", "==", org_id))
        equals = {"state": state.value, "loyaltyStatus": loyalty_status}
        for field, value in ({**equals, "tier": tier} if tier is not None else equals).items():
            query = query.where(filter=FieldFilter(field, "==", value))
        with _translate_errors(f"count reviews of org {org_id}"):
            results = query.count(alias="n").get(timeout=self._timeout_s)
        return int(_aggregate(results, "n"))

    def get_review(self, org_id: str, customer_id: int) -> Review | None:
        reference = self._client.collection(REVIEWS).document(profile_id(org_id, customer_id))
        with _translate_errors(f"read review of {org_id}/{customer_id}"):
            snapshot = reference.get(timeout=self._timeout_s)
        document = snapshot.to_dict() if snapshot.exists else None
        if document is None or document.get("orgId") != org_id:
            return None
        return review_of(review_fields(document))

    def write_review(self, org_id: str, customer_id: int, change: ReviewChange) -> None:
        reference = self._client.collection(REVIEWS).document(profile_id(org_id, customer_id))
        stored = {**review_document(change.review), "orgId": org_id, "customerId": customer_id}
        batch = self._client.batch()
        batch.set(reference, stored, merge=True)
        entry = change.audit
        expire_at = stamp_expires_at(entry.at, self._retention)
        # created, never overwritten: two changes numbered alike fail together, nothing written
        audit = reference.collection(AUDIT).document(entry.id)
        batch.create(audit, dict(audit_document(entry, expire_at)))
        with _translate_errors(f"write review of {org_id}/{customer_id}", "write"):
            try:
                batch.commit(timeout=self._timeout_s)
            except api_exceptions.AlreadyExists:
                raise ReviewRefused("the review changed meanwhile: reload and try again") from None

    def _audit(self, org_id: str, customer_id: int) -> Any:
        review = self._client.collection(REVIEWS).document(profile_id(org_id, customer_id))
        return review.collection(AUDIT)

    def list_audit(
        self,
        org_id: str,
        customer_id: int,
        *,
        limit: int,
        before: AuditKey | None = None,
        after: AuditKey | None = None,
        since: str | None = None,
    ) -> list[AuditEntry]:
        """One ordered query (``at``, then the document id; ascending from ``after``) with
        ``limit``, served by ``at``'s single-field index."""
        audit = self._audit(org_id, customer_id)
        query = audit
        if since is not None:
            query = query.where(filter=FieldFilter("at", ">=", since))
        newer = after is not None
        direction = firestore.Query.ASCENDING if newer else firestore.Query.DESCENDING
        query = query.order_by("at", direction=direction).order_by("__name__", direction=direction)
        key = after if newer else before
        if key is not None:
            query = query.start_after({"at": key[0], "__name__": audit.document(key[1])})
        with _translate_errors(f"read audit of {org_id}/{customer_id}"):
            entries = [
                audit_of(audit_fields(snapshot.to_dict() or {}), snapshot.id)
                for snapshot in query.limit(limit).stream(timeout=self._timeout_s)
            ]
        return entries[::-1] if newer else entries

    def get_audit(self, org_id: str, customer_id: int, entry_id: str) -> AuditEntry | None:
        reference = self._audit(org_id, customer_id).document(entry_id)
        with _translate_errors(f"read audit entry of {org_id}/{customer_id}"):
            snapshot = reference.get(timeout=self._timeout_s)
        document = snapshot.to_dict() if snapshot.exists else None
        return None if document is None else audit_of(audit_fields(document), snapshot.id)

    def delete_audit_before(self, cutoff: str, *, limit: int) -> int:
        """One collection-group query of ``audit`` (``at`` below ``cutoff``, keys only) and one
        batched delete. Without the group's index on ``at`` (``firestore.indexes.json``)
        Firestore refuses the query: logged, and nothing deleted (the TTL policy still is)."""
        query = (
            self._client.collection_group(AUDIT)
            .where(filter=FieldFilter("at", "<", cutoff))
            .select([])
            .limit(min(limit, MAX_BATCH_WRITES))
        )
        with _translate_errors("list expired review audit entries"):
            try:
                references = [s.reference for s in query.stream(timeout=self._timeout_s)]
            except api_exceptions.FailedPrecondition:
                log.warning(
                    "the audit collection group lacks its index on at (firestore.indexes.json):"
                    " expired review audit entries are left to the TTL policy"
                )
                return 0
        # a collection group spans the database: only the reviews' own audit goes
        ours = [r for r in references if _review_audit(r)]
        if len(ours) < len(references):
            log.warning("left %d audit documents outside %s", len(references) - len(ours), REVIEWS)
        what = "expired review audit entries"
        return delete_documents(self._client, ours, what, timeout_s=self._timeout_s)


def _review_audit(reference: Any) -> bool:
    """Whether a document is an entry of ``loyalty_reviews/{id}/audit``."""
    review = reference.parent.parent
    return review is not None and review.parent.id == REVIEWS and review.parent.parent is None


# --- Documents as the services see them --------------------------------------------------------


def _profiles(snapshots: Any) -> list[ProfileDocument]:
    return [
        profile_of(document)
        for snapshot in snapshots
        if (document := snapshot.to_dict()) is not None
    ]


def _runs(snapshots: Any) -> list[RunSummaryDocument]:
    """Run summaries, each with its document id as ``runId``."""
    return [run_of({**(snapshot.to_dict() or {}), "runId": snapshot.id}) for snapshot in snapshots]


# --- Ordering where an index is missing ---------------------------------------------------------


def _rank(value: object) -> tuple[int, KeyValue]:
    """A value as Firestore orders it: by type first (null, booleans, numbers, timestamps,
    strings, then the rest by type only)."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, datetime):
        return (3, value.timestamp())
    if isinstance(value, str):
        return (4, value)
    return (5, 0)


def order_page(
    documents: Sequence[Document],
    order: Sequence[tuple[str, bool]],
    *,
    after: Sequence[KeyValue] | None,
    limit: int,
) -> list[Document]:
    """What an ordered query with ``start_after(after)`` and ``limit`` answers, worked out
    from the unordered documents: those lacking an order field left out."""

    def compare(left: Sequence[tuple[int, Any]], right: Sequence[tuple[int, Any]]) -> int:
        for (_, descending), a, b in zip(order, left, right, strict=True):
            if a != b:
                return (-1 if a < b else 1) * (-1 if descending else 1)
        return 0

    rows: list[tuple[list[tuple[int, KeyValue]], Document]] = [
        ([_rank(document[field]) for field, _ in order], document)
        for document in documents
        if all(field in document for field, _ in order)
    ]

    def compare_rows(
        x: tuple[list[tuple[int, KeyValue]], Document],
        y: tuple[list[tuple[int, KeyValue]], Document],
    ) -> int:
        return compare(x[0], y[0])

    rows.sort(key=cmp_to_key(compare_rows))
    if after is not None:
        start = [_rank(value) for value in after]
        rows = [row for row in rows if compare(row[0], start) > 0]
    return [document for _, document in rows[:limit]]


def _aggregate(results: Any, alias: str) -> Any:
    """The value named ``alias`` in an aggregation query's answer (a list of result lists)."""
    for row in results:
        for item in row if isinstance(row, list) else [row]:
            if getattr(item, "alias", None) == alias:
                return item.value
    return 0
