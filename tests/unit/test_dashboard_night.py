"""The overview's banner: last night's run did not start, or the last full run did not finish;
partial and dry runs are not the night's run. The clock is given."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loyalty_worker.domain.run import RunSummaryDocument
from loyalty_worker.services.dashboard.night import last_night_start, night_banner

DENVER = ZoneInfo("America/Denver")
# 02:00 in Denver (MST) is 09:00 UTC.
NIGHT = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)


def run(started: datetime, status: str = "completed", **fields: Any) -> RunSummaryDocument:
    document: dict[str, Any] = {
        "runId": f"run-{started:%d%H%M}",
        "orgId": "org-1",
        "status": status,
        "startedAt": started.timestamp(),
        **fields,
    }
    return document  # type: ignore[return-value]


def banner(runs: list[RunSummaryDocument], now: datetime) -> Any:
    return night_banner(runs, now=now, tz=DENVER, nightly_hour=2)


def at(hour: int, minute: int = 0, day: int = 15) -> datetime:
    return datetime(2027, 1, day, hour, minute, tzinfo=UTC)


def test_the_last_start_time_is_an_hour_past() -> None:
    assert last_night_start(at(9, 59), DENVER, 2) == at(9, day=14)
    assert last_night_start(at(10, 0), DENVER, 2) == NIGHT
    # Spring forward skips 02:00 in Denver on 2027-03-14: the wall clock's 02:00 resolves
    # into the gap's other side, as the nightly schedule's does.
    spring = datetime(2027, 3, 14, 12, 0, tzinfo=UTC)
    assert last_night_start(spring, DENVER, 2).astimezone(DENVER).date().day == 14


def test_nothing_to_say_before_the_hour_has_passed() -> None:
    yesterday = run(at(9, 5, day=14))
    assert banner([yesterday], at(9, 30)) is None  # tonight's start + 30 min: not yet due


def test_a_night_without_a_started_full_run_says_so() -> None:
    yesterday = run(at(9, 5, day=14))
    found = banner([yesterday], at(10, 0))
    assert found is not None and found.problem == "not_started"
    assert "did not run" in found.title
    assert "02:00 (America/Denver)" in found.message
    assert "Full run" in found.message and "operator" in found.message


def test_a_run_started_since_the_night_opened_is_enough() -> None:
    assert banner([run(at(9, 2))], at(11, 0)) is None
    assert banner([run(at(9, 2), status="syncing")], at(11, 0)) is None  # still going


@pytest.mark.parametrize("kind", [{"partial": True, "scope": "first 10"}, {"dryRun": True}])
def test_partial_and_dry_runs_are_not_the_nights_run(kind: dict[str, Any]) -> None:
    runs = [run(at(9, 30), **kind), run(at(9, 5, day=14))]
    found = banner(runs, at(11, 0))
    assert found is not None and found.problem == "not_started"


@pytest.mark.parametrize("status", ["incomplete", "failed"])
def test_a_last_full_run_that_did_not_finish_says_so(status: str) -> None:
    runs = [run(at(9, 2), status=status, failed=3, missing=4)]
    found = banner(runs, at(11, 0))
    assert found is not None and found.problem == "not_completed"
    assert found.run_id == "run-150902"
    assert f"ended {status}" in found.message and "7 customers were not updated" in found.message


def test_a_partial_run_after_a_failed_night_does_not_hide_it() -> None:
    runs = [run(at(10, 0), partial=True, scope="3 customers"), run(at(9, 2), status="failed")]
    found = banner(runs, at(11, 0))
    assert found is not None and found.problem == "not_completed"
