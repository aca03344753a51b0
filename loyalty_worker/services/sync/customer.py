"""Sync one customer: calculate, look up Alpine IQ, reconcile, merge-write the profile."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from loyalty_worker import log_context
from loyalty_worker.domain.bounds import OutOfBounds
from loyalty_worker.domain.contact import last_counted_order
from loyalty_worker.domain.phone import mask_phones_in, normalize_phone
from loyalty_worker.domain.points import calculate_points
from loyalty_worker.domain.profile import (
    ProfileUpdate,
    build_profile_update,
    history_says_something,
)
from loyalty_worker.domain.reconciliation import decide
from loyalty_worker.domain.results import SyncResult, SyncStatus, utc_stamp
from loyalty_worker.errors import DeadlineExceeded, PermanentError, TransientError
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.sources import LoyaltyLookup
from loyalty_worker.services.sync.deadline import Deadline
from loyalty_worker.services.sync.inputs import PROFILE_FIELDS, CustomerWork, inputs_digest

log = logging.getLogger(__name__)


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
    permanent ones become a ``failed`` result with the error's reason. Any other exception
    (a number beyond its bound, an amount ``Decimal`` cannot hold, a bug met by odd data) fails
    this customer alone (``failure_reason``): never the chunk or the run. A profile the run read
    ahead (``work.profile_known``) spares the read here.
    """
    # A chunk's lines about this customer (its look-up's retries, its failure) name it.
    with log_context.bound(customer_id=work.customer.customer_id):
        stamp = datetime.now(UTC).isoformat()
        if work.malformed_orders:
            detail = "malformed orders: " + ", ".join(work.malformed_orders)
            return Evaluation(_failed(org, work, stamp, "malformed", detail, dry_run), None)
        try:
            return _evaluate(org, work, store=store, alpine=alpine, run_id=run_id, dry_run=dry_run)
        except TransientError:
            raise
        except PermanentError as exc:
            return Evaluation(_failed(org, work, stamp, exc.reason, str(exc), dry_run), None)
        except Exception as exc:  # one customer's bad data fails that customer, nothing more
            reason, detail = failure_reason(exc)
            _log_failure(org.org_id, work.customer.customer_id, reason, detail, exc)
            return Evaluation(_failed(org, work, stamp, reason, detail, dry_run), None)


def _evaluate(
    org: OrgSettings,
    work: CustomerWork,
    *,
    store: ProfileStore,
    alpine: LoyaltyLookup,
    run_id: str | None,
    dry_run: bool,
) -> Evaluation:
    now = datetime.now(UTC)
    rules = org.rules()
    customer = work.customer
    phone = normalize_phone(customer.phone)
    stamp = now.isoformat()
    profile = work.profile
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
    outcome = decide(calculation, alpine_profile, rules)
    update = build_profile_update(
        org.org_id,
        customer,
        outcome,
        run_id=run_id,
        now=now,
        phone_hash=work.hashed_phone,
        last_order=last_counted_order(calculation, work.orders),
    )
    changed = update.changes(profile)
    previous_tier = profile.get("tier") if profile else None
    previous_points = profile.get("pointsFromOrders") if profile else None
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
        previous_points=previous_points
        if isinstance(previous_points, int) and not isinstance(previous_points, bool)
        else None,
    )
    if not changed or dry_run:
        return Evaluation(result, None)
    entry = update.with_history(profile, run_id=run_id, at=now, adjustment=outcome.adjustment)
    if entry.history is not None and not history_says_something(entry.history):
        entry = update  # only the ledger's dates were added: nothing to tell in the history
    return Evaluation(result, entry)


# Exceptions that bad data raises (an amount beyond Decimal's precision, a number outside its
# bound, text that is not a number): the customer is ``malformed``. Any other is a bug that odd
# data met: ``internal_error``, logged with its traceback. Either way only that customer fails.
_DATA_ERRORS: tuple[type[Exception], ...] = (ArithmeticError, ValueError, OutOfBounds)
_MAX_DETAIL = 300


def failure_reason(exc: Exception) -> tuple[str, str]:
    """The reason and detail a customer fails with for an exception the rules did not expect;
    the detail names the exception (its text cut short, phone numbers masked)."""
    reason = "malformed" if isinstance(exc, _DATA_ERRORS) else "internal_error"
    detail = mask_phones_in(f"{type(exc).__name__}: {exc}")
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 1] + "…"
    return reason, detail


def unexpected_failure(
    org_id: str, customer_id: int | str, exc: Exception, *, dry_run: bool
) -> SyncResult:
    """The ``failed`` result of a customer whose sync met an exception the rules did not
    expect (``failure_reason``), logged; only that customer fails."""
    reason, detail = failure_reason(exc)
    _log_failure(org_id, customer_id, reason, detail, exc)
    return SyncResult(
        org_id,
        customer_id,
        SyncStatus.FAILED,
        utc_stamp(),
        reason=reason,
        detail=detail,
        dry_run=dry_run,
    )


