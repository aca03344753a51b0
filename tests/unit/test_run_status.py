"""The run status enum answers, status by status, what the three hand-written sets did."""

from __future__ import annotations

import pytest

from loyalty_worker.domain.run import RunStatus

# The sets the enum replaces, as they were written (batch.FINAL, progress.FINAL_STATUSES,
# dashboard.GOING).
CLOSED = {"completed", "failed", "incomplete"}
ENDED = {"completed", "failed", "incomplete", "duplicate"}
GOING = {"queued", "starting", "running", "listing", "syncing", "summarizing"}


@pytest.mark.parametrize("status", list(RunStatus))
def test_each_status_answers_as_the_old_sets(status: RunStatus) -> None:
    assert status.closed is (status.value in CLOSED)
    assert status.ended is (status.value in ENDED)
    assert status.going is (status.value in GOING)


def test_every_status_is_closed_going_or_one_of_the_two_others() -> None:
    others = {s for s in RunStatus if not s.closed and not s.going}
    assert others == {RunStatus.DUPLICATE, RunStatus.UNKNOWN}


@pytest.mark.parametrize(
    ("stored", "status"),
    [
        ("completed", RunStatus.COMPLETED),
        ("queued", RunStatus.QUEUED),
        ("", RunStatus.UNKNOWN),
        (None, RunStatus.UNKNOWN),
        ("Completed", RunStatus.UNKNOWN),
        (3, RunStatus.UNKNOWN),
    ],
)
def test_a_stored_value_is_read_as_its_status_or_unknown(stored: object, status: RunStatus) -> None:
    assert RunStatus.of(stored) is status
