"""The look-up threads serve the least served run first, not first come (``turn_pool``)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from loyalty_worker import log_context
from loyalty_worker.turn_pool import TurnPool


def test_a_run_that_starts_late_is_served_first_until_it_catches_up() -> None:
    pool = TurnPool(1)
    gate, taken, order, call = _gated()

    token = log_context.begin(run_id="big")
    gate.set()
    for i in range(3):  # the big run has had three calls
        pool.submit(call, f"big-{i}").result(timeout=5)
    gate.clear()
    taken.clear()
    futures = [pool.submit(call, "big-3")]
    assert taken.wait(5)  # the thread holds its fourth: the rest of the backlog waits
    futures += [pool.submit(call, f"big-{i}") for i in range(4, 7)]
    log_context.end(token)
    token = log_context.begin(run_id="small")
    futures += [pool.submit(call, f"small-{i}") for i in range(5)]
    log_context.end(token)
    gate.set()
    for future in futures:
        future.result(timeout=5)
    pool.shutdown()
    # the small run first, not after the big one's backlog, until it has had as many; then in
    # turn (the big run, served longest ago, first)
    small_first = ["small-0", "small-1", "small-2", "small-3"]
    assert order[4:] == [*small_first, "big-4", "small-4", "big-5", "big-6"]


def test_calls_run_with_the_submitters_context_and_leave_none_behind() -> None:
    pool = TurnPool(2)
    token = log_context.begin(run_id="r1", org_id="org-1")
    seen = pool.submit(lambda: dict(log_context.current())).result(timeout=5)
    log_context.end(token)
    after = pool.submit(lambda: dict(log_context.current())).result(timeout=5)
    pool.shutdown()
    assert seen == {"run_id": "r1", "org_id": "org-1"}
    assert after == {}


def test_results_and_errors_reach_the_caller() -> None:
    pool = TurnPool(4)
    assert [f.result(timeout=5) for f in [pool.submit(pow, 2, n) for n in range(8)]] == [
        2**n for n in range(8)
    ]
    failing = pool.submit(int, "not a number")
    with pytest.raises(ValueError):
        failing.result(timeout=5)
    pool.shutdown()


def test_every_thread_works_at_once() -> None:
    pool = TurnPool(4)
    barrier = threading.Barrier(4, timeout=5)
    futures = [pool.submit(barrier.wait) for _ in range(4)]
    assert sorted(f.result(timeout=5) for f in futures) == [0, 1, 2, 3]
    pool.shutdown()


def test_shut_down_it_takes_no_more_and_cancels_what_waits_when_asked() -> None:
    pool = TurnPool(1)
    gate, started = threading.Event(), threading.Event()

    def first() -> bool:
        started.set()
        return gate.wait(5)

    running = pool.submit(first)
    waiting = pool.submit(lambda: None)
    assert started.wait(5)
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert running.result(timeout=5) is True
    assert waiting.cancelled()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


def test_runs_served_alike_take_turns() -> None:
    pool = TurnPool(1)
    gate, taken, order, call = _gated()

    futures = []
    for run in ("a", "b"):
        token = log_context.begin(run_id=run)
        futures += [pool.submit(call, f"{run}-{i}") for i in range(3)]
        log_context.end(token)
        assert taken.wait(5)  # a's first call holds the thread while the rest queue
    gate.set()
    for future in futures:
        future.result(timeout=5)
    pool.shutdown()
    # b is behind a by one call, then they alternate
    assert order == ["a-0", "b-0", "a-1", "b-1", "a-2", "b-2"]


def _gated() -> tuple[threading.Event, threading.Event, list[str], Callable[[str], None]]:
    """A call that says it was taken, waits for the gate, then records its name in order."""
    gate, taken = threading.Event(), threading.Event()
    order: list[str] = []

    def call(name: str) -> None:
        taken.set()
        gate.wait(5)
        order.append(name)

    return gate, taken, order, call
