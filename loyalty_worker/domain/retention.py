"""How long the dashboard's audit is kept: the reviews' audit entries and the records of contact
exports (``LOYALTY_AUDIT_RETENTION_DAYS``, two years unless set).

Each is written with ``expireAt`` (when it was made, plus the retention), for a Firestore TTL
policy to delete it; the pages never show one made before the retention's cut-off (``kept_since``),
and a daily sweep deletes those the TTL has not (``services.dashboard.retention``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DEFAULT_RETENTION_DAYS = 730
DEFAULT_RETENTION = timedelta(days=DEFAULT_RETENTION_DAYS)


def kept_since(now: datetime, retention: timedelta) -> datetime:
    """The oldest moment still kept at ``now``: anything made before it has expired."""
    return now - retention


def expires_at(made: datetime, retention: timedelta) -> datetime:
    """When something made at ``made`` expires (a naive time is read as UTC)."""
    if made.tzinfo is None:
        made = made.replace(tzinfo=UTC)
    return made + retention


def stamp_expires_at(stamp: str, retention: timedelta) -> datetime | None:
    """When something made at the ISO 8601 ``stamp`` expires; None for a stamp that is not
    one."""
    try:
        return expires_at(datetime.fromisoformat(stamp), retention)
    except ValueError:
        return None
