"""Alpine IQ look-ups made ahead. A chunk's, side by side: every phone that needs one is looked
up once, the answers land on the right customers, and a failed look-up is left to the customer's
sync. A plan's, beside the history: stopped when the history is in, keeping what was answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from loyalty_worker.domain.models import AlpineProfile, Customer
from loyalty_worker.errors import TransientError
from loyalty_worker.services.sync.inputs import AlpineAnswer, CustomerWork
from loyalty_worker.services.sync.lookups import PlanLookups, look_up_ahead
from tests.fakes import FakeAlpine


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def _works() -> list[CustomerWork]:
    return [
        CustomerWork(Customer(1, "(555) 000-0001")),  # an account
        CustomerWork(Customer(2, "5550000002")),  # no account: 404
        CustomerWork(Customer(3, None)),  # no phone: nothing to look up
        CustomerWork(Customer(4, "5550000004"), alpine=AlpineAnswer(AlpineProfile(1))),  # known
    ]


def test_each_phone_needing_a_look_up_gets_its_own_answer(pool: ThreadPoolExecutor) -> None:
    alpine = FakeAlpine({"5550000001": AlpineProfile(40, "Gold")})
    works = _works()

    ahead = look_up_ahead(works, alpine, pool)

    assert sorted(alpine.lookups) == ["5550000001", "5550000002"]
    assert [w.customer.customer_id for w in ahead] == [1, 2, 3, 4]
    assert ahead[0].alpine == AlpineAnswer(AlpineProfile(40, "Gold"))
    assert ahead[1].alpine == AlpineAnswer(None)
    assert ahead[2] is works[2] and ahead[3] is works[3]
    # Answered ahead: the customers' syncs look nothing up again.
    assert all(w.phone_to_look_up() is None for w in ahead)


def test_a_failed_look_up_is_left_to_the_customers_sync(pool: ThreadPoolExecutor) -> None:
    alpine = FakeAlpine({"5550000001": AlpineProfile(40)})
    alpine.error = TransientError("alpine_iq", "server error (503)")
    works = _works()

    ahead = look_up_ahead(works, alpine, pool)

    assert ahead == works
    assert ahead[0].phone_to_look_up() == "5550000001"


def test_without_a_pool_nothing_is_looked_up_ahead() -> None:
    alpine = FakeAlpine({"5550000001": AlpineProfile(40)})
    works = _works()

    assert look_up_ahead(works, alpine, None) == works
    assert alpine.lookups == []


class HeldAlpine(FakeAlpine):
    """Look-ups that wait for ``release`` (each counted as it starts)."""

    def __init__(self, accounts: dict[str, AlpineProfile]) -> None:
        super().__init__(accounts)
        self.release = threading.Event()

    def lookup(self, phone: str) -> AlpineProfile | None:
        answer = super().lookup(phone)
        assert self.release.wait(10)
        return answer


def _wait_for(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "not within 10 s"
        time.sleep(0.005)


def test_a_plans_look_ups_answer_every_phone_they_reach(pool: ThreadPoolExecutor) -> None:
    alpine = FakeAlpine({"5550000001": AlpineProfile(40, "Gold")})
    phones = [f"555000{i:04d}" for i in range(1, 21)]

    lookups = PlanLookups(alpine, pool, phones, queued=3)
    # Every answer, not the last phone's: the pool's threads finish in any order.
    _wait_for(lambda: all(lookups.answer(phone) is not None for phone in phones))

    assert lookups.stop() == 20
    assert sorted(alpine.lookups) == phones  # each once
    assert lookups.answer("5550000001") == AlpineAnswer(AlpineProfile(40, "Gold"))
    assert lookups.answer("5550000002") == AlpineAnswer(None)  # looked up: no account
    assert lookups.answer("5559999999") is None  # never looked up: its chunk will


def test_stopping_drops_the_look_ups_not_started(pool: ThreadPoolExecutor) -> None:
    alpine = HeldAlpine({"5550000001": AlpineProfile(40)})
    phones = [f"555000{i:04d}" for i in range(1, 101)]

    lookups = PlanLookups(alpine, pool, phones, queued=6)
    _wait_for(lambda: len(alpine.lookups) == 4)  # the pool's 4 threads, all held
    assert lookups.stop() == 0  # the history is in: nothing answered yet
    alpine.release.set()
    _wait_for(lambda: all(lookups.answer(p) is not None for p in phones[:4]))

    # The 4 running ones finish and are kept (a work built later takes them); the 2 queued
    # in the pool and the 94 never handed over are not looked up.
    assert sorted(alpine.lookups) == phones[:4]
    assert lookups.answer("5550000001") == AlpineAnswer(AlpineProfile(40))
    assert all(lookups.answer(p) is None for p in phones[4:])


def test_a_failed_look_up_of_a_plan_is_left_to_the_chunk(pool: ThreadPoolExecutor) -> None:
    alpine = FakeAlpine({"5550000001": AlpineProfile(40)})
    alpine.error = TransientError("alpine_iq", "server error (503)")

    lookups = PlanLookups(alpine, pool, ["5550000001"])
    _wait_for(lambda: len(alpine.lookups) == 1)

    assert lookups.stop() == 0
    assert lookups.answer("5550000001") is None
