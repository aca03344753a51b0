"""Incremental runs: customers left as their last sync left them, without reading their profile.

Every sync that wrote or confirmed a profile keeps its result, with the digest of its inputs,
in the org's memo (``RunLedger.remember``). An incremental run reads only the recent orders; a
customer with none of them, whose other inputs (rules, Alleaves record, Alpine IQ answer) have
the digest the memo kept, would get exactly the profile they have: the run counts the kept
result as ``unchanged`` instead of reading the profile and re-evaluating it. Every other
customer is synced as usual.

What the memo cannot see: a change that Markitbot makes to a profile (its ``equityStatus``, or
a loyalty field edited by hand). The nightly full run reads every profile and puts those right.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from loyalty_worker.domain.models import Customer, LoyaltyRules
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.domain.results import SyncResult, SyncStatus
from loyalty_worker.ports.run import RunLedger
from loyalty_worker.services.run.listings import Listing
from loyalty_worker.services.sync.inputs import CustomerWork, inputs_digest
from loyalty_worker.services.sync.order_history import OrderHistory

RECALL_CHUNK = 1000


@dataclass(frozen=True)
class MemoCarryOver:
    """An incremental run's carrying over (``plan.CarryOver``): its customers without recent
    orders whose inputs the memo kept unchanged get their kept result, recorded in the run."""

    org_id: str
    run_id: str
    ledger: RunLedger
    rules: LoyaltyRules
    phone_key: bytes | None
    dry_run: bool

    def __call__(self, listing: Listing, recent: OrderHistory, since: date) -> frozenset[int]:
        """Record the kept result of each customer the run need not sync, stamped now; returns
        their ids. Reads the memo ``RECALL_CHUNK`` customers at a time (bounded memory)."""
        stamp = datetime.now(UTC).isoformat()
        carried: set[int] = set()
        for chunk in _chunks(listing.customers, RECALL_CHUNK):
            kept = self.ledger.recall(self.org_id, [c.customer_id for c in chunk])
            results: dict[str, SyncResult] = {}
            for customer in chunk:
                entry = kept.get(customer.customer_id)
                if entry is not None and self._unchanged(listing, recent, customer, entry, since):
                    results[str(customer.customer_id)] = _carried(entry, stamp, self.dry_run)
                    carried.add(customer.customer_id)
            if results:
                self.ledger.record(self.run_id, results)
        return frozenset(carried)

    def _unchanged(
        self,
        listing: Listing,
        recent: OrderHistory,
        customer: Customer,
        entry: SyncResult,
        since: date,
    ) -> bool:
        cid = customer.customer_id
        if cid in recent or cid in recent.malformed:
            return False  # orders created since: synced as usual
        # Orders created after the kept sync are all among the recent ones only if it ran
        # after the recent window's first day.
        try:
            kept_on = datetime.fromisoformat(entry.updated_at).date()
        except ValueError:
            return False  # an entry this worker did not write: sync as usual
        if kept_on <= since:
            return False
        answer = listing.alpine_answer(normalize_phone(customer.phone))
        if answer is None:
            return False  # only a look-up can tell Alpine IQ's balance
        work = CustomerWork(customer, alpine=answer).with_phone_hash(self.phone_key)
        return entry.inputs == inputs_digest(self.rules, customer, answer.profile, work.phone_hash)


def _carried(entry: SyncResult, stamp: str, dry_run: bool) -> SyncResult:
    """The kept result as this run's: unchanged, so no tier or points change (the tier and
    points before this run are the ones the kept sync showed)."""
    return replace(
        entry,
        status=SyncStatus.UNCHANGED,
        updated_at=stamp,
        dry_run=dry_run,
        carried=True,
        previous_tier=entry.outcome.displayed.tier if entry.outcome is not None else None,
        previous_points=entry.outcome.calculation.points_from_orders
        if entry.outcome is not None
        else None,
    )


def _chunks(items: Sequence[Customer], size: int) -> Iterator[Sequence[Customer]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
