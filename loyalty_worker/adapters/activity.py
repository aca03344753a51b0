"""``ports.activity.ActivityLog`` in Firestore: ``loyalty_activity/{auto}``.

Each record is ``{orgId, by, at, action, detail, expireAt}``; an org's latest are one query on
(``orgId``, ``at`` descending), the composite index ``firestore.indexes.json`` declares beside
the export records' one; the sweep's query is on ``at`` alone (its single-field index).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from loyalty_worker.adapters.firestore import MAX_BATCH_WRITES, _translate_errors, delete_documents
from loyalty_worker.domain.retention import DEFAULT_RETENTION, expires_at
from loyalty_worker.ports.activity import ActivityRecord

ACTIVITY = "loyalty_activity"


class FirestoreActivityLog:
    """The dashboard's activity records, each kept for ``retention``."""

    def __init__(
        self,
        client: firestore.Client,
        *,
        timeout_s: float = 10.0,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._retention = retention

    def record_activity(self, record: ActivityRecord) -> None:
        stored = {**record, "expireAt": expires_at(record["at"], self._retention)}
        with _translate_errors(f"record activity of org {record['orgId']}", "write"):
            self._client.collection(ACTIVITY).document().set(stored, timeout=self._timeout_s)

    def latest_activity(
        self, org_id: str, *, limit: int, since: datetime | None = None
    ) -> list[ActivityRecord]:
        query = self._client.collection(ACTIVITY).where(filter=FieldFilter("orgId", "==", org_id))
        if since is not None:
            query = query.where(filter=FieldFilter("at", ">=", since))
        query = query.order_by("at", direction=firestore.Query.DESCENDING).limit(limit)
        with _translate_errors(f"read activity of org {org_id}"):
            return [
                cast(ActivityRecord, document)
                for snapshot in query.stream(timeout=self._timeout_s)
                if (document := snapshot.to_dict()) is not None
            ]

    def delete_activity_before(self, cutoff: datetime, *, limit: int) -> int:
        query = (
            self._client.collection(ACTIVITY)
            .where(filter=FieldFilter("at", "<", cutoff))
            .select([])
            .limit(min(limit, MAX_BATCH_WRITES))
        )
        with _translate_errors("list expired activity records"):
            references = [s.reference for s in query.stream(timeout=self._timeout_s)]
        return delete_documents(
            self._client, references, "expired activity records", timeout_s=self._timeout_s
        )
