"""The agents' look-up's answer, typed: the very model the API returns and documents.

``check_points`` builds it and ``GET /api/loyalty/points`` answers with it (camelCase on the
wire), so the service's value and the API's schema cannot drift apart; the CLI prints the same.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Answer(BaseModel):
    """Built from Python names, written in camelCase; a finished answer is not changed."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class CalculatedView(_Answer):
    """Points from Alleaves orders, as the last sync calculated them."""

    points: int = Field(description="Points from orders (pointsFromOrders).")
    tier: str | None = Field(description="The org's tier for these points.")
    source: str = Field(description="Always 'orders'.")


class AlpineView(_Answer):
    """Alpine IQ's balance."""

    points: int = Field(description="Alpine IQ points.")
    tier: str | None = Field(
        description="Alpine's tier when it names one of the org's tiers, else the org's tier "
        "for these points."
    )
    source: str = Field(description="Always 'alpine_iq'.")
    live: bool = Field(description="True: read just now; false: as of the last sync.")
    last_visit: str | None = Field(default=None, description="Alpine IQ's last visit, if known.")


class DisplayedView(_Answer):
    """What the customer's profile shows, by the org's source of truth."""

    points: int | None = Field(description="Points shown.")
    tier: str | None = Field(description="Tier shown.")
    source: str | None = Field(description="alpine_iq | calculated")


class PointsCheck(_Answer):
    """A customer's loyalty by phone: calculated (orders) and Alpine IQ, reconciled."""

    calculated: CalculatedView | None = Field(
        description="Points from Alleaves orders as of the last sync; null: no synced profile."
    )
    alpine: AlpineView | None = Field(
        description="Alpine IQ's balance; null: no Alpine IQ account (or none known)."
    )
    reconciled: bool | None = Field(
        description="Within the org's tolerance; null without both sides."
    )
    discrepancy: int | None = Field(description="Alpine IQ minus calculated; null without both.")
    status: str = Field(
        description="matched | within_tolerance | alpine_higher | calculated_higher | "
        "no_alpine_account | not_synced | not_found | unknown"
    )
    displayed: DisplayedView | None = Field(description="The balance to tell the customer.")
    last_sync_at: str | None = Field(description="When the profile's points were calculated.")
    customer_id: int | str | None = Field(description="The Alleaves customer of the profile.")
    phone: str = Field(description="The phone, masked to its last four digits.")
    alpine_available: bool = Field(description="Whether Alpine IQ answered this look-up.")
    note: str | None = Field(default=None, description="Why some part is missing or stale.")
