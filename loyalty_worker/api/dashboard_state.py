"""What the dashboard's routes work with beyond ``ApiServices``, kept on ``app.state.dashboard``.

``wiring.build_app`` builds the real ones (Firestore, Redis, the broker); tests pass fakes. An app
built without them answers the dashboard's routes with 503.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from loyalty_worker.domain.retention import DEFAULT_RETENTION, kept_since
from loyalty_worker.log_context import ContextThreadPool
from loyalty_worker.ports.activity import ActivityLog
from loyalty_worker.ports.contacts import ContactStore
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.ports.people import Accounts, MemberStore
from loyalty_worker.ports.triggers import RunTriggers, TaskOutcomes

# Reads the pages send side by side (counts and sums beside a list), for the whole app: enough
# for a few pages at once, each waiting on its slowest read rather than on their sum.
READ_THREADS = 16


def _read_pool() -> ContextThreadPool:
    return ContextThreadPool(max_workers=READ_THREADS, thread_name_prefix="dashboard-read")


@dataclass(frozen=True, slots=True)
class SignInConfig:
    """What the sign-in page's Firebase JS SDK needs: the project's public web config, and the
    local Auth emulator's address when one stands in for Firebase Authentication."""

    api_key: str
    project_id: str
    emulator_url: str | None = None

    @property
    def auth_domain(self) -> str:
        return f"{self.project_id}.firebaseapp.com"

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Where the page's script may connect (its CSP ``connect-src``)."""
        if self.emulator_url:
            return (self.emulator_url,)
        return ("https://identitytoolkit.googleapis.com", "https://securetoken.googleapis.com")


@dataclass
class DashboardServices:
    store: DashboardStore
    tasks: TaskOutcomes
    triggers: RunTriggers
    # Customers' contact details and the export audit (None: no names, no enrollment list).
    contacts: ContactStore | None = None
    # Markitbot's accounts (sign-in) and each person's roles (None: no one can sign in).
    accounts: Accounts | None = None
    members: MemberStore | None = None
    sign_in: SignInConfig | None = None
    # Where the changes people make are recorded (None: not recorded in this process).
    activity: ActivityLog | None = None
    # The hour (org's local time) nightly runs open at (``Settings.nightly_hour``).
    nightly_hour: int = 2
    # How long review audit entries and export records are shown (``Settings.audit_retention``).
    audit_retention: timedelta = DEFAULT_RETENTION
    clock: Callable[[], float] = time.time
    # The pages' parallel reads; its threads start on first use, and stop with the app.
    reads: ContextThreadPool = field(default_factory=_read_pool)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def audit_since(self) -> datetime:
        """The oldest moment an audit entry or export record shown now may be from."""
        return kept_since(self.now(), self.audit_retention)

    def close(self) -> None:
        """Stop the read threads (the app is stopping: no page is served any more)."""
        self.reads.shutdown(wait=False, cancel_futures=True)
