"""2% of the customers and 2% of the orders are malformed (sandbox ``--malformed-rate 0.02``):
customers without ``id_customer``, orders without a usable subtotal.

Each malformed record fails its own customer only: a customer without an id is reported by its
place in the listing (``page P #i``), a customer with a broken order by its id, with the broken
order's id in the detail. Both count as ``failed: malformed`` in the summary, by id; every other
customer is synced as the rules give.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import pytest

from tests.chaos.helpers import check_run, report, trigger, wait_final
from tests.fixtures.pipeline import running_stack
from tests.reference import expected_profiles

pytestmark = pytest.mark.chaos

PAGE_SIZE = 100


def broken(order: dict[str, Any]) -> bool:
    try:
        Decimal(str(order["subtotal"]))
    except (KeyError, InvalidOperation):
        return True
    return False


def test_malformed_customers_and_orders_are_reported_by_id_and_the_rest_synced(
    firestore_emulator: str, test_redis_url: str
) -> None:
    with running_stack(
        firestore_emulator,
        *("--customers", "300", "--seed", "31", "--orgs", "1", "--malformed-rate", "0.02"),
        redis_url=test_redis_url,
    ) as stack:
        run_id, _ = trigger(stack, "org-1")
        wait_final(stack, run_id, timeout_s=180)

        outcome = check_run(stack, run_id, allowed_failures=("malformed",))
        org = stack.org("org-1")
        customers = org["customers"]
        without_id = {
            f"page {i // PAGE_SIZE + 1} #{i % PAGE_SIZE}"
            for i, customer in enumerate(customers)
            if customer.get("id_customer") is None
        }
        ids = {c["id_customer"] for c in customers if c.get("id_customer") is not None}
        broken_orders: dict[str, set[str]] = {}
        for order in org["orders"]:
            if broken(order) and order.get("id_customer") in ids:
                broken_orders.setdefault(str(order["id_customer"]), set()).add(
                    str(order["id_order"])
                )
        assert without_id and broken_orders, "the dataset has no malformed records"
        assert set(broken_orders) == {str(cid) for cid in ids - set(expected_profiles(org))}

        summary = outcome.summary
        reported = {str(f["customerId"]): f for f in summary["failures"]}
        assert set(reported) == without_id | set(broken_orders), sorted(reported)
        assert {f["reason"] for f in reported.values()} == {"malformed"}
        for customer_id, order_ids in broken_orders.items():
            detail = reported[customer_id]["detail"]
            assert all(order_id in detail for order_id in order_ids), (customer_id, detail)
        assert summary["failedByReason"] == {"malformed": len(reported)}
        assert outcome.synced + outcome.unchanged == outcome.listed - len(reported)
        report(
            "3 malformed 2%",
            outcome,
            customers_without_id=len(without_id),
            customers_with_broken_orders=len(broken_orders),
        )
