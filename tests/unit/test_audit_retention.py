"""The dashboard's audit kept for its retention, and read a page at a time: the cut-off of the
pages (review audit and export records), the sweep that deletes what is older (over fakes; the
Firestore deletes are checked against the emulator in tests/contracts, and here only the store's
answer when Firestore lacks the audit group's index), the setting, the beat entry that runs the
sweep daily, and undo and its banner reading only a review's newest entries."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import MagicMock

import pytest
from celery.schedules import crontab
from google.api_core import exceptions as api_exceptions
from pydantic import ValidationError

from loyalty_worker import names, tasks
from loyalty_worker.adapters.dashboard_store import FirestoreDashboardStore
from loyalty_worker.celery_app import app as celery_app
from loyalty_worker.config import Settings
from loyalty_worker.domain.retention import DEFAULT_RETENTION_DAYS, kept_since, stamp_expires_at
from loyalty_worker.domain.review import AuditEntry, Review, ReviewChange, ReviewState, entry_id
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.activity import ActivityRecord
from loyalty_worker.ports.contacts import ExportRecord
from loyalty_worker.services.dashboard.audit import AuditCursor, AuditRequest, audit_page
from loyalty_worker.services.dashboard.customers import history
from loyalty_worker.services.dashboard.enrollment import EnrollmentFilter, enrollment
from loyalty_worker.services.dashboard.retention import sweep_expired
from loyalty_worker.services.dashboard.review_changes import banner, undo_reviews
from tests.fake_people import InMemoryActivityLog
from tests.fakes import InMemoryContactStore, InMemoryDashboardStore, QueryableProfileStore

NOW = datetime(2027, 3, 14, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=730)
ORG = "org-1"


def _store(*customers: int) -> InMemoryDashboardStore:
    base = QueryableProfileStore()
    for cid in customers:
        base.profiles[f"{ORG}_{cid}"] = {
            "orgId": ORG,
            "alleavesCustomerId": cid,
            "loyaltyStatus": "alpine_higher",
            "loyaltyDiscrepancy": 150,
            "tier": "gold",
        }
    return InMemoryDashboardStore(base)


def _write(store: InMemoryDashboardStore, cid: int, number: int, at: datetime) -> None:
    """The review's ``number``-th change (acknowledged), made at ``at``."""
    review = Review(
        ReviewState.ACKNOWLEDGED, discrepancy=150, loyalty_status="alpine_higher", changes=number
    )
    entry = AuditEntry(at.isoformat(), "Ana", "open", "acknowledged", id=entry_id(number))
    store.write_review(ORG, cid, ReviewChange(review, entry))


def _export(at: datetime, rows: int, org: str = ORG) -> ExportRecord:
    return {"orgId": org, "by": "Ana", "at": at, "rows": rows, "filter": "reach=usable"}


# --- The cut-off ------------------------------------------------------------------------------


def test_expiry_is_the_moment_made_plus_the_retention() -> None:
    assert kept_since(NOW, RETENTION) == NOW - timedelta(days=730)
    assert stamp_expires_at("2027-03-14T12:00:00+00:00", timedelta(days=1)) == NOW + timedelta(
        days=1
    )
    assert stamp_expires_at("2027-03-14T12:00:00", timedelta(0)) == NOW  # naive: UTC
    assert stamp_expires_at("yesterday", RETENTION) is None


def test_the_history_shows_no_audit_entry_made_before_the_retention() -> None:
    store = _store(7)
    _write(store, 7, 1, NOW - RETENTION - timedelta(seconds=1))
    _write(store, 7, 2, NOW - RETENTION)
    _write(store, 7, 3, NOW - timedelta(days=1))
    org = OrgSettings(org_id=ORG)
    shown = history(org, 7, store, now=NOW, retention=RETENTION)
    assert [a.id for a in shown.audit] == ["000003", "000002"]
    assert shown.next is None and shown.prev is None
    shorter = history(org, 7, store, now=NOW, retention=timedelta(days=2))
    assert [a.id for a in shorter.audit] == ["000003"]


def test_a_page_of_the_audit_stops_at_the_retention_too() -> None:
    store = _store(7)
    for number in range(1, 6):
        _write(store, 7, number, NOW - timedelta(days=10 - number))  # 9 .. 5 days ago
    asked = AuditRequest(page_size=2)
    first = audit_page(store, ORG, 7, asked, now=NOW, retention=timedelta(days=7))
    assert [e.id for e in first.entries] == ["000005", "000004"] and first.next is not None
    second = audit_page(
        store,
        ORG,
        7,
        AuditRequest(AuditCursor.decode(first.next), 2),
        now=NOW,
        retention=timedelta(days=7),
    )
    assert [e.id for e in second.entries] == ["000003"]  # 000002 is 8 days old
    assert second.next is None and second.prev is not None


def test_the_enrollment_page_shows_no_export_older_than_the_retention() -> None:
    contacts = InMemoryContactStore()
    for days, rows in ((731, 1), (729, 2), (1, 3)):
        contacts.record_export(_export(NOW - timedelta(days=days), rows))
    with ThreadPoolExecutor(2) as reads:
        page = enrollment(
            ORG,
            contacts,
            EnrollmentFilter(),
            reads=reads,
            exports_since=kept_since(NOW, RETENTION),
        )
    assert [e.rows for e in page.exports] == [3, 2]


# --- The sweep --------------------------------------------------------------------------------


