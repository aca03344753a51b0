"""Dispatching a run's plan: what it read recorded in the run, its malformed customers'
results, the customers it can settle itself recorded ``unchanged``, the others sent in chunks."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from loyalty_worker.domain.results import SyncResult, SyncStatus, utc_stamp
from loyalty_worker.domain.run import PlanReport, RunStatus, RunSummaryDocument
from loyalty_worker.services.run.closing import record_results
from loyalty_worker.services.run.contacts import record_contacts
from loyalty_worker.services.run.context import Batch
from loyalty_worker.services.run.plan import RunPlan
from loyalty_worker.services.run.summary import MAX_LISTED
from loyalty_worker.services.sync.customer import evaluate_customer
from loyalty_worker.services.sync.inputs import CustomerWork

log = logging.getLogger(__name__)

# Results the plan settles are recorded this many at a time.
SETTLED_BATCH = 500


def dispatch_plan(batch: Batch, plan: RunPlan) -> None:
    """Record what the plan read (``_record_plan``), then hand its customers on
    (``_dispatch``); the run is marked dispatched once every one of them is."""
    ledger, run_id = batch.ports.ledger, batch.request.run_id
    _record_plan(batch, plan)
    record_contacts(batch, plan)
    if ledger.set_listed(run_id, plan.listed):
        batch.dispatch.summarize(RunStatus.COMPLETED.value)
    _dispatch(batch, plan, done=_already_done(batch))
    ledger.update(run_id, dispatchedAt=time.time())


def _already_done(batch: Batch) -> set[int]:
    """The customers of a resumed run that have a result (none on a first plan). The others
    are sent again, those an earlier planner sent included: its process may have taken their
    chunks with it (a result comes in once, however many times a customer is sent)."""
    ledger, run_id = batch.ports.ledger, batch.request.run_id
    if ledger.run_record(run_id).plan_attempts <= 1:
        return set()
    return {
        int(result.customer_id)
        for result in ledger.iter_results(run_id)
        if str(result.customer_id).isdecimal()
    }


def _record_plan(batch: Batch, plan: RunPlan) -> None:
    """Record what the plan read, the failed results of its malformed customers, and the
    customers listed in the run's Firestore record."""
    request, ledger = batch.request, batch.ports.ledger
    run_id = request.run_id
    unowned = plan.unowned_malformed_orders()
    if unowned:
        log.warning(
            "run %s: org %s: %d malformed orders without a listed customer",
            run_id,
            request.org_id,
            len(unowned),
        )
    report = PlanReport(
        orders_seen=plan.history.orders_seen,
        order_pages=plan.history.pages_fetched,
        orders_since=plan.recent_since.isoformat() if plan.recent_since else "all",
        unowned_malformed=len(unowned),
        unowned_listed=tuple(unowned[:MAX_LISTED]),
    )
    ledger.note_plan(run_id, report)
    _record_malformed(batch, plan, now=time.time())
    listed: RunSummaryDocument = {"listed": plan.listed}
    company = batch.org.alleaves.company()
    if company is not None:
        listed["orgName"] = company
    batch.ports.store.write_run_summary(run_id, listed)


def _record_malformed(batch: Batch, plan: RunPlan, *, now: float) -> None:
    """A ``failed`` result (reason ``malformed``) for each customer record of the listing that
    cannot be trusted, keyed by record id: they count in the run as any customer does."""
    request = batch.request
    if not plan.listing.malformed:
        return
    stamp = utc_stamp(datetime.fromtimestamp(now, UTC))
    results = {
        f"malformed:{record.record_id}": SyncResult(
            request.org_id,
            record.record_id,
            SyncStatus.FAILED,
            stamp,
            reason=record.reason,
            detail=str(record),
            dry_run=request.dry_run,
        )
        for record in plan.listing.malformed
    }
    batch.ports.ledger.record(request.run_id, results)


def _dispatch(batch: Batch, plan: RunPlan, *, done: Collection[int]) -> None:
    """Settle in the plan the customers whose profile would not change (their results recorded
    ``SETTLED_BATCH`` at a time); enqueue the others in chunks of ``options.chunk_size``, with
    their phone's ``phoneHash`` under ``options.phone_key``. Customers in ``done`` (a resumed
    run's customers with a result) are passed over."""
    options, enqueue = batch.ports.options, batch.dispatch.enqueue
    chunk: list[CustomerWork] = []
    settled: list[SyncResult] = []
    sent_count = settled_count = 0
    for work in plan.work():
        if work.customer.customer_id in done:
            continue
        work = work.with_phone_hash(options.phone_key)
        result = _settled(batch, work)
        if result is not None:
            settled.append(result)
            settled_count += 1
            if len(settled) == SETTLED_BATCH:
                _record(batch, settled)
                settled = []
            continue
        chunk.append(work)
        sent_count += 1
        if len(chunk) == options.chunk_size:
            enqueue(chunk)
            chunk = []
    if chunk:
        enqueue(chunk)
    if settled:
        _record(batch, settled)
    log.info(
        "run %s: org %s: %d listed: %d carried over, %d settled in the plan, %d sent",
        batch.request.run_id,
        batch.request.org_id,
        plan.listed,
        len(plan.carried),
        settled_count,
        sent_count,
    )


def _settled(batch: Batch, work: CustomerWork) -> SyncResult | None:
    """The result of a customer whose profile would not change, decided from the plan alone
    (no call is made: the plan holds the profile and Alpine IQ's answer); None when a task must
    sync it: a write to make, or a look-up."""
    if work.profile is None or "loyaltyStatus" not in work.profile:
        return None  # a profile this worker never wrote: there is a write to make
    if work.alpine is None or work.malformed_orders:
        return None  # an answer only a look-up gives, or a failure for the task to report
    evaluation = evaluate_customer(
        batch.org.settings,
        work,
        store=batch.ports.store,
        alpine=batch.org.alpine,
        run_id=batch.request.run_id,
        dry_run=batch.request.dry_run,
    )
    if evaluation.result.status is not SyncStatus.UNCHANGED:
        return None
    return evaluation.result


def _record(batch: Batch, results: Sequence[SyncResult]) -> None:
    if record_results(batch.ports.ledger, batch.request.run_id, results):
        batch.dispatch.summarize(RunStatus.COMPLETED.value)
