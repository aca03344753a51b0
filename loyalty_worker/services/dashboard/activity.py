"""What people did for an org from the dashboard (``ports.activity``): recorded as they do it,
the latest shown to its admins on the People page."""

from __future__ import annotations

from datetime import datetime

from loyalty_worker.ports.activity import ActivityLog, ActivityRecord
from loyalty_worker.services.dashboard.page import PageModel

SHOWN = 20


class Activity(PageModel):
    """One change someone made."""

    at: datetime
    by: str
    action: str
    detail: str


def record(
    log: ActivityLog | None, org_id: str, *, by: str, action: str, detail: str, at: datetime
) -> None:
    """Record one change (nothing without an activity log: a process built without one)."""
    if log is not None:
        log.record_activity(
            ActivityRecord(orgId=org_id, by=by, at=at, action=action, detail=detail)
        )


def latest(log: ActivityLog | None, org_id: str, *, since: datetime) -> list[Activity]:
    """The org's latest changes, newest first, none older than the retention."""
    if log is None:
        return []
    return [
        Activity(at=r["at"], by=r["by"], action=r["action"], detail=r["detail"])
        for r in log.latest_activity(org_id, limit=SHOWN, since=since)
    ]
