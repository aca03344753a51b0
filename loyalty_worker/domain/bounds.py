"""The sane bounds of the numbers the loyalty rules take in and give out.

A value outside them is not a customer's real history but bad data (a typo, a test record, a
provider's bug): the record is reported as malformed instead of being computed with. The bounds
keep every number a profile holds exact in Firestore (int64) and in Markitbot's JavaScript
readers (integers up to 2**53), and every amount well inside ``Decimal``'s default precision.
"""

from __future__ import annotations

from decimal import Decimal

# Ids of customers and orders: integers a JavaScript reader holds exactly.
MAX_ID = 2**53 - 1
# One order's subtotal, discount or refund, in dollars: far above any dispensary order.
MAX_AMOUNT = Decimal(1_000_000)
# A points balance (Alpine IQ's, or calculated from orders): a trillion, far below 2**53.
MAX_POINTS = 10**12


class OutOfBounds(ValueError):
    """A number the rules computed or read lies outside its bound: the customer's data is bad."""


def check_points(points: int, what: str) -> int:
    """``points`` when within ``[0, MAX_POINTS]``; OutOfBounds otherwise."""
    if not 0 <= points <= MAX_POINTS:
        raise OutOfBounds(f"{what} {points} outside [0, {MAX_POINTS}]")
    return points
