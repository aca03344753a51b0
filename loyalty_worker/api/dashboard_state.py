"""What the dashboard's routes work with beyond ``ApiServices``, kept on ``app.state.dashboard``.

``wiring.build_app`` builds the real ones (Firestore, Redis, the broker); tests pass fakes. An app
built without them answers the dashboard's routes with 503.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loyalty_worker.log_context import ContextThreadPool
from loyalty_worker.ports.contacts import ContactStore
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.ports.triggers import RunTriggers, TaskOutcomes

# Reads the pages send side by side (counts and sums beside a list), for the whole app: enough
# for a few pages at once, each waiting on its slowest read rather than on their sum.
READ_THREADS = 16


def _read_pool() -> ContextThreadPool:
    return ContextThreadPool(max_workers=READ_THREADS, thread_name_prefix="dashboard-read")


@dataclass
class DashboardServices:
    store: DashboardStore
    tasks: TaskOutcomes
    triggers: RunTriggers
    # Customers' contact details and the export audit (None: no names, no enrollment list).
    contacts: ContactStore | None = None
    # The hour (org's local time) nightly runs open at (``Settings.nightly_hour``).
    nightly_hour: int = 2
    clock: Callable[[], float] = time.time
    # The pages' parallel reads; its threads start on first use, and stop with the app.
    reads: ContextThreadPool = field(default_factory=_read_pool)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def close(self) -> None:
        """Stop the read threads (the app is stopping: no page is served any more)."""
        self.reads.shutdown(wait=False, cancel_futures=True)
