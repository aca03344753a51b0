"""Records kept for the audit's retention, in Firestore: the contact exports
(``loyalty_exports``) and the people's other changes (``loyalty_activity``,
``ports.activity.ActivityLog``).

Each record is ``{orgId, at, ..., expireAt}`` (``expireAt``: its ``at`` plus the retention, for
the collection's TTL policy). An org's latest are one query on (``orgId``, ``at`` descending),
a composite index of ``firestore.indexes.json``; the sweep's is on ``at`` alone (its single-field
index), keys only, deleted in one batched write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from loyalty_worker.adapters.firestore import MAX_BATCH_WRITES, _translate_errors, delete_documents
from loyalty_worker.domain.retention import DEFAULT_RETENTION, expires_at
from loyalty_worker.ports.activity import ActivityRecord

ACTIVITY = "loyalty_activity"
EXPORTS = "loyalty_exports"


class KeptRecords:
    """One collection of records kept for ``retention``; ``what`` names them in errors."""

    def __init__(
        self,
        client: firestore.Client,
        collection: str,
        what: str,
        *,
        timeout_s: float = 10.0,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._client = client
        self._collection = collection
        self._what = what
        self._timeout_s = timeout_s
        self._retention = retention

    def add(self, record: Mapping[str, Any]) -> None:
        """Store one record, with its ``expireAt``."""
        stored = {**record, "expireAt": expires_at(record["at"], self._retention)}
        with _translate_errors(f"record {self._what} of org {record['orgId']}", "write"):
            self._client.collection(self._collection).document().set(
                stored, timeout=self._timeout_s
            )

    def latest(self, org_id: str, *, limit: int, since: datetime | None) -> list[dict[str, Any]]:
        """The org's latest records, newest first, none made before ``since``."""
        query = self._client.collection(self._collection).where(
            filter=FieldFilter("orgId", "==", org_id)
        )
        if since is not None:  # the same field as the order: the same (orgId, at) index
            query = query.where(filter=FieldFilter("at", ">=", since))
        query = query.order_by("at", direction=firestore.Query.DESCENDING).limit(limit)
        with _translate_errors(f"read {self._what} of org {org_id}"):
            return [
                document
                for snapshot in query.stream(timeout=self._timeout_s)
                if (document := snapshot.to_dict()) is not None
            ]

    def delete_before(self, cutoff: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` (at most a batch) records made before ``cutoff``; how many."""
        query = (
            self._client.collection(self._collection)
            .where(filter=FieldFilter("at", "<", cutoff))
            .select([])
            .limit(min(limit, MAX_BATCH_WRITES))
        )
        with _translate_errors(f"list expired {self._what}"):
            references = [s.reference for s in query.stream(timeout=self._timeout_s)]
        return delete_documents(
            self._client, references, f"expired {self._what}", timeout_s=self._timeout_s
        )


class FirestoreActivityLog:
    """``ports.activity.ActivityLog``: the dashboard's activity records."""

    def __init__(
        self,
        client: firestore.Client,
        *,
        timeout_s: float = 10.0,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._records = KeptRecords(
            client, ACTIVITY, "activity records", timeout_s=timeout_s, retention=retention
        )

    def record_activity(self, record: ActivityRecord) -> None:
        self._records.add(record)

    def latest_activity(
        self, org_id: str, *, limit: int, since: datetime | None = None
    ) -> list[ActivityRecord]:
        return cast(list[ActivityRecord], self._records.latest(org_id, limit=limit, since=since))

    def delete_activity_before(self, cutoff: datetime, *, limit: int) -> int:
        return self._records.delete_before(cutoff, limit=limit)
