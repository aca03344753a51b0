"""A worker process's heartbeat: the runs whose tasks run here are kept alive while they run.

Every task of a run (its planner, its chunks, its customers retried alone) runs inside
``Heartbeat.beating``; a daemon thread beats each such run every ``interval_s``
(``RunLock.beat``: the run's ``lastBeatAt`` and the org's lock). A run whose tasks all died
stops beating: the watchdog sees it idle and re-sends its work (``services.run.watchdog``), and
its org's lock expires ``lock_ttl_s`` after the last beat instead of hours later.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from loyalty_worker.ports.run import RunLock

log = logging.getLogger(__name__)


class Heartbeat:
    """The process's beating runs, and the thread that beats them."""

    def __init__(self, ledger: RunLock, *, interval_s: float, lock_ttl_s: int) -> None:
        self._ledger = ledger
        self._interval_s = interval_s
        self._lock_ttl_s = lock_ttl_s
        self._active: dict[int, tuple[str, str, str | None]] = {}
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @contextmanager
    def beating(
        self, run_id: str | None, org_id: str, *, planner: str | None = None
    ) -> Iterator[None]:
        """Keep ``run_id`` beating while the body runs (as its planner with token ``planner``,
        once that token holds the planning); no run (a customer synced on its own): nothing
        to keep."""
        if run_id is None:
            yield
            return
        token = object()
        with self._mutex:
            self._active[id(token)] = (run_id, org_id, planner)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="run-heartbeat", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._mutex:
                del self._active[id(token)]

    def beat_now(self) -> int:
        """Beat every run with a task here once; how many were beaten."""
        with self._mutex:
            runs = set(self._active.values())
        beaten = 0
        for run_id, org_id, planner in sorted(runs, key=lambda run: (run[0], run[1])):
            try:
                self._ledger.beat(run_id, org_id, lock_ttl_s=self._lock_ttl_s, planner=planner)
                beaten += 1
            except Exception as exc:  # Redis away: the next beat tries again
                log.warning("run %s: heartbeat not recorded: %s", run_id, exc)
        return beaten

    def stop(self) -> None:
        """Stop the thread (a process shutting down)."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat_now()
