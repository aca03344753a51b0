"""The record of what people (and machines) did for an org from the dashboard: runs started,
Sync Now, roles granted and revoked, sessions ended."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, TypedDict


class ActivityRecord(TypedDict):
    """``loyalty_activity/{auto}``: one change someone made (who: ``Principal.name``)."""

    orgId: str
    by: str
    at: datetime
    action: str  # run.full, run.incremental, run.dry, sync_now, people.grant, ...
    detail: str  # what it acted on, in words (a run id, a customer id, a person's e-mail)


class ActivityLog(Protocol):
    """Where the dashboard records the changes people make (kept for the audit's retention)."""

    def record_activity(self, record: ActivityRecord) -> None:
        """Add one record (written with ``expireAt``: its ``at`` plus the retention)."""
        ...

    def latest_activity(
        self, org_id: str, *, limit: int, since: datetime | None = None
    ) -> list[ActivityRecord]:
        """The org's latest records, newest first, none made before ``since``."""
        ...

    def delete_activity_before(self, cutoff: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` records made before ``cutoff`` (of every org); how many."""
        ...
