"""The chaos suite's report: the figures of every case, again at the end of the session.

Each case runs on the session's private Redis (``test_redis_url``), except the Redis restart,
which starts and restarts a server of its own.
"""

from __future__ import annotations

import pytest

from tests.chaos.helpers import REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("chaos: per case")
        for line in REPORT:
            terminalreporter.write_line(line)
