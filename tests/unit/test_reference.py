"""``tests/reference.py``, the rules read independently for the end-to-end checks, agrees with
the domain where the rules draw a line: a gap exactly at the threshold is within tolerance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from loyalty_worker.domain.models import AlpineProfile, LoyaltyRules, ReconciliationStatus
from loyalty_worker.domain.reconciliation import reconcile
from tests.reference import expected_profiles

PHONE = "5105550100"


def _org(threshold: float, calculated: int, alpine: int) -> dict[str, Any]:
    """One customer with ``calculated`` points from one order and ``alpine`` at Alpine IQ."""
    return {
        "settings": {
            "pointsPerDollar": 1,
            "discrepancyThreshold": threshold,
            "sourceOfTruth": "orders",
        },
        "customers": [{"id_customer": 7, "phone": PHONE}],
        "orders": [{"id_customer": 7, "status": "completed", "subtotal": f"{calculated}.00"}],
        "alpineContacts": [{"phone": PHONE, "points": alpine, "tier": None}],
        "profiles": [],
    }


@pytest.mark.parametrize(
    ("threshold", "calculated", "alpine", "status"),
    [
        # 1/50 and 10/100 are a hair above 0.02 and 0.1 as floats; exactly on the line here.
        (0.02, 49, 50, ReconciliationStatus.WITHIN_TOLERANCE),
        (0.02, 98, 100, ReconciliationStatus.WITHIN_TOLERANCE),
        (0.1, 90, 100, ReconciliationStatus.WITHIN_TOLERANCE),
        (0.15, 17, 20, ReconciliationStatus.WITHIN_TOLERANCE),
        (0.02, 97, 100, ReconciliationStatus.ALPINE_HIGHER),
        (0.1, 100, 89, ReconciliationStatus.CALCULATED_HIGHER),
    ],
)
def test_the_reference_and_the_domain_draw_the_threshold_alike(
    threshold: float, calculated: int, alpine: int, status: ReconciliationStatus
) -> None:
    expected = expected_profiles(_org(threshold, calculated, alpine))[7]
    assert expected["pointsFromOrders"] == calculated
    assert expected["loyaltyStatus"] == status.value
    assert expected["loyaltyReconciled"] is (status is ReconciliationStatus.WITHIN_TOLERANCE)
    rules = LoyaltyRules(discrepancy_threshold=Decimal(str(threshold)))
    assert reconcile(calculated, AlpineProfile(points=alpine), rules).status is status
