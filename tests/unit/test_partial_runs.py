"""Partial runs (``loyalty-worker sync --limit/--sample/--customers``): the selection, a run
restricted to it from plan to summary and alert, and nothing that takes it for the org's last
full run (the last success incremental runs read since, the nightly start markers)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import fakeredis
import pytest

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.cli.runs import customer_ids, customer_selection
from loyalty_worker.domain.models import AlpineProfile, Customer
from loyalty_worker.domain.selection import CustomerSelection
from loyalty_worker.services.run.nightly import start_nightly_runs
from loyalty_worker.services.run.triggers import enqueue_org_run
from tests.fakes import FakeAlleaves, FakeAlpine, RecordingEnqueuer
from tests.unit.test_batch import Harness, orders_for

LISTED = [Customer(cid, None) for cid in (5, 3, 9, 1, 7, 2)]


def _harness() -> Harness:
    customers = [Customer(i, f"555000{i:04d}") for i in range(1, 31)]
    orders = [o for i in range(1, 31) for o in orders_for(i, "10", "20.5")]
    accounts = {f"555000{i:04d}": AlpineProfile(30) for i in range(1, 31)}
    return Harness(FakeAlleaves(list(customers), orders, page_size=7), FakeAlpine(accounts))


def _written(harness: Harness) -> set[int]:
    return {int(p["alleavesCustomerId"]) for p in harness.store.profiles.values()}


# --- the selection ---------------------------------------------------------------------------


def test_the_first_n_keep_the_listing_order() -> None:
    picked = CustomerSelection.first(3).pick(LISTED)
    assert [c.customer_id for c in picked] == [5, 3, 9]
    assert CustomerSelection.first(30).pick(LISTED) == LISTED


def test_a_sample_is_replayed_by_its_seed_whatever_the_page_order() -> None:
    sample = CustomerSelection.sample(3, seed=42)
    picked = {c.customer_id for c in sample.pick(LISTED)}
    assert len(picked) == 3
    assert {c.customer_id for c in sample.pick(list(reversed(LISTED)))} == picked
    draws = {
        frozenset(c.customer_id for c in CustomerSelection.sample(3, seed).pick(LISTED))
        for seed in range(20)
    }
    assert len(draws) > 1  # the seed matters


def test_named_ids_keep_those_listed_and_name_the_others() -> None:
    named = CustomerSelection.of([9, 1, 404, 9])
    assert named.ids == (9, 1, 404)
    assert [c.customer_id for c in named.pick(LISTED)] == [9, 1]
    assert named.unlisted(LISTED) == [404]


@pytest.mark.parametrize(
    ("selection", "text", "scope"),
    [
        (CustomerSelection.first(10), "first:10", "first 10"),
        (CustomerSelection.sample(100, 42), "sample:100:42", "sample of 100 (seed 42)"),
        (CustomerSelection.of([1, 2, 3]), "ids:1,2,3", "3 customers"),
        (CustomerSelection.of([7]), "ids:7", "1 customer"),
    ],
)
def test_a_selection_travels_as_text_and_reads_as_words(
    selection: CustomerSelection, text: str, scope: str
) -> None:
    assert selection.encode() == text
    assert CustomerSelection.decode(text) == selection
    assert selection.scope == scope


@pytest.mark.parametrize("text", ["", "all", "first:0", "first:x", "ids:", "sample:5"])
def test_anything_else_is_not_a_selection(text: str) -> None:
    with pytest.raises(ValueError):
        CustomerSelection.decode(text)


def test_the_command_line_asks_for_a_selection() -> None:
    def args(**given: object) -> argparse.Namespace:
        values: dict[str, object] = {"limit": None, "sample": None, "seed": None, "customers": None}
        return argparse.Namespace(**{**values, **given})

    assert customer_selection(args()) is None
    assert customer_selection(args(limit=10)) == CustomerSelection.first(10)
    assert customer_selection(args(sample=5, seed=7)) == CustomerSelection.sample(5, 7)
    drawn = customer_selection(args(sample=5))
    assert drawn is not None and drawn.kind == "sample"  # a seed drawn, printed in its scope
    assert customer_selection(args(customers=(4, 2))) == CustomerSelection.of([4, 2])
    assert customer_ids("4, 2,9") == (4, 2, 9)
    with pytest.raises(argparse.ArgumentTypeError):
        customer_ids("4,x")


# --- a partial run ---------------------------------------------------------------------------


def test_a_limited_run_syncs_only_the_first_n_and_says_partial() -> None:
    harness = _harness()
    started = harness.start(selection=CustomerSelection.first(10))
    assert (started.started, started.listed) == (True, 10)
    harness.drain()
    (summary,) = harness.summaries
    assert summary["listed"] == 10
    assert summary["synced"] + summary["unchanged"] + summary["failed"] == 10
    assert (summary["partial"], summary["scope"]) == (True, "first 10")
    assert harness.store.run_summaries["r1"]["partial"] is True
    assert _written(harness) == set(range(1, 11))
    (alert,) = harness.notifier.alerts
    assert alert.title.startswith("Partial loyalty sync (first 10) completed")
    # Other customers' orders are not this run's "unowned" orders.
    assert summary["unownedMalformedOrders"] == 0


def test_named_customers_only() -> None:
    harness = _harness()
    started = harness.start(selection=CustomerSelection.of([4, 17, 29]))
    assert started.listed == 3
    harness.drain()
    (summary,) = harness.summaries
    assert (summary["listed"], summary["scope"]) == (3, "3 customers")
    assert _written(harness) == {4, 17, 29}


def test_a_partial_run_is_not_the_orgs_last_success() -> None:
    harness = _harness()
    harness.start(selection=CustomerSelection.sample(5, 42))
    harness.drain()
    assert harness.summaries[0]["status"] == "completed"
    assert harness.summaries[0]["failed"] == 0
    assert harness.ledger.last_success("org-1") is None  # "since last" is not moved by it
    harness.start("r2")  # a full run is
    harness.drain("r2")
    assert "partial" not in harness.summaries[1]
    assert harness.ledger.last_success("org-1") is not None


def test_a_partial_run_leaves_the_nightly_run_to_start() -> None:
    # The nightly start markers are Beat's alone: a partial run started in the night (by hand)
    # leaves the org's night to start its full run.
    harness = _harness()
    harness.store.settings["org-1"]["timezone"] = "America/Los_Angeles"
    tracker = harness.ledger
    enqueuer = RecordingEnqueuer()
    enqueue_org_run(
        "org-1", "p1", selection=CustomerSelection.first(10), runs=tracker, enqueuer=enqueuer
    )
    harness.start("p1", selection=CustomerSelection.first(10))
    harness.drain("p1")
    started: list[str] = []
    night = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)  # 02:30 in Los Angeles
    assert start_nightly_runs(
        store=harness.store,
        now=night,
        hour=2,
        window_h=4,
        mark=lambda org_id, day: tracker.mark_nightly(org_id, day, ttl_s=60),
        start=started.append,
    ) == ["org-1"]


def test_the_trigger_sends_ids_only_and_records_the_scope() -> None:
    tracker = RunTracker(fakeredis.FakeRedis())
    enqueuer = RecordingEnqueuer()
    enqueue_org_run(
        "org-1", "p1", selection=CustomerSelection.of([4, 2]), runs=tracker, enqueuer=enqueuer
    )
    (sent,) = enqueuer.org_runs
    assert sent["selection"] == "ids:4,2"
    record = tracker.run_record("p1")
    assert (record.selection, record.scope) == ("ids:4,2", "2 customers")
