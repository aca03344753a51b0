"""Discrepancy reviews as the dashboard keeps them: a person's move (``change_review``) and the
syncs' (``settle_reviews``), both decided by ``domain.review`` and stored with their audit entry.

Review state lives beside the profiles, never in them (``DashboardStore.write_review``). A
review records the discrepancy it was made at: when a later sync changes that customer's
discrepancy it reads ``open`` again, and when a later run finds the sources agree it reads
``resolved`` with outcome ``matched``; ``settle_reviews`` stores those changes, each with its
audit entry by ``sync``, when the customer's row is next listed (or the list of the state it
was stored in is next read).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import Field

from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.domain.review import (
    Discrepancy,
    Move,
    Outcome,
    Review,
    ReviewChange,
    ReviewState,
    decide,
    settle,
)
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.services.dashboard.page import NotFound, PageModel


class ReviewChanged(PageModel):
    """A review as a person's move left it."""

    customer_id: int
    state: ReviewState
    outcome: Outcome | None = Field(description="Why it was resolved (resolved only).")
    comment: str | None
    discrepancy: int | None = Field(description="The gap it was reviewed at.")
    loyalty_status: str | None = Field(description="The status it was reviewed at.")
    tier: str | None
    opened_at: str | None = Field(description="Since when the discrepancy is open (ISO 8601).")
    updated_at: str | None
    updated_by: str | None = Field(description="The sign-in name, or the token's fingerprint.")
    entry_id: str = Field(description="The change's audit entry (what an undo names).")


def seen(profile: ProfileDocument | None) -> Discrepancy:
    """A profile's discrepancy as a review sees it (no profile: nothing to review)."""
    profile = profile or {}
    return Discrepancy(
        status=profile.get("loyaltyStatus"),
        amount=profile.get("loyaltyDiscrepancy"),
        tier=profile.get("tier"),
    )


def change_review(
    org_id: str, customer_id: int, move: Move, *, by: str, store: DashboardStore, now: datetime
) -> ReviewChanged:
    """Move a customer's review: acknowledge, resolve (with an outcome and a comment) or
    re-open. NotFound when the customer has no profile; ReviewRefused for a move not allowed."""
    profile = store.get_profile(org_id, customer_id)
    if profile is None:
        raise NotFound("customer", customer_id)
    change = decide(store.get_review(org_id, customer_id), seen(profile), move, by=by, at=now)
    store.write_review(org_id, customer_id, change)
    return shown(customer_id, change)


def shown(customer_id: int, change: ReviewChange) -> ReviewChanged:
    """A stored change as its answer shows it."""
    review = change.review
    return ReviewChanged(
        customer_id=customer_id,
        state=review.state,
        outcome=review.outcome,
        comment=review.comment,
        discrepancy=review.discrepancy,
        loyalty_status=review.loyalty_status,
        tier=review.tier,
        opened_at=review.opened_at,
        updated_at=review.updated_at,
        updated_by=review.updated_by,
        entry_id=change.audit.id,
    )


def settle_reviews(
    org_id: str,
    profiles: Mapping[int, ProfileDocument],
    reviews: Mapping[int, Review],
    store: DashboardStore,
    *,
    now: datetime,
) -> dict[int, Review]:
    """Store the review changes the syncs made (re-opened, or resolved as matched), each with
    its audit entry by ``sync``; ``profiles`` holds the reviewed customers' profiles (missing:
    no profile). Returns the reviews as stored now."""
    settled: dict[int, Review] = {}
    for customer_id, review in reviews.items():
        change = settle(review, seen(profiles.get(customer_id)), at=now)
        if change is not None:
            store.write_review(org_id, customer_id, change)
            review = change.review
        settled[customer_id] = review
    return settled
