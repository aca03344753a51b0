"""What people did for an org from the dashboard (``ports.activity``): recorded as they do it,
the latest shown to its admins on the People page."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Doer:
    """Who makes a change (``Principal.name``), when, and where it is recorded (None: a
    process built without an activity log)."""

    by: str
    at: datetime
    log: ActivityLog | None

    def record(self, org_id: str, action: str, detail: str) -> None:
        """Record one change of ``org_id``."""
        if self.log is not None:
            self.log.record_activity(
                ActivityRecord(orgId=org_id, by=self.by, at=self.at, action=action, detail=detail)
            )


def latest(log: ActivityLog | None, org_id: str, *, since: datetime) -> list[Activity]:
    """The org's latest changes, newest first, none older than the retention."""
    if log is None:
        return []
    return [
        Activity(at=r["at"], by=r["by"], action=r["action"], detail=r["detail"])
        for r in log.latest_activity(org_id, limit=SHOWN, since=since)
    ]
