"""The one rule for retrying a transient error outside HTTP, and both ways it is applied: in
this thread (a plan's reads) and as a Celery retry (``Attempt``, ``RetryLater``)."""

from __future__ import annotations

import pytest

from loyalty_worker.errors import AuthError, DeadlineExceeded, TransientError
from loyalty_worker.services.sync.retries import Attempt, Retries, RetryLater

BUSY = TransientError("alleaves", "429 burst")


def test_the_pause_doubles_from_the_first_up_to_its_cap() -> None:
    assert [Retries(None).wait_s(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert [Retries(4, first_s=2.0).wait_s(n) for n in (1, 2, 3)] == [2, 4, 8]
    assert Retries(None, cap_s=30).wait_s(7) == 30


def test_only_a_transient_error_with_tries_left_is_tried_again() -> None:
    retries = Retries(3, first_s=2.0)
    assert [retries.after(BUSY, n) for n in (1, 2, 3)] == [2.0, 4.0, None]
    assert retries.after(AuthError("alpine", "401"), 1) is None
    assert retries.after(ValueError("a bug"), 1) is None
    assert Retries(None).after(BUSY, 50) == 60.0  # no limit: the task's own decides


def test_the_longest_time_adds_every_try_and_every_pause() -> None:
    assert Retries(4, first_s=2.0).longest_s(13.0) == 4 * 13.0 + 2 + 4 + 8
    with pytest.raises(ValueError, match="no longest time"):
        Retries(None).longest_s(1.0)


def test_in_this_thread_a_call_pauses_between_its_tries() -> None:
    outcomes: list[Exception | str] = [BUSY, BUSY, "read"]
    pauses: list[float] = []

    def read() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert Retries(3, first_s=2.0).call(read, what="a read", sleep=pauses.append) == "read"
    assert pauses == [2.0, 4.0]


def test_in_this_thread_the_last_error_or_a_permanent_one_is_raised() -> None:
    pauses: list[float] = []
    calls: list[int] = []

    def busy() -> None:
        calls.append(1)
        raise BUSY

    with pytest.raises(TransientError):
        Retries(3, first_s=2.0).call(busy, what="a read", sleep=pauses.append)
    assert (len(calls), pauses) == (3, [2.0, 4.0])

    def refused() -> None:
        raise AuthError("alpine", "401")

    with pytest.raises(AuthError):
        Retries(3).call(refused, what="a read", sleep=pauses.append)
    assert pauses == [2.0, 4.0]


def test_in_this_thread_a_spent_deadline_is_not_tried_again() -> None:
    """The budget it ran out of is this process's: a Celery retry starts a new one."""

    def late() -> None:
        raise DeadlineExceeded("plan", 1200.0)

    pauses: list[float] = []
    with pytest.raises(DeadlineExceeded):
        Retries(3).call(late, what="planning", sleep=pauses.append)
    assert pauses == []
    with pytest.raises(RetryLater):
        Attempt(retries=0, max_retries=3).retry_or_fail(DeadlineExceeded("chunk", 120.0))


def test_a_task_retries_a_transient_error_while_it_has_retries_left() -> None:
    with pytest.raises(RetryLater) as raised:
        Attempt(retries=2, max_retries=5).retry_or_fail(BUSY)
    assert (raised.value.error, raised.value.countdown) == (BUSY, 4)
    Attempt(retries=5, max_retries=5).retry_or_fail(BUSY)  # the last one: no retry
    Attempt(retries=0, max_retries=5).retry_or_fail(AuthError("alpine", "401"))
    with pytest.raises(RetryLater) as raised:
        Attempt(retries=50, max_retries=None, cap_s=30).retry_or_fail(BUSY)
    assert raised.value.countdown == 30


def test_a_task_waiting_its_turn_retries_whatever_its_retries() -> None:
    with pytest.raises(RetryLater) as raised:
        Attempt(retries=9, max_retries=2).wait(BUSY)
    assert raised.value.countdown == 60