def _log_failure(
    org_id: str, customer_id: int | str, reason: str, detail: str, exc: Exception
) -> None:
    log.warning(
        "org %s: customer %s failed (%s): %s",
        org_id,
        customer_id,
        reason,
        detail,
        exc_info=reason == "internal_error",
        extra={"outcome": reason},
    )


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
    failure = _write_failure(store, evaluation.update)
    if failure is not None:
        reason, detail = failure
        return _failed(org, work, evaluation.result.updated_at, reason, detail, dry_run)
    return evaluation.result


def _write_failure(store: ProfileStore, update: ProfileUpdate) -> tuple[str, str] | None:
    """Write one profile; None when it is written, else the reason and detail it failed with.
    A transient error propagates (the write is idempotent: the caller tries again)."""
    try:
        store.write_profiles([update])
    except TransientError:
        raise
    except PermanentError as exc:
        return exc.reason, str(exc)
    except Exception as exc:  # a value the store cannot encode fails this customer alone
        reason, detail = failure_reason(exc)
        _log_failure(update.org_id, update.customer_id, reason, detail, exc)
        return reason, detail
    return None


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
    deadline: Deadline | None = None,
) -> ChunkOutcome:
    """Evaluate a chunk of customers and write their changed profiles in one batched call.

    A customer whose evaluation hits a transient error is handed back for a retry of its own,
    so one slow look-up does not hold up the chunk. A transient error of the batched write
    propagates: the whole chunk is retried (the sync is idempotent). A batched write refused
    for any other reason is made again one profile at a time, so that only a profile that
    cannot be written fails, with its reason. Once ``deadline`` has passed no new customer is
    started, and no new profile is written alone: the rest are handed back too, each to be
    synced on its own, so a chunk's time does not grow with its size. Profiles the run did not
    read ahead are read first, in one call (a transient error retries the chunk).
    """
    outcome = ChunkOutcome()
    evaluations: list[tuple[CustomerWork, Evaluation]] = []
    for work in _with_profiles(org.org_id, works, store):
        if deadline is not None and deadline.passed():
            outcome.retry.append((work, DeadlineExceeded("chunk", deadline.budget_s)))
            continue
        try:
            evaluation = evaluate_customer(
                org, work, store=store, alpine=alpine, run_id=run_id, dry_run=dry_run
            )
        except TransientError as exc:
            outcome.retry.append((work, exc))
        else:
            evaluations.append((work, evaluation))
    updates = [e.update for _, e in evaluations if e.update is not None]
    try:
        if updates:
            store.write_profiles(updates)
    except TransientError:
        raise
    except Exception as exc:  # the batch refused: each write alone, so only a bad one fails
        log.warning(
            "org %s: batched write of %d profiles failed (%s); writing them one by one",
            org.org_id,
            len(updates),
            failure_reason(exc)[1],
        )
        _write_one_by_one(evaluations, store, outcome, deadline)
    else:
        outcome.results.extend(e.result for _, e in evaluations)
    return outcome


def _with_profiles(
    org_id: str, works: Sequence[CustomerWork], store: ProfileStore
) -> Sequence[CustomerWork]:
    """``works`` with every profile known: those the run did not read ahead, read in one call."""
    unknown = [work.customer.customer_id for work in works if not work.profile_known]
    if not unknown:
        return works
    profiles = store.get_profiles(org_id, unknown, PROFILE_FIELDS)
    return [
        work
        if work.profile_known
        else replace(work, profile=profiles.get(work.customer.customer_id), profile_known=True)
        for work in works
    ]


def _write_one_by_one(
    evaluations: Sequence[tuple[CustomerWork, Evaluation]],
    store: ProfileStore,
    outcome: ChunkOutcome,
    deadline: Deadline | None,
) -> None:
    """The results of a chunk whose batched write failed, into ``outcome``: each profile
    written on its own; one that still fails gets a ``failed`` result with its reason, the
    others keep theirs. Once ``deadline`` has passed, the customers whose profiles are not
    written yet are handed back, each to be synced on its own."""
    for work, evaluation in evaluations:
        result = evaluation.result
        if evaluation.update is not None:
            if deadline is not None and deadline.passed():
                outcome.retry.append((work, DeadlineExceeded("chunk", deadline.budget_s)))
                continue
            failure = _write_failure(store, evaluation.update)
            if failure is not None:
                reason, detail = failure
                result = replace(
                    result, status=SyncStatus.FAILED, outcome=None, reason=reason, detail=detail
                )
        outcome.results.append(result)
