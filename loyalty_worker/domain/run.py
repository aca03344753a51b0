"""A batch run's status (one enum, and the three questions every reader asks of it), its live
record and its summary document."""

from __future__ import annotations

import enum
import urllib.parse
from dataclasses import dataclass
from typing import TypedDict


class RunStatus(enum.StrEnum):
    """Where a run is. The API records ``queued`` before any worker has it; the run state moves
    it through ``listing`` and ``syncing``; a summary closes it ``completed``, ``failed`` or
    ``incomplete``. ``duplicate`` is a trigger refused while another run of the org held its
    lock; ``unknown`` is what a reader gets for a run it cannot find."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    LISTING = "listing"
    SYNCING = "syncing"
    SUMMARIZING = "summarizing"
    COMPLETED = "completed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, value: object) -> RunStatus:
        """The status a stored value names; ``unknown`` for anything else (None included)."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.UNKNOWN

    @property
    def closed(self) -> bool:
        """The run's summary is written: it will not change again."""
        return self in _CLOSED

    @property
    def ended(self) -> bool:
        """Nothing more will happen to the run: closed, or refused as a duplicate."""
        return self in _CLOSED or self is RunStatus.DUPLICATE

    @property
    def going(self) -> bool:
        """The run is queued or in progress."""
        return self in _GOING


_CLOSED = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.INCOMPLETE})
_GOING = frozenset(
    {
        RunStatus.QUEUED,
        RunStatus.STARTING,
        RunStatus.RUNNING,
        RunStatus.LISTING,
        RunStatus.SYNCING,
        RunStatus.SUMMARIZING,
    }
)


# --- A run's summary document (``loyalty_sync_runs/{runId}``) ---------------------------------
# The run's record in Firestore, as the worker writes it: registered ``running`` with its start
# before anything is read, then closed with the counts below. A reader meets both shapes (and
# older summaries without the newer fields), so every field is optional.


class FailureEntry(TypedDict):
    """A failed customer as the summary lists it (the first ``MAX_LISTED``)."""

    customerId: int | str  # a malformed record's id is text
    reason: str
    detail: str | None


class DiscrepancyEntry(TypedDict):
    """One of the run's largest discrepancies, its phone masked."""

    customerId: int | str
    phone: str | None
    calculated: int
    alpine: int
    discrepancy: int
    status: str


TierChangeEntry = TypedDict(
    "TierChangeEntry", {"customerId": int | str, "from": str | None, "to": str | None}
)


class Liability(TypedDict):
    """Points owed by each source, summed over the customers the run counted."""

    calculated: int
    alpine: int


class PreviewEntry(TypedDict):
    """A customer a dry run would change (points from orders or tier): before and after, never
    a phone."""

    customerId: int | str
    pointsBefore: int | None  # the profile's pointsFromOrders (None: no profile yet)
    pointsAfter: int
    tierBefore: str | None
    tierAfter: str | None


class AlertOutcome(TypedDict, total=False):
    """What became of the run's one alert."""

    sent: bool
    error: str


class RunSummaryDocument(TypedDict, total=False):
    """``loyalty_sync_runs/{runId}``: a run's registration, then its summary."""

    runId: str
    orgId: str
    orgName: str  # the business's name, as Alleaves' login gave it
    status: str
    dryRun: bool
    since: str  # "full", or the day an incremental run read orders since
    # A partial run (``loyalty-worker sync --limit/--sample/--customers``): never the org's last
    # full run (the memo, the nightly schedule, the metrics' dead man's switch). Its scope in
    # words, and its selection (``domain.selection``) to plan it again.
    partial: bool
    scope: str
    selection: str
    startedAt: float
    finishedAt: float
    durationS: float
    listed: int
    synced: int
    unchanged: int
    carried: int
    failed: int
    missing: int
    failedByReason: dict[str, int]
    failures: list[FailureEntry]
    tiers: dict[str, int]
    reconciliation: dict[str, int]
    actions: dict[str, int]
    withAlpineAccount: int
    discrepancies: int
    discrepancyRate: float
    largestDiscrepancies: list[DiscrepancyEntry]
    tierChanges: list[TierChangeEntry]
    tierChangeCount: int
    # A dry run's preview: the customers whose points or tier would change, largest change
    # first (the first ``MAX_LISTED``), and how many there are in all.
    previewChanges: list[PreviewEntry]
    previewChangeCount: int
    ordersProcessed: int
    liability: Liability
    ordersSince: str
    unownedMalformedOrders: int
    unownedMalformedOrderIds: list[int | str]
    planS: float
    error: str
    recoveries: int
    recoveredAt: float
    recoveryLog: list[str]
    planAttempts: int
    missingCustomerIds: list[int]
    alert: AlertOutcome


