"""A batch run's status (one enum, and the three questions every reader asks of it) and its
summary document."""

from __future__ import annotations

import enum
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


class AlertOutcome(TypedDict, total=False):
    """What became of the run's one alert."""

    sent: bool
    error: str


class RunSummaryDocument(TypedDict, total=False):
    """``loyalty_sync_runs/{runId}``: a run's registration, then its summary."""

    runId: str
    orgId: str
    status: str
    dryRun: bool
    since: str  # "full", or the day an incremental run read orders since
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
    ordersProcessed: int
    liability: Liability
    ordersSince: str
    unownedMalformedOrders: int
    unownedMalformedOrderIds: list[int | str]
    planS: float
    error: str
    recoveries: int
    recoveryLog: list[str]
    planAttempts: int
    missingCustomerIds: list[int]
    alert: AlertOutcome
