"""A batch run's status: one enum, and the three questions every reader asks of it."""

from __future__ import annotations

import enum


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
