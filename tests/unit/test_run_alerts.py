"""A run's one alert links to its page and the org's discrepancy queue; a dry run posts none,
its summary keeps the preview of what it would change instead (largest change first, no
phone)."""

from __future__ import annotations

import time
from decimal import Decimal

import fakeredis

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.domain.models import (
    Action,
    DisplayedLoyalty,
    LoyaltyOutcome,
    PointsCalculation,
    Reconciliation,
    ReconciliationStatus,
    TierSource,
)
from loyalty_worker.domain.results import SyncResult, SyncStatus, utc_stamp
from loyalty_worker.domain.run import (
    DRY_RUN_LABEL,
    RunStatus,
    RunSummaryDocument,
    discrepancies_path,
    run_kind,
    run_page_path,
)
from loyalty_worker.services.run.closing import record_results, summarize_batch
from loyalty_worker.services.run.summary import MAX_LISTED, SummaryBuilder
from tests.fakes import InMemoryProfileStore, RecordingNotifier

PHONE = "5551234567"


def result(
    customer_id: int, *, before: int | None, after: int, tier_before: str | None, tier: str
) -> SyncResult:
    return SyncResult(
        "org-1",
        customer_id,
        SyncStatus.SYNCED if (before, tier_before) != (after, tier) else SyncStatus.UNCHANGED,
        utc_stamp(),
        outcome=LoyaltyOutcome(
            calculation=PointsCalculation(after, 0, after, 1, Decimal(after)),
            alpine=None,
            reconciliation=Reconciliation(
                ReconciliationStatus.NO_ALPINE_ACCOUNT, None, None, Action.NONE
            ),
            displayed=DisplayedLoyalty(after, tier, TierSource.CALCULATED),
        ),
        phone=PHONE,
        previous_tier=tier_before,
        previous_points=before,
    )


RESULTS = [
    result(1, before=100, after=100, tier_before="bronze", tier="bronze"),  # no change
    result(2, before=100, after=130, tier_before="bronze", tier="bronze"),  # +30
    result(3, before=900, after=1400, tier_before="silver", tier="gold"),  # +500, tier
    result(4, before=300, after=300, tier_before="bronze", tier="silver"),  # tier only
    result(5, before=None, after=80, tier_before=None, tier="bronze"),  # new profile: +80
    result(6, before=500, after=420, tier_before="silver", tier="silver"),  # -80
]


def close(*, dry_run: bool, since: str = "full") -> tuple[RunSummaryDocument, RecordingNotifier]:
    ledger = RunTracker(fakeredis.FakeRedis())
    store = InMemoryProfileStore()
    notifier = RecordingNotifier()
    ledger.start("r1", "org-1", dryRun=int(dry_run), since=since, startedAt=time.time())
    ledger.update("r1", listed=len(RESULTS))
    assert record_results(ledger, "r1", [r if not dry_run else _dry(r) for r in RESULTS])
    summary = summarize_batch(run_id="r1", ledger=ledger, store=store, notifier=notifier)
    assert store.run_summaries["r1"]["status"] == RunStatus.COMPLETED
    return summary, notifier


def _dry(r: SyncResult) -> SyncResult:
    return SyncResult(
        r.org_id,
        r.customer_id,
        r.status,
        r.updated_at,
        outcome=r.outcome,
        phone=r.phone,
        previous_tier=r.previous_tier,
        previous_points=r.previous_points,
        dry_run=True,
    )


def test_a_run_sends_one_alert_linking_to_its_page_and_the_discrepancy_queue() -> None:
    summary, notifier = close(dry_run=False)
    assert [alert.links for alert in notifier.alerts] == [
        (
            ("Run page", "/dashboard/orgs/org-1/runs/r1"),
            ("Discrepancy queue", "/dashboard/orgs/org-1/discrepancies"),
        )
    ]
    assert summary["alert"] == {"sent": True}
    assert "previewChanges" not in summary  # a real run records, it does not preview


def test_a_dry_run_posts_nothing_and_its_summary_keeps_the_preview() -> None:
    summary, notifier = close(dry_run=True)
    assert notifier.alerts == []
    assert "alert" not in summary
    assert summary["previewChangeCount"] == 5
    assert [e["customerId"] for e in summary["previewChanges"]] == [3, 5, 6, 2, 4]
    assert summary["previewChanges"][0] == {
        "customerId": 3,
        "pointsBefore": 900,
        "pointsAfter": 1400,
        "tierBefore": "silver",
        "tierAfter": "gold",
    }
    assert summary["previewChanges"][1]["pointsBefore"] is None
    assert "4567" not in str(summary["previewChanges"])  # no phone, not even masked


def test_a_dry_run_that_fails_alerts_nobody_either() -> None:
    notifier = RecordingNotifier()
    ledger = RunTracker(fakeredis.FakeRedis())
    ledger.start("r2", "org-1", dryRun=1, since="full", startedAt=time.time())
    ledger.update("r2", listed=0, error="alleaves_auth: refused")
    summary = summarize_batch(
        run_id="r2",
        ledger=ledger,
        store=InMemoryProfileStore(),
        notifier=notifier,
        status=RunStatus.FAILED,
    )
    assert notifier.alerts == [] and summary["status"] == "failed"


def test_the_preview_lists_the_largest_changes_and_counts_the_rest() -> None:
    builder = SummaryBuilder(run_id="r1", org_id="org-1", listed=250, dry_run=True)
    for n in range(250):
        builder.add(result(n, before=1000, after=1000 + n, tier_before="gold", tier="gold"))
    summary = builder.build(started_at=0.0, finished_at=1.0, status=RunStatus.COMPLETED)
    listed = summary["previewChanges"]
    assert summary["previewChangeCount"] == 249  # customer 0 would not change
    assert len(listed) == MAX_LISTED
    assert [e["customerId"] for e in listed] == list(range(249, 249 - MAX_LISTED, -1))


def test_links_name_the_org_and_run_safely() -> None:
    assert run_page_path("org 1/x", "r1") == "/dashboard/orgs/org%201%2Fx/runs/r1"
    assert discrepancies_path("org-1") == "/dashboard/orgs/org-1/discrepancies"


def test_runs_are_labelled_in_words() -> None:
    assert run_kind({"since": "full"}) == "Full"
    assert run_kind({}) == "Full"  # a summary written before ``since``
    assert run_kind({"since": "2026-11-01"}) == "Incremental"
    assert run_kind({"partial": True, "scope": "first 10"}) == "Partial: first 10"
    assert run_kind({"dryRun": True, "since": "full"}) == DRY_RUN_LABEL
    assert run_kind({"dryRun": True, "since": "2026-11-01"}) == f"{DRY_RUN_LABEL} · Incremental"
    assert DRY_RUN_LABEL == "Dry run (preview: nothing written)"
