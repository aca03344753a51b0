"""Whether a transient error is tried again, and after how long: the one rule for every retry
outside HTTP (the HTTP client keeps its own, ``adapters.http.RetryPolicy``).

``Retries`` decides: only a ``TransientError`` is tried again, at most ``tries`` tries in all,
the n-th retry ``first_s`` × 2^(n-1) seconds after the failure, never more than ``cap_s``. It is
applied two ways:

- in this thread (``Retries.call``): a plan's reads, which pause between tries (a burst of 429s
  beyond the clients' own retries, one slow answer among hundreds). A ``DeadlineExceeded`` is
  not tried again here: the budget it ran out of is this process's, and it is spent;
- by Celery (``Attempt``): a task's service raises ``RetryLater``, and the task's one helper
  turns it into a Celery retry after that countdown. A retried task starts a budget of its own,
  so there an exceeded deadline is tried again like any transient error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from loyalty_worker.domain.results import SyncResult, SyncStatus, utc_stamp
from loyalty_worker.errors import DeadlineExceeded, LoyaltyError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKOFF_CAP_S = 60.0


@dataclass(frozen=True, slots=True)
class Retries:
    """How often, and after how long, a transient error is tried again."""

    tries: int | None  # every try, the first included; None: no limit
    first_s: float = 1.0
    cap_s: float = BACKOFF_CAP_S

    def wait_s(self, failures: int) -> float:
        """The pause before the next try after ``failures`` failed ones: ``first_s``, doubling,
        at most ``cap_s``."""
        return min(self.first_s * 2.0 ** (failures - 1), self.cap_s)

    def after(self, exc: BaseException, failures: int) -> float | None:
        """The pause before trying again after ``failures`` failed tries, the last with
        ``exc``; None when it is not tried again (not transient, or no try left)."""
        if not isinstance(exc, TransientError):
            return None
        if self.tries is not None and failures >= self.tries:
            return None
        return self.wait_s(failures)

    def longest_s(self, try_s: float) -> float:
        """The longest every try of ``try_s`` and the pauses between them take (bounded
        ``tries`` only): what the deadlines add up (``loyalty_worker.deadlines``)."""
        if self.tries is None:
            raise ValueError("retries without a limit have no longest time")
        return self.tries * try_s + sum(self.wait_s(n) for n in range(1, self.tries))

    def call(
        self, action: Callable[[], T], *, what: str, sleep: Callable[[float], None] = time.sleep
    ) -> T:
        """``action()``, tried again in this thread while ``after`` says so (waiting with
        ``sleep``); the last error is raised."""
        failures = 0
        while True:
            try:
                return action()
            except DeadlineExceeded:
                raise
            except TransientError as exc:
                failures += 1
                pause = self.after(exc, failures)
                if pause is None:
                    raise
                log.warning("%s failed (%s); trying again in %g s", what, exc, pause)
                sleep(pause)


class RetryLater(Exception):
    """A transient error to try again after ``countdown`` seconds."""

    def __init__(self, error: TransientError, countdown: int) -> None:
        super().__init__(error, countdown)
        self.error = error
        self.countdown = countdown


@dataclass(frozen=True)
class Attempt:
    """Which try of a task this is: ``retries`` made so far, at most ``max_retries`` (None: the
    task's own limit decides), the first after 1 s, doubling up to ``cap_s``."""

    retries: int = 0
    max_retries: int | None = 0
    cap_s: float = BACKOFF_CAP_S

    @property
    def policy(self) -> Retries:
        """The task's retries as ``Retries``: its first try and ``max_retries`` more."""
        tries = None if self.max_retries is None else self.max_retries + 1
        return Retries(tries, first_s=1.0, cap_s=self.cap_s)

    def wait(self, error: TransientError) -> NoReturn:
        """Raise ``RetryLater`` whatever the retries so far: waiting for a turn (a free slot)
        is no failure, and tries again after the policy's pause until the turn comes."""
        raise RetryLater(error, int(self.policy.wait_s(self.retries + 1)))

    def retry_or_fail(self, exc: LoyaltyError) -> None:
        """Raise ``RetryLater`` for a transient error the policy tries again; otherwise return,
        and the caller reports the failure."""
        if isinstance(exc, TransientError):
            pause = self.policy.after(exc, self.retries + 1)
            if pause is not None:
                raise RetryLater(exc, int(pause)) from exc


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
