"""A batch run's summary, aggregated from per-customer results, and its Discord alert."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from loyalty_worker.domain.results import SyncResult, SyncStatus
from loyalty_worker.domain.run import (
    DiscrepancyEntry,
    FailureEntry,
    PreviewEntry,
    RunStatus,
    RunSummaryDocument,
    TierChangeEntry,
    discrepancies_path,
    run_page_path,
)
from loyalty_worker.ports.notify import Alert

DISCREPANCY_STATUSES = ("alpine_higher", "calculated_higher")
TOP_DISCREPANCIES = 25
MAX_LISTED = 100


@dataclass
class SummaryBuilder:
    """Streams results in bounded memory: counters plus the top discrepancies."""

    run_id: str
    org_id: str
    listed: int
    dry_run: bool = False
    synced: int = 0
    unchanged: int = 0
    # Of the unchanged: left as the last sync left them by an incremental run (services.run.memo).
    carried: int = 0
    failed: int = 0
    orders_processed: int = 0
    with_alpine: int = 0
    discrepancies: int = 0
    # Points liability of both sources over the customers counted (the dashboard's overview).
    points_calculated: int = 0
    points_alpine: int = 0
    failed_by_reason: Counter[str] = field(default_factory=Counter)
    tiers: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    failures: list[FailureEntry] = field(default_factory=list)
    tier_changes: list[TierChangeEntry] = field(default_factory=list)
    tier_change_count: int = 0
    preview_count: int = 0
    _top: list[tuple[int, str, DiscrepancyEntry]] = field(default_factory=list)
    # A dry run's largest changes (points from orders, tier): a bounded heap, smallest first.
    _preview: list[tuple[int, int, int, PreviewEntry]] = field(default_factory=list)

    def add(self, result: SyncResult) -> None:
        if result.status is SyncStatus.FAILED:
            self.failed += 1
            reason = result.reason or "unknown"
            self.failed_by_reason[reason] += 1
            if len(self.failures) < MAX_LISTED:
                self.failures.append(
                    {"customerId": result.customer_id, "reason": reason, "detail": result.detail}
                )
            return
        if result.status is SyncStatus.SYNCED:
            self.synced += 1
        else:
            self.unchanged += 1
            self.carried += result.carried
        outcome = result.outcome
        if outcome is None:  # a success always has one; nothing more to count without it
            return
        self.orders_processed += outcome.calculation.orders_processed
        self.points_calculated += outcome.calculation.points_from_orders
        self.tiers[str(outcome.displayed.tier)] += 1
        rec = outcome.reconciliation
        self.statuses[rec.status.value] += 1
        self.actions[rec.action.value] += 1
        if outcome.alpine is not None:
            self.with_alpine += 1
            self.points_alpine += outcome.alpine.points
        if rec.status.value in DISCREPANCY_STATUSES and outcome.alpine is not None:
            self.discrepancies += 1
            discrepancy = rec.discrepancy or 0
            entry: DiscrepancyEntry = {
                "customerId": result.customer_id,
                "phone": result.phone,
                "calculated": outcome.calculation.points_from_orders,
                "alpine": outcome.alpine.points,
                "discrepancy": discrepancy,
                "status": rec.status.value,
            }
            item = (abs(discrepancy), str(result.customer_id), entry)
            if len(self._top) < TOP_DISCREPANCIES:
                heapq.heappush(self._top, item)
            else:
                heapq.heappushpop(self._top, item)
        if self.dry_run:
            self._add_preview(result)
        change = result.tier_change
        if change is not None:
            self.tier_change_count += 1
            if len(self.tier_changes) < MAX_LISTED:
                self.tier_changes.append(
                    {"customerId": result.customer_id, "from": change[0], "to": change[1]}
                )

    def _add_preview(self, result: SyncResult) -> None:
        """Keep the customer among the preview's largest changes when its points from orders
        or its tier would change."""
        outcome = result.outcome
        if outcome is None:
            return
        before = result.previous_points
        after = outcome.calculation.points_from_orders
        tier_after = outcome.displayed.tier
        if before == after and result.previous_tier == tier_after:
            return
        self.preview_count += 1
        entry: PreviewEntry = {
            "customerId": result.customer_id,
            "pointsBefore": before,
            "pointsAfter": after,
            "tierBefore": result.previous_tier,
            "tierAfter": tier_after,
        }
        # Ties: the lower customer id first (negated: the heap keeps the largest); the count
        # keeps entries themselves from being compared.
        cid = result.customer_id
        tie = -cid if isinstance(cid, int) else 0
        item = (abs(after - (before or 0)), tie, -self.preview_count, entry)
        if len(self._preview) < MAX_LISTED:
            heapq.heappush(self._preview, item)
        else:
            heapq.heappushpop(self._preview, item)

    def add_all(self, results: Iterable[SyncResult]) -> SummaryBuilder:
        for result in results:
            self.add(result)
        return self

    def build(
        self, *, started_at: float, finished_at: float, status: RunStatus
    ) -> RunSummaryDocument:
        accounted = self.synced + self.unchanged + self.failed
        largest = [entry for _, _, entry in sorted(self._top, reverse=True)]
        document: RunSummaryDocument = {
            "runId": self.run_id,
            "orgId": self.org_id,
            "status": status.value,
            "dryRun": self.dry_run,
            "startedAt": started_at,
            "finishedAt": finished_at,
            "durationS": round(finished_at - started_at, 3),
            "listed": self.listed,
            "synced": self.synced,
            "unchanged": self.unchanged,
            "carried": self.carried,
            "failed": self.failed,
            "missing": max(self.listed - accounted, 0),
            "failedByReason": dict(self.failed_by_reason),
            "failures": self.failures,
            "tiers": dict(self.tiers),
            "reconciliation": dict(self.statuses),
            "actions": dict(self.actions),
            "withAlpineAccount": self.with_alpine,
            "discrepancies": self.discrepancies,
            # Share of customers with an Alpine IQ account whose balance is over the threshold.
            "discrepancyRate": round(self.discrepancies / self.with_alpine, 4)
            if self.with_alpine
            else 0.0,
            "largestDiscrepancies": largest,
            "tierChanges": self.tier_changes,
            "tierChangeCount": self.tier_change_count,
            "ordersProcessed": self.orders_processed,
            "liability": {"calculated": self.points_calculated, "alpine": self.points_alpine},
        }
        if self.dry_run:
            preview = sorted(self._preview, key=lambda item: item[:3], reverse=True)
            document["previewChanges"] = [item[3] for item in preview]
            document["previewChangeCount"] = self.preview_count
        return document


def summary_alert(summary: RunSummaryDocument) -> Alert:
    """One Discord alert per run: always the counts; discrepancies and failures when any."""
    title = f"Loyalty sync {summary['status']}: {summary['orgId']}"
    if summary.get("partial"):
        title = f"Partial loyalty sync ({summary.get('scope')}) {summary['status']}: " + str(
            summary["orgId"]
        )
    text = (
        f"Run `{summary['runId']}`{' (dry run)' if summary.get('dryRun') else ''}: "
        f"{summary['listed']} listed, {summary['synced']} synced, "
        f"{summary['unchanged']} unchanged, {summary['failed']} failed"
    )
    if summary.get("missing"):
        text += f", {summary['missing']} missing"
    text += (
        f"; {summary['discrepancies']} discrepancies "
        f"({summary['discrepancyRate']:.1%} of Alpine IQ accounts), "
        f"{summary['ordersProcessed']} orders, {summary['durationS']} s."
    )
    sections: list[tuple[str, list[str]]] = []
    if summary["largestDiscrepancies"]:
        lines = [
            f"{d['phone'] or 'no phone'} (customer {d['customerId']}): calculated "
            f"{d['calculated']}, Alpine IQ {d['alpine']} ({d['discrepancy']:+d}, "
            f"{d['status']})"
            for d in summary["largestDiscrepancies"]
        ]
        hidden = summary["discrepancies"] - len(lines)
        if hidden > 0:
            lines.append(f"… and {hidden} more")
        sections.append(("Discrepancies over the threshold", lines))
    if summary["failedByReason"]:
        sections.append(
            ("Failures by reason", [f"{r}: {n}" for r, n in summary["failedByReason"].items()])
        )
    unowned = int(summary.get("unownedMalformedOrders") or 0)
    if unowned:
        ids = [str(order_id) for order_id in summary.get("unownedMalformedOrderIds") or ()]
        line = f"{unowned} orders (ids {', '.join(ids[:10])}"
        line += f" and {unowned - 10} more)" if unowned > 10 else ")"
        sections.append(("Malformed orders without a customer", [line]))
    if summary.get("recoveryLog"):
        # Work the watchdog sent again after a crash or a lost message.
        sections.append(("Recovered", [str(line) for line in summary["recoveryLog"]]))
    missing_ids = summary.get("missingCustomerIds") or ()
    if missing_ids:
        line = ", ".join(str(cid) for cid in missing_ids[:20])
        more = int(summary.get("missing") or 0) - min(len(missing_ids), 20)
        sections.append(("Missing customers", [line + (f" and {more} more" if more > 0 else "")]))
    if summary.get("error"):
        sections.append(("Error", [str(summary["error"])]))
    severity = "info"
    if summary["discrepancies"] or summary["failed"] or unowned:
        severity = "warning"
    if RunStatus.of(summary["status"]) is not RunStatus.COMPLETED:
        severity = "error"
    links = (
        ("Run page", run_page_path(summary["orgId"], summary["runId"])),
        ("Discrepancy queue", discrepancies_path(summary["orgId"])),
    )
    return Alert(title=title, summary=text, sections=sections, severity=severity, links=links)
