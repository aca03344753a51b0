"""Sync one customer: calculate, look up Alpine IQ, reconcile, merge-write the profile."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.domain.points import calculate_points
from loyalty_worker.domain.profile import build_profile_update
from loyalty_worker.domain.reconciliation import decide
from loyalty_worker.errors import PermanentError
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports import LoyaltyLookup, ProfileStore
from loyalty_worker.services.results import SyncResult, SyncStatus
from loyalty_worker.services.work import CustomerWork


def sync_customer(
    org: OrgSettings,
    work: CustomerWork,
    *,
    store: ProfileStore,
    alpine: LoyaltyLookup,
    run_id: str | None = None,
    dry_run: bool = False,
) -> SyncResult:
    """Apply the loyalty rules to one customer and store the result.

    Transient errors (Alpine IQ or Firestore unavailable) propagate so the caller can retry;
    permanent ones become a ``failed`` result with the error's reason. A profile the run read
    ahead (``work.profile_known``) spares the read here.
    """
    now = datetime.now(UTC)
    customer = work.customer
    phone = normalize_phone(customer.phone)
    stamp = now.isoformat()
    if work.malformed_orders:
        return SyncResult(
            org.org_id,
            customer.customer_id,
            SyncStatus.FAILED,
            stamp,
            reason="malformed",
            detail="malformed orders: " + ", ".join(work.malformed_orders),
            phone=phone,
            dry_run=dry_run,
        )
    try:
        profile: Mapping[str, Any] | None = work.profile
        if not work.profile_known:
            profile = store.get_profiles(org.org_id, [customer.customer_id]).get(
                customer.customer_id
            )
        equity = bool(profile and profile.get("equityStatus") is True)
        calculation = calculate_points(work.orders, org.rules(), equity=equity)
        if work.alpine is not None:
            alpine_profile = work.alpine.profile
        else:
            alpine_profile = alpine.lookup(phone) if phone else None
        outcome = decide(calculation, alpine_profile if phone else None, org.rules())
        update = build_profile_update(org.org_id, customer, outcome, run_id=run_id, now=now)
        changed = update.changes(profile)
        if changed and not dry_run:
            store.write_profiles([update])
    except PermanentError as exc:
        return SyncResult(
            org.org_id,
            customer.customer_id,
            SyncStatus.FAILED,
            stamp,
            reason=exc.reason,
            detail=str(exc),
            phone=phone,
            dry_run=dry_run,
        )
    previous_tier = profile.get("tier") if profile else None
    return SyncResult(
        org.org_id,
        customer.customer_id,
        SyncStatus.SYNCED if changed else SyncStatus.UNCHANGED,
        stamp,
        outcome=outcome,
        phone=phone,
        previous_tier=previous_tier if isinstance(previous_tier, str) else None,
        dry_run=dry_run,
    )
