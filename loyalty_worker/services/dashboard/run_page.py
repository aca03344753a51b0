"""A run as its page shows it: what kind of run it is (in words), live progress while it goes,
then its summary (failed customers by reason, the largest discrepancies with phones masked, tier
changes; for a dry run, the preview of the customers it would change)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from pydantic import Field

from loyalty_worker.domain.run import DRY_RUN_LABEL, RunSummaryDocument
from loyalty_worker.ports.run import RunProgressSource, RunSummaries
from loyalty_worker.services.dashboard.formatting import local_time, mask_phone
from loyalty_worker.services.dashboard.page import NotFound, PageModel
from loyalty_worker.services.run.view import find_run


class Failure(PageModel):
    """A customer whose sync failed (the summary lists the first ones)."""

    customer_id: int | str = Field(description="Text for a record too malformed to have an id.")
    reason: str
    detail: str | None = None


class LargestDiscrepancy(PageModel):
    """One of the run's largest discrepancies."""

    customer_id: int | str
    phone: str = Field(description="Masked to its last four digits.")
    calculated: int | None = None
    alpine: int | None = None
    discrepancy: int
    status: str | None = None


class TierChange(PageModel):
    customer_id: int | str
    from_: str | None = Field(alias="from")
    to: str | None


class PreviewChange(PageModel):
    """A customer a dry run would change: points from orders and tier, before and after."""

    customer_id: int | str
    points_before: int | None = Field(description="Null: no profile yet.")
    points_after: int
    tier_before: str | None
    tier_after: str | None


class RunPage(PageModel):
    """A run's progress, and its summary once it is over."""

    run_id: str
    org_id: str
    status: str = Field(description="A run's status (domain.run.RunStatus).")
    finished: bool = Field(description="Over: the summary below is final.")
    listed: int | None = Field(description="Customers the run syncs (null while listing).")
    done: int
    failed: int
    error: str | None
    dry_run: bool
    kind: str = Field(
        description='What kind of run, in words: "Full", "Incremental", "Partial: first 10", '
        '"Dry run (preview: nothing written)" (then "· Incremental"... when not full).'
    )
    started: str | None = Field(description="When it started, in the org's time zone.")
    duration_s: float | None
    synced: int | None
    unchanged: int | None
    failed_by_reason: dict[str, int]
    failures: list[Failure]
    largest_discrepancies: list[LargestDiscrepancy]
    tier_changes: list[TierChange]
    tier_change_count: int
    preview: list[PreviewChange] = Field(
        description="A dry run's customers whose points or tier would change, largest change "
        "first (the first 100)."
    )
    preview_count: int = Field(description="All the customers a dry run would change.")
    discrepancies: int | None
    discrepancy_rate: float | None
    reconciliation: dict[str, int]
    tiers: dict[str, int]


def _largest(summary: RunSummaryDocument) -> list[LargestDiscrepancy]:
    return [
        LargestDiscrepancy(
            customer_id=entry.get("customerId", 0),
            phone=mask_phone(entry.get("phone")),
            calculated=entry.get("calculated"),
            alpine=entry.get("alpine"),
            discrepancy=int(entry.get("discrepancy") or 0),
            status=entry.get("status"),
        )
        for entry in summary.get("largestDiscrepancies") or []
    ]


def run_page(
    run_id: str, org_id: str, *, live: RunProgressSource, stored: RunSummaries, tz: ZoneInfo
) -> RunPage:
    """A run's summary (when closed) or live progress; NotFound for a run the org does not
    have (another org's answers as an unknown one)."""
    run = find_run(run_id, live=live, stored=stored)
    if run is None or run.org_id != org_id:
        raise NotFound("run", run_id)
    summary: RunSummaryDocument = run.summary or {}
    return RunPage(
        run_id=run.run_id,
        org_id=run.org_id,
        status=run.status.value,
        finished=not run.status.going,
        listed=run.listed,
        done=run.done,
        failed=run.failed,
        error=run.error,
        dry_run=bool(summary.get("dryRun")) or run.kind.startswith(DRY_RUN_LABEL),
        kind=run.kind,
        started=local_time(summary.get("startedAt"), tz),
        duration_s=summary.get("durationS"),
        synced=summary.get("synced"),
        unchanged=summary.get("unchanged"),
        failed_by_reason=dict(summary.get("failedByReason") or {}),
        failures=[Failure.model_validate(entry) for entry in summary.get("failures") or []],
        largest_discrepancies=_largest(summary),
        tier_changes=[TierChange.model_validate(e) for e in summary.get("tierChanges") or []],
        tier_change_count=summary.get("tierChangeCount", 0),
        preview=[
            PreviewChange(
                customer_id=e["customerId"],
                points_before=e.get("pointsBefore"),
                points_after=e["pointsAfter"],
                tier_before=e.get("tierBefore"),
                tier_after=e.get("tierAfter"),
            )
            for e in summary.get("previewChanges") or []
        ],
        preview_count=summary.get("previewChangeCount", 0),
        discrepancies=summary.get("discrepancies"),
        discrepancy_rate=summary.get("discrepancyRate"),
        reconciliation=dict(summary.get("reconciliation") or {}),
        tiers=dict(summary.get("tiers") or {}),
    )
