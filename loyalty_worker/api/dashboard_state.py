"""What the dashboard's routes work with beyond ``ApiServices``, kept on ``app.state.dashboard``.

``wiring.build_app`` builds the real ones (Firestore, Redis, the broker); tests pass fakes. An app
built without them answers the dashboard's routes with 503.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.ports.triggers import RunTriggers, TaskOutcomes


@dataclass
class DashboardServices:
    store: DashboardStore
    tasks: TaskOutcomes
    triggers: RunTriggers
    # The hour (org's local time) nightly runs open at (``Settings.nightly_hour``).
    nightly_hour: int = 2
    clock: Callable[[], float] = time.time
