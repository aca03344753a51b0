"""The summary table the CLI and the demo print."""

from loyalty_worker.domain.results import SyncStatus
from loyalty_worker.domain.run import RunStatus, RunSummaryDocument
from loyalty_worker.progress import format_summary
from loyalty_worker.services.run.summary import SummaryBuilder
from tests.results import synced


def summary() -> RunSummaryDocument:
    builder = SummaryBuilder(run_id="r1", org_id="org-1", listed=3)
    for n, carried in enumerate((False, True, True)):
        builder.add(synced(n, status=SyncStatus.UNCHANGED, carried=carried))
    return builder.build(started_at=0.0, finished_at=1.5, status=RunStatus.COMPLETED)


def test_the_table_shows_how_many_unchanged_customers_were_carried_over() -> None:
    table = format_summary({**summary(), "alert": {"sent": True}})
    assert "unchanged         3 (2 carried over)" in table
    assert "bronze  3" in table


def test_a_run_that_carried_nobody_shows_the_plain_count() -> None:
    built = summary()
    table = format_summary({**built, "carried": 0, "alert": {"sent": False}})
    assert "unchanged         3\n" in table
    assert "alert             NOT sent" in table
