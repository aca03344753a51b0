"""Values the loyalty rules work on: clean, typed, immutable."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from decimal import Decimal


class SourceOfTruth(enum.StrEnum):
    ALPINE_IQ = "alpine_iq"
    ORDERS = "orders"


class TierSource(enum.StrEnum):
    ALPINE_IQ = "alpine_iq"
    CALCULATED = "calculated"


class ReconciliationStatus(enum.StrEnum):
    NO_ALPINE_ACCOUNT = "no_alpine_account"
    MATCHED = "matched"
    WITHIN_TOLERANCE = "within_tolerance"
    ALPINE_HIGHER = "alpine_higher"
    CALCULATED_HIGHER = "calculated_higher"


class Action(enum.StrEnum):
    NONE = "none"
    ALERT_ADMIN = "alert_admin"
    AUTO_ADJUST = "auto_adjust"


@dataclass(frozen=True, slots=True)
class Tier:
    id: str
    threshold: Decimal
    name: str | None = None


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("bronze", Decimal(0), "Bronze"),
    Tier("silver", Decimal(500), "Silver"),
    Tier("gold", Decimal(1000), "Gold"),
    Tier("platinum", Decimal(2500), "Platinum"),
)


@dataclass(frozen=True, slots=True)
class LoyaltyRules:
    """An org's loyalty settings, already validated."""

    points_per_dollar: Decimal = Decimal(1)
    equity_multiplier: Decimal = Decimal(1)
    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    discrepancy_threshold: Decimal = Decimal("0.10")
    source_of_truth: SourceOfTruth = SourceOfTruth.ALPINE_IQ
    auto_adjust: bool = False


@dataclass(frozen=True, slots=True)
class Order:
    """One Alleaves order, amounts already parsed as Decimal."""

    order_id: int
    customer_id: int
    status: str
    subtotal: Decimal
    discount: Decimal = Decimal(0)
    refunded_amount: Decimal = Decimal(0)
    # When Alleaves created it (UTC, ``2026-12-01T18:22:05Z``); None when unknown.
    created_at: str | None = None

    @property
    def placed_on(self) -> date | None:
        """The day it was created, in UTC (None: not known, e.g. an order of an old ledger)."""
        return date.fromisoformat(self.created_at[:10]) if self.created_at else None


@dataclass(frozen=True, slots=True)
class Customer:
    """One Alleaves customer, as much as the loyalty rules need."""

    customer_id: int
    phone: str | None = None
    alpine_user_code: str | None = None
    created_on: date | None = None
    # Contact details (``domain.contact``): read from the listing, never sent in a task message.
    name: str | None = None
    last_name: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class AlpineProfile:
    """A customer's loyalty account at Alpine IQ."""

    points: int
    tier: str | None = None
    last_visit: str | None = None
    contact_id: str | None = None


@dataclass(frozen=True, slots=True)
class PointsCalculation:
    base_points: int
    equity_bonus: int
    points_from_orders: int
    orders_processed: int
    total_spent: Decimal
    # Each counted order's eligible spend, by order id: the customer's order ledger.
    counted: tuple[tuple[int, Decimal], ...] = ()
    # When each counted order was created, by order id (those whose date is known).
    counted_at: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Reconciliation:
    status: ReconciliationStatus
    discrepancy: int | None
    reconciled: bool | None
    action: Action


@dataclass(frozen=True, slots=True)
class DisplayedLoyalty:
    points: int
    tier: str | None
    tier_source: TierSource


@dataclass(frozen=True, slots=True)
class Adjustment:
    """What ``auto_adjust`` would set: recorded in the result, never written to Alpine IQ."""

    source: str
    from_points: int
    to_points: int


@dataclass(frozen=True, slots=True)
class LoyaltyOutcome:
    """Everything the rules decide for one customer."""

    calculation: PointsCalculation
    alpine: AlpineProfile | None
    reconciliation: Reconciliation
    displayed: DisplayedLoyalty
    adjustment: Adjustment | None = None
