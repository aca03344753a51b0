"""Customers' syncs as the workers run them: their inputs unpacked (or found, for a customer
synced alone), a transient error tried again or, after the last retry, a ``failed`` result, and
every result recorded in its run (the one that completes the run closes it).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

from loyalty_worker.domain.results import SyncResult
from loyalty_worker.errors import PermanentError, TransientError
from loyalty_worker.ports.run import RunPhones, WorkPayload
from loyalty_worker.services.run.closing import record_results
from loyalty_worker.services.run.context import OrgAdapters, RunPorts
from loyalty_worker.services.run.phones import Unpacked, unpack, unpack_one
from loyalty_worker.services.sync.customer import sync_chunk, sync_customer, unexpected_failure
from loyalty_worker.services.sync.deadline import Deadline
from loyalty_worker.services.sync.inputs import CustomerWork
from loyalty_worker.services.sync.lone import LoneSearch, find_customer_work
from loyalty_worker.services.sync.lookups import look_up_ahead
from loyalty_worker.services.sync.paging import HistoryWindow, Paging
from loyalty_worker.services.sync.retries import Attempt, RetryLater, failed_result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """What a customer's job runs with in its task: the process's ports, the run's kept
    phones, which try of the task this is, and how a run that the job completes is closed."""

    ports: RunPorts
    phones: RunPhones
    attempt: Attempt
    close_run: Callable[[str], None]


def sync_alone(
    org_id: str,
    customer_id: int | str,
    *,
    run_id: str | None,
    dry_run: bool,
    payload: WorkPayload | None,
    job: Job,
) -> SyncResult:
    """Sync one customer: a run's customer retried alone (its inputs in ``payload``, its phone
    kept by the run in ``job.phones``), or one asked for on its own (another service), whose
    inputs are found first.

    A customer asked for on its own pages Alleaves itself: it first takes one of the org's
    ``single_sync_concurrency`` slots, and when all are taken waits its turn (``RetryLater``)
    rather than pile more calls on Alleaves.

    A result of a run is recorded in it (``job.close_run(run_id)`` when it completes the run);
    one without a run is kept in the org's memo only.
    """
    ports = job.ports
    try:
        with _single_sync_slot(org_id, ports, job.attempt, needed=payload is None):
            org = ports.org_for(org_id)
            work = (
                unpack_one(run_id, payload, phones=job.phones)
                if payload is not None
                else _lone_work(org_id, int(customer_id), org, ports)
            )
            result = sync_customer(
                org.settings,
                work,
                store=ports.store,
                alpine=org.alpine,
                run_id=run_id,
                dry_run=dry_run,
            )
    except RetryLater:
        raise
    except (TransientError, PermanentError) as exc:
        job.attempt.retry_or_fail(exc)
        result = failed_result(org_id, customer_id, exc, dry_run=dry_run)
    except Exception as exc:  # bad data met outside the rules: this customer alone fails
        result = unexpected_failure(org_id, customer_id, exc, dry_run=dry_run)
    _log_result(run_id, org_id, customer_id, result)
    if run_id is None:
        ports.ledger.remember([result])
    elif record_results(ports.ledger, run_id, [result]):
        job.close_run(run_id)
    return result


def _log_result(
    run_id: str | None, org_id: str, customer_id: int | str, result: SyncResult
) -> None:
    log.info(
        "run %s: org %s: customer %s: %s%s",
        run_id,
        org_id,
        customer_id,
        result.status.value,
        f" ({result.reason})" if result.reason is not None else "",
        extra={"outcome": result.reason or result.status.value},
    )


@contextmanager
def _single_sync_slot(
    org_id: str, ports: RunPorts, attempt: Attempt, *, needed: bool
) -> Iterator[None]:
    """Hold one of the org's single-sync slots while the body runs (when ``needed`` and the
    ports cap them); all taken: ``RetryLater``, however many retries came before."""
    slots = ports.single_syncs
    if not needed or slots is None:
        yield
        return
    options = ports.options
    holder = uuid.uuid4().hex
    limit = options.single_sync_concurrency
    if not slots.acquire(org_id, holder, limit=limit, ttl_s=options.single_sync_slot_ttl_s):
        log.info(
            "org %s: %d single-customer syncs already running; this one waits its turn",
            org_id,
            limit,
            extra={"outcome": "waiting"},
        )
        attempt.wait(
            TransientError("single_sync", f"org {org_id}: {limit} single-customer syncs running")
        )
    try:
        yield
    finally:
        slots.release(org_id, holder)


def _lone_work(org_id: str, customer_id: int, org: OrgAdapters, ports: RunPorts) -> CustomerWork:
    """The inputs of a customer synced on its own (``services.sync.lone``)."""
    options = ports.options
    search = LoneSearch(
        alleaves=org.alleaves,
        store=ports.store,
        # One day past today: an order placed this evening is already dated tomorrow in UTC.
        history=HistoryWindow(
            options.history_start, date.today() + timedelta(days=1), options.window_days
        ),
        overlap_days=options.overlap_days,
        paging=Paging(
            options.parallelism, options.customer_page_limit, Deadline(options.task_budget_s)
        ),
    )
    return find_customer_work(org_id, customer_id, search).with_phone_hash(options.phone_key)


def sync_run_chunk(
    org_id: str,
    run_id: str,
    payloads: Sequence[WorkPayload],
    *,
    dry_run: bool,
    job: Job,
    retry_alone: Callable[[CustomerWork], None],
    chunk: str | None = None,
) -> dict[str, int]:
    """Sync a run's chunk of customers (``sync_customer.sync_chunk``) and record their results.

    The phones to look up come from the run's kept phones (a customer whose phone is no longer
    kept fails); they are looked up side by side on ``ports.lookups``
    (``services.sync.lookups``). A customer whose own read hits a transient error goes to
    ``retry_alone`` (a sync of its own, with its own retries), so the chunk never waits on it.
    Returns how many results were recorded and how many customers were handed on.

    ``chunk``: the key under which the run keeps the chunk's payloads (what the watchdog
    re-sends should this message be lost); once every customer of it has a result, the
    run forgets it.
    """
    ports = job.ports
    unpacked: Unpacked | None = None
    retried: list[CustomerWork] = []
    try:
        unpacked = unpack(run_id, payloads, phones=job.phones)
        org = ports.org_for(org_id)
        outcome = sync_chunk(
            org.settings,
            look_up_ahead(unpacked.works, org.alpine, ports.lookups),
            store=ports.store,
            alpine=org.alpine,
            run_id=run_id,
            dry_run=dry_run,
            deadline=Deadline(ports.options.task_budget_s),
        )
        results = list(outcome.results)
        retried = [work for work, _ in outcome.retry]
    except (TransientError, PermanentError) as exc:
        job.attempt.retry_or_fail(exc)
        ids = [w.customer.customer_id for w in unpacked.works] if unpacked else _ids(payloads)
        results = [failed_result(org_id, cid, exc, dry_run=dry_run) for cid in ids]
    if unpacked is not None:
        results += [
            failed_result(org_id, lost.customer_id, lost, dry_run=dry_run) for lost in unpacked.lost
        ]
    for work in retried:
        retry_alone(work)
    counts = {"results": len(results), "retried": len(payloads) - len(results)}
    failed = sum(1 for result in results if not result.success)
    log.info(
        "run %s: org %s: chunk of %d: %d done, %d failed, %d retried alone",
        run_id,
        org_id,
        len(payloads),
        len(results),
        failed,
        counts["retried"],
        extra={"outcome": f"{failed} failed"},
    )
    if results and record_results(ports.ledger, run_id, results):
        job.close_run(run_id)
    if chunk is not None and not retried:
        ports.ledger.drop_chunk(run_id, chunk)
    return counts


def _ids(payloads: Sequence[WorkPayload]) -> list[int]:
    """The customers of payloads that could not be unpacked."""
    return [int(payload["customer"][0]) for payload in payloads]
