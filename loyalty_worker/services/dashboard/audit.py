"""A review's audit as the customer's history shows it: a page at a time, newest first, and never
an entry older than the audit's retention.

A page is one ordered read with a limit (``DashboardStore.list_audit``), started from a keyset
cursor: the ``at`` and id of the last entry shown, toward older entries (``next``), or of the
first, toward newer ones (``prev``). One entry more than the page is read, to know whether there
is another page that way. Only the page holding the review's newest entry may offer Undo (on
that entry, while ``domain.review.undoable`` allows).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from loyalty_worker.domain.retention import DEFAULT_RETENTION, kept_since
from loyalty_worker.domain.review import AuditEntry
from loyalty_worker.ports.dashboard import AuditKey, DashboardStore

# Entries a page of the audit shows, unless asked otherwise; the most a page may ask for.
AUDIT_PAGE_SIZE = 20
MAX_AUDIT_PAGE_SIZE = 100
_KIND = "audit"
_ENTRY_ID = re.compile(r"^[A-Za-z0-9]{1,40}$")
_MAX_STAMP = 64


@dataclass(frozen=True, slots=True)
class AuditCursor:
    """Where a page of the audit starts: after the entry keyed ``key`` (its ``at`` and id),
    toward older entries, or toward newer ones (``newer``)."""

    key: AuditKey
    newer: bool = False

    def encode(self) -> str:
        way = "newer" if self.newer else "older"
        body = json.dumps([_KIND, way, *self.key], separators=(",", ":"))
        return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> AuditCursor:
        """The cursor of ``token``; ValueError for a token that is not an audit cursor."""
        try:
            padded = token + "=" * (-len(token) % 4)
            found = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        except (ValueError, UnicodeError, RecursionError) as exc:
            raise ValueError("not an audit cursor") from exc
        if not (isinstance(found, list) and len(found) == 4 and found[0] == _KIND):
            raise ValueError("not an audit cursor")
        way, at, entry = found[1:]
        if way not in ("older", "newer") or not isinstance(at, str) or len(at) > _MAX_STAMP:
            raise ValueError("not an audit cursor")
        if not (isinstance(entry, str) and _ENTRY_ID.match(entry)):
            raise ValueError("not an audit cursor")
        return cls((at, entry), newer=way == "newer")


@dataclass(frozen=True, slots=True)
class AuditRequest:
    """Which page of the audit: its cursor (None: the newest entries) and its size."""

    cursor: AuditCursor | None = None
    page_size: int = AUDIT_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of the audit, newest first; whether it holds the review's newest entry (its
    first: the only one Undo may be offered on); and the cursors of the pages either side
    (None: none that way)."""

    entries: list[AuditEntry]
    newest: bool
    next: str | None
    prev: str | None


def _key(entry: AuditEntry) -> AuditKey:
    return (entry.at, entry.id)


def _read(
    store: DashboardStore, org_id: str, customer_id: int, asked: AuditRequest, since: str
) -> tuple[list[AuditEntry], bool, bool]:
    """The page's entries, newest first; whether there are older ones, and newer ones."""
    cursor, size = asked.cursor, asked.page_size
    if cursor is not None and cursor.newer:
        found = store.list_audit(org_id, customer_id, limit=size + 1, after=cursor.key, since=since)
        return found[-size:], True, len(found) > size
    before = cursor.key if cursor is not None else None
    found = store.list_audit(org_id, customer_id, limit=size + 1, before=before, since=since)
    return found[:size], len(found) > size, cursor is not None


def audit_page(
    store: DashboardStore,
    org_id: str,
    customer_id: int,
    asked: AuditRequest,
    *,
    now: datetime,
    retention: timedelta = DEFAULT_RETENTION,
) -> AuditPage:
    """One page of the review's audit: entries made within ``retention`` of ``now``, newest
    first."""
    since = kept_since(now, retention).isoformat()
    entries, older, newer = _read(store, org_id, customer_id, asked, since)
    return AuditPage(
        entries=entries,
        newest=not newer,
        next=AuditCursor(_key(entries[-1])).encode() if older and entries else None,
        prev=AuditCursor(_key(entries[0]), newer=True).encode() if newer and entries else None,
    )
