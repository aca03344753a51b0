"""The chaos suite's report: the figures of every case, again at the end of the session.

Each case runs on the session's private Redis (``test_redis_url``), except the Redis restart,
which starts and restarts a server of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from loyalty_worker.config import Settings
from loyalty_worker.names import RUNS_QUEUE, WATCHDOG
from tests.chaos.helpers import REPORT
from tests.fixtures.pipeline import Stack


@pytest.fixture
def beat() -> Iterator[list[Stack]]:
    """Sends ``loyalty.watchdog`` to each stack put in the list every ``LOYALTY_REDISPATCH_S``
    / 2 (the default), as Beat's schedule does (``celeryconfig.beat_schedule``)."""
    stacks: list[Stack] = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(Settings().redispatch_s / 2):
            for stack in stacks:
                try:
                    stack.celery.send_task(WATCHDOG, queue=RUNS_QUEUE)
                except Exception as exc:  # a Redis being restarted: Beat misses a tick too
                    print(f"beat: tick not sent: {exc}")

    thread = threading.Thread(target=tick, name="beat", daemon=True)
    thread.start()
    yield stacks
    stop.set()
    thread.join()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("chaos: per case")
        for line in REPORT:
            terminalreporter.write_line(line)
