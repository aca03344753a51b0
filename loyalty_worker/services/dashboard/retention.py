"""The audit's retention sweep (``loyalty.sweep_audit``, Beat, daily): deletes the reviews' audit
entries, the export records and the activity records made before the retention's cut-off
(``domain.retention``).

Each is written with ``expireAt`` for a Firestore TTL policy, which deletes it within a day or so
of that moment once the policy is set (docs/operations.md); the sweep deletes whatever the policy
has not (none set, entries written before ``expireAt`` was, a retention shortened since), and is
what keeps the emulator's and a test project's audit bounded. Deletes go a batch at a time (one
query and one batched write of at most ``SWEEP_BATCH``), at most ``MAX_SWEEP_BATCHES`` of each a
day: what is left, the next day's sweep deletes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from loyalty_worker.domain.retention import kept_since
from loyalty_worker.ports.activity import ActivityLog
from loyalty_worker.ports.contacts import ContactStore
from loyalty_worker.ports.dashboard import DashboardStore

log = logging.getLogger(__name__)

SWEEP_BATCH = 500
MAX_SWEEP_BATCHES = 100


class SweptDocument(TypedDict):
    """What a sweep did, as the task answers it."""

    cutoff: str
    auditEntries: int
    exportRecords: int
    activityRecords: int
    complete: bool


@dataclass(frozen=True, slots=True)
class Swept:
    """What a sweep deleted (made before ``cutoff``); ``complete`` False: it stopped at its
    batch limit with more left."""

    cutoff: datetime
    audit_entries: int
    export_records: int
    activity_records: int
    complete: bool

    def to_dict(self) -> SweptDocument:
        return {
            "cutoff": self.cutoff.isoformat(),
            "auditEntries": self.audit_entries,
            "exportRecords": self.export_records,
            "activityRecords": self.activity_records,
            "complete": self.complete,
        }


def _delete_batches(delete: Callable[[int], int], batch: int, max_batches: int) -> tuple[int, bool]:
    """Call ``delete`` (a batch of at most ``batch``) until a batch comes back short, at most
    ``max_batches`` times; how many were deleted, and whether none is left."""
    deleted = 0
    for _ in range(max_batches):
        done = delete(batch)
        deleted += done
        if done < batch:
            return deleted, True
    return deleted, False


def sweep_expired(
    audit: DashboardStore,
    exports: ContactStore,
    activity: ActivityLog,
    *,
    now: datetime,
    retention: timedelta,
    batch: int = SWEEP_BATCH,
    max_batches: int = MAX_SWEEP_BATCHES,
) -> Swept:
    """Delete the review audit entries (of every org) and the export records made before
    ``now`` less ``retention``, and the activity records, logging how many."""
    cutoff = kept_since(now, retention)
    stamp = cutoff.isoformat()  # audit entries keep ``at`` as an ISO 8601 string
    entries, entries_done = _delete_batches(
        lambda limit: audit.delete_audit_before(stamp, limit=limit), batch, max_batches
    )
    records, records_done = _delete_batches(
        lambda limit: exports.delete_exports_before(cutoff, limit=limit), batch, max_batches
    )
    acts, acts_done = _delete_batches(
        lambda limit: activity.delete_activity_before(cutoff, limit=limit), batch, max_batches
    )
    swept = Swept(cutoff, entries, records, acts, entries_done and records_done and acts_done)
    log.info(
        "audit retention sweep: deleted %d review audit entries, %d export records and %d "
        "activity records made before %s",
        entries,
        records,
        acts,
        stamp,
    )
    if not swept.complete:
        log.warning(
            "audit retention sweep stopped after %d batches of %d: more expired documents are "
            "left for the next sweep",
            max_batches,
            batch,
        )
    return swept
