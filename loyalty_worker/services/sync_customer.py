"""Sync one customer: calculate, look up Alpine IQ, reconcile, merge-write the profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.domain.points import calculate_points
from loyalty_worker.domain.profile import ProfileUpdate, build_profile_update
from loyalty_worker.domain.reconciliation import decide
from loyalty_worker.errors import PermanentError, TransientError
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports import LoyaltyLookup, ProfileStore
from loyalty_worker.services.customer_inputs import PROFILE_FIELDS, CustomerWork, inputs_digest
from loyalty_worker.services.results import SyncResult, SyncStatus


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one customer's sync decided: its result, and the write it needs (None: no write)."""

    result: SyncResult
    update: ProfileUpdate | None


def evaluate_customer(
    org: OrgSettings,
    work: CustomerWork,
    *,
    store: ProfileStore,
    alpine: LoyaltyLookup,
    run_id: str | None = None,
    dry_run: bool = False,
) -> Evaluation:
    """Apply the loyalty rules to one customer; the write is left to the caller.

    Transient errors (Alpine IQ or Firestore unavailable) propagate so the caller can retry;
    permanent ones become a ``failed`` result with the error's reason. A profile the run read
    ahead (``work.profile_known``) spares the read here.
    """
    now = datetime.now(UTC)
    rules = org.rules()
    customer = work.customer
    phone = normalize_phone(customer.phone)
    stamp = now.isoformat()
    if work.malformed_orders:
        detail = "malformed orders: " + ", ".join(work.malformed_orders)
        return Evaluation(_failed(org, work, stamp, "malformed", detail, dry_run), None)
    try:
        profile: Mapping[str, Any] | None = work.profile
        if not work.profile_known:
            profile = store.get_profiles(org.org_id, [customer.customer_id], PROFILE_FIELDS).get(
                customer.customer_id
            )
        equity = bool(profile and profile.get("equityStatus") is True)
        calculation = calculate_points(work.orders, rules, equity=equity)
        if work.alpine is not None:  # answered ahead: the run matched the phone already
            alpine_profile = work.alpine.profile
        else:
            alpine_profile = alpine.lookup(phone) if phone else None
    except PermanentError as exc:
        return Evaluation(_failed(org, work, stamp, exc.reason, str(exc), dry_run), None)
    outcome = decide(calculation, alpine_profile, rules)
    update = build_profile_update(
        org.org_id, customer, outcome, run_id=run_id, now=now, phone_hash=work.hashed_phone
    )
    changed = update.changes(profile)
    previous_tier = profile.get("tier") if profile else None
    result = SyncResult(
        org.org_id,
        customer.customer_id,
        SyncStatus.SYNCED if changed else SyncStatus.UNCHANGED,
        stamp,
        outcome=outcome,
        phone=customer.phone,
        previous_tier=previous_tier if isinstance(previous_tier, str) else None,
        dry_run=dry_run,
        inputs=inputs_digest(rules, customer, alpine_profile, work.phone_hash),
    )
    if not changed or dry_run:
        return Evaluation(result, None)
    entry = update.with_history(profile, run_id=run_id, at=now, adjustment=outcome.adjustment)
    return Evaluation(result, entry)


def _failed(
    org: OrgSettings, work: CustomerWork, stamp: str, reason: str, detail: str, dry_run: bool
) -> SyncResult:
    return SyncResult(
        org.org_id,
        work.customer.customer_id,
        SyncStatus.FAILED,
        stamp,
        reason=reason,
        detail=detail,
        phone=work.customer.phone,
        dry_run=dry_run,
    )


def sync_customer(
    org: OrgSettings,
    work: CustomerWork,
    *,
    store: ProfileStore,
    alpine: LoyaltyLookup,
    run_id: str | None = None,
    dry_run: bool = False,
) -> SyncResult:
    """Evaluate one customer and merge-write the profile when anything changed."""
    evaluation = evaluate_customer(
        org, work, store=store, alpine=alpine, run_id=run_id, dry_run=dry_run
    )
    if evaluation.update is None:
        return evaluation.result
    try:
        store.write_profiles([evaluation.update])
    except PermanentError as exc:
        stamp = evaluation.result.updated_at
        return _failed(org, work, stamp, exc.reason, str(exc), dry_run)
    return evaluation.result


@dataclass
class ChunkOutcome:
    """A chunk's finished results, and the customers to retry one by one."""

    results: list[SyncResult] = field(default_factory=list)
    retry: list[tuple[CustomerWork, TransientError]] = field(default_factory=list)


def sync_chunk(
    org: OrgSettings,
    works: Sequence[CustomerWork],
    *,
    store: ProfileStore,
    alpine: LoyaltyLookup,
    run_id: str | None = None,
    dry_run: bool = False,
) -> ChunkOutcome:
    """Evaluate a chunk of customers and write their changed profiles in one batched call.

    A customer whose evaluation hits a transient error is handed back for a retry of its own,
    so one slow look-up does not hold up the chunk. A transient error of the batched write
    propagates: the whole chunk is retried (the sync is idempotent).
    """
    outcome = ChunkOutcome()
    evaluations: list[Evaluation] = []
    for work in works:
        try:
            evaluations.append(
                evaluate_customer(
                    org, work, store=store, alpine=alpine, run_id=run_id, dry_run=dry_run
                )
            )
        except TransientError as exc:
            outcome.retry.append((work, exc))
    updates = [e.update for e in evaluations if e.update is not None]
    try:
        if updates:
            store.write_profiles(updates)
        outcome.results.extend(e.result for e in evaluations)
    except PermanentError as exc:
        for evaluation in evaluations:
            result = evaluation.result
            if evaluation.update is not None:
                result = replace(
                    result,
                    status=SyncStatus.FAILED,
                    outcome=None,
                    reason=exc.reason,
                    detail=str(exc),
                )
            outcome.results.append(result)
    return outcome
