"""Starting a run as a trigger asks: ``since`` parsed, an org that cannot be served fails the
run with a summary and one alert, like a run whose planning fails."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

import fakeredis
import pytest

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.run import RunStatus, RunSummaryDocument
from loyalty_worker.errors import MalformedRecord, PermanentError, TransientError
from loyalty_worker.services.run.closing import close_run, summarize_batch
from loyalty_worker.services.run.context import BatchOptions, OrgAdapters, RunDispatch, RunPorts
from loyalty_worker.services.run.start import Asked, parse_since, start_run
from loyalty_worker.services.sync.inputs import CustomerWork
from loyalty_worker.services.sync.retries import Attempt, RetryLater
from tests.fakes import FakeAlleaves, FakeAlpine, FakeOrg, InMemoryProfileStore, RecordingNotifier

OPTIONS = BatchOptions(
    history_start=date(2026, 1, 1), window_days=30, parallelism=2, lock_ttl_s=60, chunk_size=5
)


class Trigger:
    """``start_run`` over fakes; the summary is written at once when the run asks for it."""

    def __init__(self) -> None:
        self.store = InMemoryProfileStore()
        self.store.settings["org-1"] = {}
        self.ledger = RunTracker(fakeredis.FakeRedis())
        self.notifier = RecordingNotifier()
        self.alleaves = FakeAlleaves([Customer(1, "5550000001")], [], page_size=5)
        self.alpine = FakeAlpine({"5550000001": AlpineProfile(0)})
        self.chunks: list[list[CustomerWork]] = []
        self.summaries: list[RunSummaryDocument] = []
        self.last_success: float | None = None

    def org_for(self, org_id: str) -> OrgAdapters:
        return FakeOrg(self.store.get_org_settings(org_id), self.alleaves, self.alpine)

    def start(self, org_id: str, run_id: str = "r1", since: str | None = None) -> Any:
        def summarize(status: str) -> None:
            self.summaries.append(
                summarize_batch(
                    run_id=run_id,
                    ledger=self.ledger,
                    store=self.store,
                    notifier=self.notifier,
                    status=RunStatus(status),
                )
            )

        return start_run(
            org_id,
            run_id,
            Asked(since=since),
            last_success=lambda _org_id: self.last_success,
            ports=RunPorts(self.org_for, self.store, self.ledger, OPTIONS),
            dispatch=RunDispatch(enqueue=self.chunks.append, summarize=summarize),
        )


@pytest.mark.parametrize(
    ("value", "last_success", "expected"),
    [
        (None, None, None),
        (None, 1_780_000_000.0, None),
        ("2026-02-28", None, date(2026, 2, 28)),
        ("2026-02-28T23:15:00+00:00", None, date(2026, 2, 28)),
        ("last", None, None),  # no earlier success: a full run
        ("last", datetime(2026, 3, 1, 1, 30, tzinfo=UTC).timestamp(), date(2026, 3, 1)),
    ],
)
def test_since_is_a_day_or_none(
    value: str | None, last_success: float | None, expected: date | None
) -> None:
    assert parse_since(value, last_success) == expected


def test_an_unknown_org_fails_its_run_with_a_summary_and_one_alert() -> None:
    trigger = Trigger()
    started = trigger.start("org-404")
    assert (started.run_id, started.started) == ("r1", False)
    assert "org-404" in started.message
    (summary,) = trigger.summaries
    assert summary["status"] == "failed"
    assert summary["orgId"] == "org-404"
    assert summary["listed"] == 0
    assert str(summary["error"]).startswith("unknown_org")
    assert trigger.store.run_summaries["r1"]["status"] == "failed"
    (alert,) = trigger.notifier.alerts
    assert alert.severity == "error"
    assert trigger.ledger.run_record("r1").status is RunStatus.FAILED
    assert trigger.chunks == []


def test_an_org_that_cannot_be_served_fails_the_same_way() -> None:
    trigger = Trigger()

    def no_credentials(org_id: str) -> OrgAdapters:
        raise PermanentError("settings", f"org {org_id} has no alleaves/alpine credentials")

    trigger.org_for = no_credentials  # type: ignore[method-assign]
    assert trigger.start("org-1").started is False
    (summary,) = trigger.summaries
    assert summary["status"] == "failed"
    assert len(trigger.notifier.alerts) == 1


def test_a_known_org_starts_with_since_from_its_last_success() -> None:
    trigger = Trigger()
    trigger.last_success = datetime(2026, 2, 20, 3, 0, tzinfo=UTC).timestamp()
    started = trigger.start("org-1", since="last")
    assert (started.started, started.listed) == (True, 1)
    assert trigger.ledger.run_record("r1").since == "2026-02-20"
    assert started.to_dict() == {"runId": "r1", "started": True, "listed": 1, "message": ""}


def test_close_run_returns_a_summary_the_watchdog_wrote_already() -> None:
    trigger = Trigger()
    trigger.start("org-404")  # failed and summarised
    notifiers: list[str] = []

    def notifier_for(org_id: str) -> RecordingNotifier:
        notifiers.append(org_id)
        return trigger.notifier

    summary = close_run(
        "r1",
        status=RunStatus.COMPLETED,
        ledger=trigger.ledger,
        store=trigger.store,
        notifier_for=notifier_for,
        attempt=Attempt(),
    )
    assert summary["status"] == "failed"
    assert notifiers == []  # no second summary, no second alert
    assert len(trigger.notifier.alerts) == 1


def test_close_run_asks_for_a_retry_when_firestore_is_down() -> None:
    trigger = Trigger()
    trigger.ledger.start("r2", "org-1")

    def unavailable(org_id: str) -> RecordingNotifier:
        raise TransientError("firestore", "503")

    with pytest.raises(RetryLater) as raised:
        close_run(
            "r2",
            status=RunStatus.COMPLETED,
            ledger=trigger.ledger,
            store=trigger.store,
            notifier_for=unavailable,
            attempt=Attempt(retries=3, max_retries=None, cap_s=30),
        )
    assert raised.value.countdown == 8


@pytest.mark.parametrize("plan_lookups", [True, False])
def test_the_plans_look_ups_follow_the_setting(plan_lookups: bool) -> None:
    trigger = Trigger()
    looked_up, history_held = threading.Event(), threading.Event()
    lookup, fetch = trigger.alpine.lookup, trigger.alleaves.fetch_order_page

    def signalling_lookup(phone: str) -> AlpineProfile | None:
        looked_up.set()
        return lookup(phone)

    def waiting_fetch(start: date, end: date, page: int) -> list[Order | MalformedRecord]:
        # The history lasts until a look-up is made, or a second.
        if not history_held.is_set():
            looked_up.wait(1.0)
            history_held.set()
        return fetch(start, end, page)

    trigger.alpine.lookup = signalling_lookup  # type: ignore[method-assign]
    trigger.alleaves.fetch_order_page = waiting_fetch  # type: ignore[method-assign]
    options = dataclasses.replace(OPTIONS, plan_lookups=plan_lookups)
    with ThreadPoolExecutor(max_workers=2) as pool:
        start_run(
            "org-1",
            "r1",
            Asked(),
            last_success=lambda _org_id: None,
            ports=RunPorts(trigger.org_for, trigger.store, trigger.ledger, options, lookups=pool),
            dispatch=RunDispatch(enqueue=trigger.chunks.append, summarize=lambda _s: None),
        )

    ((work,),) = trigger.chunks
    if plan_lookups:  # answered in the plan: the chunk looks nobody up
        assert trigger.alpine.lookups == ["5550000001"]
        assert work.phone_to_look_up() is None
    else:
        assert trigger.alpine.lookups == []
        assert work.phone_to_look_up() == "5550000001"
