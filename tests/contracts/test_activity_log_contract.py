"""One set of ActivityLog checks, run over the in-memory fake and the Firestore log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from google.cloud import firestore

from loyalty_worker.adapters.audit_records import ACTIVITY, FirestoreActivityLog
from loyalty_worker.ports.activity import ActivityLog, ActivityRecord
from tests.fake_people import InMemoryActivityLog

ORG = "org-activity"
AT = datetime(2026, 3, 1, 9, 15, 30, tzinfo=UTC)
RETENTION = timedelta(days=730)


@pytest.fixture(params=["fake", pytest.param("firestore", marks=pytest.mark.integration)])
def log(request: pytest.FixtureRequest) -> ActivityLog:
    if request.param == "fake":
        return InMemoryActivityLog()
    client = cast(firestore.Client, request.getfixturevalue("firestore_client"))
    return FirestoreActivityLog(client, retention=RETENTION)


def done(action: str, days: int, org: str = ORG) -> ActivityRecord:
    return ActivityRecord(
        orgId=org,
        by="ann@example.com (u-ann)",
        at=AT - timedelta(days=days),
        action=action,
        detail=f"{days} days ago",
    )


def test_an_orgs_latest_come_newest_first_within_the_limit_and_since(log: ActivityLog) -> None:
    for days in (5, 1, 3, 900):
        log.record_activity(done("sync_now", days))
    log.record_activity(done("run.full", 0, org="org-other"))
    latest = log.latest_activity(ORG, limit=2)
    assert [r["detail"] for r in latest] == ["1 days ago", "3 days ago"]
    assert latest[0]["by"] == "ann@example.com (u-ann)" and latest[0]["action"] == "sync_now"
    kept = log.latest_activity(ORG, limit=10, since=AT - timedelta(days=30))
    assert [r["detail"] for r in kept] == ["1 days ago", "3 days ago", "5 days ago"]


def test_records_before_a_cutoff_are_deleted_a_batch_at_a_time(log: ActivityLog) -> None:
    for days in (800, 900, 1000, 2):
        log.record_activity(done("run.dry", days))
    cutoff = AT - RETENTION
    assert log.delete_activity_before(cutoff, limit=2) == 2
    assert log.delete_activity_before(cutoff, limit=2) == 1
    assert log.delete_activity_before(cutoff, limit=2) == 0
    assert [r["detail"] for r in log.latest_activity(ORG, limit=10)] == ["2 days ago"]


@pytest.mark.integration
def test_a_firestore_record_carries_its_expiry(firestore_client: firestore.Client) -> None:
    FirestoreActivityLog(firestore_client, retention=RETENTION).record_activity(
        done("people.grant", 1)
    )
    (stored,) = [s.to_dict() for s in firestore_client.collection(ACTIVITY).stream() if s.to_dict()]
    assert stored is not None and stored["expireAt"] == AT - timedelta(days=1) + RETENTION
