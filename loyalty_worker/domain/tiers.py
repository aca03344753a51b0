"""Tier assignment (LOYALTY_RULES.md, "Tier")."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from loyalty_worker.domain.models import Tier


def assign_tier(points: int, tiers: Sequence[Tier]) -> str | None:
    """The tier with the highest threshold at or below ``points``; None below the lowest one.

    Sorts a copy: the order of the org's list is never relied on, nor changed.
    """
    reached = [
        tier for tier in sorted(tiers, key=lambda t: t.threshold) if tier.threshold <= points
    ]
    return reached[-1].id if reached else None


def known_tier(tier_id: str | None, tiers: Sequence[Tier]) -> str | None:
    """The org's own id for ``tier_id`` (case-insensitive), or None when it names no org tier."""
    if not tier_id:
        return None
    wanted = tier_id.strip().lower()
    return next((tier.id for tier in tiers if tier.id.lower() == wanted), None)


def validate_tiers(tiers: Sequence[Tier]) -> None:
    """Raise ValueError when a tier list cannot assign tiers (empty, duplicate ids, negative)."""
    if not tiers:
        raise ValueError("at least one tier is required")
    ids = [tier.id.lower() for tier in tiers]
    if len(set(ids)) != len(ids):
        raise ValueError("tier ids must be unique")
    if any(tier.threshold < Decimal(0) for tier in tiers):
        raise ValueError("tier thresholds must be >= 0")