DRY_RUN_LABEL = "Dry run (preview: nothing written)"


def run_kind(summary: RunSummaryDocument) -> str:
    """What kind of run it was, in words: "Full", "Incremental" (orders since a day) or
    "Partial: first 10" (its scope); a dry run says so first ("Dry run (preview: nothing
    written)", then "· Incremental" or "· Partial: ..." when it was not a full one)."""
    if summary.get("partial"):
        kind = f"Partial: {summary.get('scope') or 'a selection'}"
    elif summary.get("since", "full") not in ("full", None):
        kind = "Incremental"
    else:
        kind = "Full"
    if not summary.get("dryRun"):
        return kind
    return DRY_RUN_LABEL if kind == "Full" else f"{DRY_RUN_LABEL} · {kind}"


def run_page_path(org_id: str, run_id: str) -> str:
    """The dashboard's page of a run (under the public URL)."""
    return f"/dashboard/orgs/{_part(org_id)}/runs/{_part(run_id)}"


def discrepancies_path(org_id: str) -> str:
    """The dashboard's discrepancy queue of an org (under the public URL)."""
    return f"/dashboard/orgs/{_part(org_id)}/discrepancies"


def _part(value: str) -> str:
    return urllib.parse.quote(value, safe="")


# --- A run's live record (the run state, Redis) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanReport:
    """What a run's plan read, kept in its record for the summary."""

    orders_seen: int
    order_pages: int
    orders_since: str  # "all", or the first day of the orders read (incremental)
    unowned_malformed: int  # malformed orders no listed customer reports
    unowned_listed: tuple[str, ...]  # the first of their ids


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run's record as the run state keeps it while the run lives: who runs it and how, how
    far it got (the stamps of its steps, its planners, results and beats), what its plan read,
    and once closed its summary. A run the state does not know has no ``org_id``."""

    run_id: str
    org_id: str | None = None
    status: RunStatus = RunStatus.UNKNOWN
    dry_run: bool = False
    since: str | None = None  # as the run was asked: "full", or a day
    # A partial run's customers (``domain.selection``, encoded) and its scope in words.
    selection: str | None = None
    scope: str | None = None
    error: str | None = None
    running_run_id: str | None = None  # a duplicate's: the org's run it was refused for
    started_at: float | None = None
    listed: int | None = None
    listed_at: float | None = None
    plan_attempts: int = 0  # planners that claimed the run
    plan_started_at: float | None = None  # the last one's claim
    planner_beat_at: float | None = None
    dispatched_at: float | None = None  # every customer of the plan handed on
    last_result_at: float | None = None
    last_beat_at: float | None = None
    recovered_at: float | None = None
    recoveries: int = 0
    recovery_log: tuple[str, ...] = ()  # what each recovery did, in order
    fired: bool = False  # every result is in: its summary was sent for
    plan: PlanReport | None = None
    alert: AlertOutcome | None = None  # the run's one alert, once sent (or not)
    summary: RunSummaryDocument | None = None  # once closed

    @property
    def known(self) -> bool:
        """The run state holds the run (not a bare record that late results left)."""
        return self.org_id is not None

    @property
    def last_progress_at(self) -> float | None:
        """The latest sign of life: its start, a step, a result, a beat, a recovery."""
        stamps = (
            self.started_at,
            self.listed_at,
            self.last_result_at,
            self.last_beat_at,
            self.planner_beat_at,
            self.recovered_at,
        )
        return max((stamp for stamp in stamps if stamp is not None), default=None)