def test_the_sweep_deletes_only_what_is_older_than_the_retention() -> None:
    store = _store(1, 2)
    for cid in (1, 2):
        _write(store, cid, 1, NOW - timedelta(days=900))
        _write(store, cid, 2, NOW - RETENTION - timedelta(minutes=1))
        _write(store, cid, 3, NOW - RETENTION + timedelta(minutes=1))
    contacts = InMemoryContactStore()
    activity = InMemoryActivityLog()
    for days, rows in ((1000, 1), (731, 2), (729, 3), (0, 4)):
        contacts.record_export(_export(NOW - timedelta(days=days), rows, org=f"org-{rows}"))
        activity.record_activity(
            ActivityRecord(
                orgId=ORG,
                by="a",
                at=NOW - timedelta(days=days),
                action="sync_now",
                detail=str(rows),
            )
        )

    swept = sweep_expired(store, contacts, activity, now=NOW, retention=RETENTION)

    assert (swept.audit_entries, swept.export_records, swept.complete) == (4, 2, True)
    assert swept.to_dict() == {
        "cutoff": "2025-03-14T12:00:00+00:00",
        "auditEntries": 4,
        "exportRecords": 2,
        "activityRecords": 2,
        "complete": True,
    }
    for cid in (1, 2):
        assert [e.id for e in store.audit[(ORG, cid)]] == ["000003"]
    assert sorted(r["rows"] for r in contacts.exports) == [3, 4]
    assert sorted(r["detail"] for r in activity.records) == ["3", "4"]
    again = sweep_expired(store, contacts, activity, now=NOW, retention=RETENTION)
    assert (again.audit_entries, again.export_records, again.activity_records) == (0, 0, 0)


def test_the_sweep_goes_a_batch_at_a_time_and_stops_at_its_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _store(1)
    for number in range(1, 8):
        _write(store, 1, number, NOW - timedelta(days=1000 - number))
    contacts = InMemoryContactStore()
    caplog.set_level("INFO")

    limited = sweep_expired(
        store, contacts, InMemoryActivityLog(), now=NOW, retention=RETENTION, batch=2, max_batches=3
    )

    assert (limited.audit_entries, limited.complete) == (6, False)
    assert "more expired documents are left" in caplog.text
    rest = sweep_expired(
        store, contacts, InMemoryActivityLog(), now=NOW, retention=RETENTION, batch=2, max_batches=3
    )
    assert (rest.audit_entries, rest.complete) == (1, True)
    assert (
        "deleted 1 review audit entries, 0 export records and 0 activity records made before "
        "2025-03-14" in caplog.text
    )


# --- The setting, the task and its beat entry --------------------------------------------------


def test_the_retention_is_a_setting_of_two_years_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOYALTY_AUDIT_RETENTION_DAYS", raising=False)
    assert Settings().audit_retention == timedelta(days=DEFAULT_RETENTION_DAYS) == RETENTION
    monkeypatch.setenv("LOYALTY_AUDIT_RETENTION_DAYS", "90")
    assert Settings().audit_retention == timedelta(days=90)
    monkeypatch.setenv("LOYALTY_AUDIT_RETENTION_DAYS", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_beat_sweeps_the_audit_daily_on_the_runs_queue() -> None:
    schedule = celery_app.conf.beat_schedule  # celeryconfig's
    (entry,) = [e for e in schedule.values() if e["task"] == names.SWEEP_AUDIT]
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"] == crontab(hour=13, minute=15)  # once a day
    assert names.TASK_ROUTES[names.SWEEP_AUDIT] == {"queue": names.RUNS_QUEUE}


class _Container:
    def __init__(self, store: InMemoryDashboardStore, contacts: InMemoryContactStore) -> None:
        self.settings = Settings(audit_retention_days=30)
        self.dashboard_store = store
        self.contact_store = contacts
        self.activity_log = InMemoryActivityLog()


def test_the_sweep_task_sweeps_with_the_settings_retention(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _store(1)
    now = datetime.now(UTC)
    _write(store, 1, 1, now - timedelta(days=31))
    _write(store, 1, 2, now - timedelta(days=29))
    contacts = InMemoryContactStore()
    contacts.record_export(_export(now - timedelta(days=40), 1))
    monkeypatch.setattr(tasks, "container", lambda: _Container(store, contacts))

    answer: dict[str, Any] = tasks.sweep_audit.apply().get()

    assert (answer["auditEntries"], answer["exportRecords"], answer["complete"]) == (1, 1, True)
    assert [e.id for e in store.audit[(ORG, 1)]] == ["000002"]


# --- Undo and its banner read the newest entries only -------------------------------------------


def test_undo_and_its_banner_read_only_the_reviews_newest_entries() -> None:
    store = _store(1)
    for number in range(1, 300):
        _write(store, 1, number, NOW - timedelta(seconds=600 - number))
    newest = entry_id(299)
    shown = banner(ORG, [(1, newest)], store, now=NOW)
    assert shown is not None and shown.undoable
    older = banner(ORG, [(1, entry_id(5))], store, now=NOW)
    assert older is not None and not older.undoable
    assert older.refused is not None and "only the latest change" in older.refused
    undone = undo_reviews(ORG, [(1, newest)], by="Bo", store=store, now=NOW)
    assert undone.items[0].state == "acknowledged"  # as entry 298 left it
    assert store.audit[(ORG, 1)][-1].undoes == newest
    assert max(store.audit_limits) <= 2


def test_without_the_audit_groups_index_the_sweep_leaves_the_audit_to_the_ttl(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Firestore refuses a collection-group query whose index is not deployed: the sweep says
    so and deletes nothing, rather than failing the day's sweep of the exports too."""
    client = MagicMock()
    query = client.collection_group.return_value.where.return_value.select.return_value
    refused = api_exceptions.FailedPrecondition("no index")  # type: ignore[no-untyped-call]
    query.limit.return_value.stream.side_effect = refused
    store = FirestoreDashboardStore(client)

    assert store.delete_audit_before("2025-03-14T12:00:00+00:00", limit=500) == 0
    assert "lacks its index on at" in caplog.text
    client.batch.assert_not_called()
