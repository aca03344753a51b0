"""Whether a task tries a transient error again, and after how long; a customer's failed result
once it does not.

The decision is made here, not in each task: a service raises ``RetryLater`` and the task's one
helper turns it into a Celery retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from loyalty_worker.domain.results import SyncResult, SyncStatus, utc_stamp
from loyalty_worker.errors import LoyaltyError, TransientError

BACKOFF_CAP_S = 60


def backoff_s(retries: int, cap_s: int = BACKOFF_CAP_S) -> int:
    """Seconds to wait before the next try after ``retries`` retries: 1, 2, 4... up to
    ``cap_s``."""
    return int(min(2**retries, cap_s))


class RetryLater(Exception):
    """A transient error to try again after ``countdown`` seconds."""

    def __init__(self, error: TransientError, countdown: int) -> None:
        super().__init__(error, countdown)
        self.error = error
        self.countdown = countdown


@dataclass(frozen=True)
class Attempt:
    """Which try this is: ``retries`` made so far, at most ``max_retries`` (None: the task's own
    limit decides), each after ``backoff_s`` capped at ``cap_s``."""

    retries: int = 0
    max_retries: int | None = 0
    cap_s: int = BACKOFF_CAP_S

    def wait(self, error: TransientError) -> NoReturn:
        """Raise ``RetryLater`` whatever the retries so far: waiting for a turn (a free slot)
        is no failure, and tries again after ``backoff_s`` until the turn comes."""
        raise RetryLater(error, backoff_s(self.retries, self.cap_s))

    def retry_or_fail(self, exc: LoyaltyError) -> None:
        """Raise ``RetryLater`` for a transient error with retries left; otherwise return, and
        the caller reports the failure."""
        retries_left = self.max_retries is None or self.retries < self.max_retries
        if isinstance(exc, TransientError) and retries_left:
            raise RetryLater(exc, backoff_s(self.retries, self.cap_s)) from exc


def failed_result(
    org_id: str, customer_id: int | str, exc: LoyaltyError, *, dry_run: bool
) -> SyncResult:
    """A customer's ``failed`` result for an error no retry fixes (or after the last retry)."""
    return SyncResult(
        org_id,
        customer_id,
        SyncStatus.FAILED,
        utc_stamp(),
        reason=exc.reason,
        detail=str(exc),
        dry_run=dry_run,
    )
