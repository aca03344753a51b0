"""A task's own time budget: the thread pool ignores Celery's time limits, so every task bounds
its time itself. Loops that start new work (a customer of a chunk, a page of a listing) ask the
deadline first; the work in flight when it passes finishes under its own timeouts
(``loyalty_worker.deadlines`` adds those up).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loyalty_worker.errors import DeadlineExceeded


@dataclass
class Deadline:
    """``budget_s`` seconds from its creation, on ``clock`` (monotonic)."""

    budget_s: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def passed(self) -> bool:
        return self.clock() - self.started >= self.budget_s

    def check(self, what: str) -> None:
        """Raise ``DeadlineExceeded`` (naming ``what``) once the budget is spent."""
        if self.passed():
            raise DeadlineExceeded(what, self.budget_s)


def check(deadline: Deadline | None, what: str) -> None:
    """``deadline.check(what)``; no deadline, no check."""
    if deadline is not None:
        deadline.check(what)
