"""A chunk's Alpine IQ look-ups made side by side: every phone that needs one is looked up once,
the answers land on the right customers, and a failed look-up is left to the customer's sync."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from loyalty_worker.domain.models import AlpineProfile, Customer
from loyalty_worker.errors import TransientError
from loyalty_worker.services.customer_inputs import AlpineAnswer, CustomerWork
from loyalty_worker.services.lookups import look_up_ahead
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
