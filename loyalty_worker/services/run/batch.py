"""A batch run from trigger to summary, independent of Celery.

``start_batch`` opens the run (the org's lock, the run's record), plans it and dispatches the
plan: each chunk of customers' work goes to ``RunDispatch.enqueue``. Every finished customer's
result goes through ``record_results``; the one that completes the run gets True and has the
run closed (``close_run``, ``summarize_batch``): its summary written and one alert sent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from loyalty_worker.domain.results import SyncResult, SyncStatus, utc_stamp
from loyalty_worker.errors import LoyaltyError, MalformedRecord, TransientError
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.notify import Notifier
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.run import OrderSlices, RunLedger, SyncSlots
from loyalty_worker.ports.sources import CustomerSource, LoyaltyLookup
from loyalty_worker.services.run.history_slices import (
    HistorySlice,
    SliceReader,
    gather_history,
    read_slice,
)
from loyalty_worker.services.run.memo import carry_over
from loyalty_worker.services.run.plan import HistoryReader, RunPlan, plan_run, read_orders
from loyalty_worker.services.run.summary import SummaryBuilder, summary_alert
from loyalty_worker.services.sync.customer import evaluate_customer
from loyalty_worker.services.sync.deadline import Deadline
from loyalty_worker.services.sync.inputs import CustomerWork
from loyalty_worker.services.sync.order_history import OrderHistory
from loyalty_worker.services.sync.retries import Attempt, Retries

log = logging.getLogger(__name__)

# A run in one of these states is closed: its summary is written.
FINAL = frozenset({"completed", "failed", "incomplete"})
# The recovery log's entry for each time the watchdog planned a run Redis had lost.
LOST_FROM_REDIS = "the run's state was lost from Redis: planned again"
# Results the plan settles are recorded this many at a time.
SETTLED_BATCH = 500
# Ids of malformed orders without a customer that a run's summary lists (all are counted).
UNOWNED_LISTED = 100
# Planning reads thousands of pages: a burst of 429s or 5xx beyond the clients' own retries
# starts it again after a pause, a bounded number of times.
PLAN_RETRIES = Retries(3, first_s=2.0)


@dataclass(frozen=True)
class BatchOptions:
    history_start: date
    window_days: int
    parallelism: int
    lock_ttl_s: int
    chunk_size: int
    plan_retries: Retries = PLAN_RETRIES
    # A full run's look-ups start while the history is read, on ``RunPorts.lookups``.
    plan_lookups: bool = True
    # An incremental run re-reads orders created this many days before its ``since``: orders
    # change (complete, void, refund) for a while after they are created.
    overlap_days: int = 14
    # The key of each profile's ``phoneHash`` (None: profiles' hashes are left as they are).
    phone_key: bytes | None = None
    # A customer synced on its own: the customer listing is read at most this many pages deep
    # to find them; at most this many of an org's such syncs run at once, each slot freed
    # after ``single_sync_slot_ttl_s`` should its worker die.
    customer_page_limit: int = 200
    single_sync_concurrency: int = 2
    single_sync_slot_ttl_s: float = 900.0
    # Time budgets (``services.sync.deadline``): a customer task starts no new customer or page
    # after ``task_budget_s``; the plan reads no new page after ``plan_budget_s``. No listing
    # is read past ``max_pages`` pages.
    task_budget_s: float = 120.0
    plan_budget_s: float = 1200.0
    max_pages: int = 5000
    # A planner that has not beat for this long is taken over by the next one sent.
    planner_stale_s: float = 60.0
    # The plan's order history is cut into this many slices (every n-th date window), read by
    # whichever worker processes take them (``services.run.history_slices``; 1: the planner reads
    # it alone).
    plan_slices: int = 1


@dataclass(frozen=True)
class RunRequest:
    """What a run was asked for: which org, under which run id, dry or not, since when."""

    org_id: str
    run_id: str
    dry_run: bool = False
    # Incremental: only the orders created since this day (less the overlap) are read.
    since: date | None = None


class OrgAdapters(Protocol):
    """The org's settings and the clients its run reads (bootstrap's ``OrgClients`` is one)."""

    @property
    def settings(self) -> OrgSettings: ...

    @property
    def alleaves(self) -> CustomerSource: ...

    @property
    def alpine(self) -> LoyaltyLookup: ...


@dataclass(frozen=True)
class RunPorts:
    """What a run's services read and write through (the worker process's clients)."""

    org_for: Callable[[str], OrgAdapters]  # raises LoyaltyError for an org it cannot serve
    store: ProfileStore
    ledger: RunLedger
    options: BatchOptions
    # The cap on an org's concurrent single-customer syncs (None: no cap).
    single_syncs: SyncSlots | None = None
    # Where a chunk's Alpine IQ look-ups run side by side (None: one after another, in the
    # chunk's own thread).
    lookups: Executor | None = None
    # Where the readers of a plan's history slices leave their orders (None: the planner
    # reads the history alone).
    slices: OrderSlices | None = None


@dataclass(frozen=True)
class RunDispatch:
    """How a run hands work on: a chunk of customers to sync; the run, to be summarised (with
    its status)."""

    enqueue: Callable[[list[CustomerWork]], None]
    summarize: Callable[[str], None]
    # A slice of the plan's order history, for any worker to read (None: nobody else reads).
    read_orders: Callable[[HistorySlice], None] | None = None


@dataclass(frozen=True)
class BatchStart:
    run_id: str
    started: bool
    listed: int = 0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The answer of ``loyalty.sync_org``."""
        return {
            "runId": self.run_id,
            "started": self.started,
            "listed": self.listed,
            "message": self.message,
        }


def start_batch(
    request: RunRequest,
    org: OrgAdapters,
    *,
    store: ProfileStore,
    ledger: RunLedger,
    options: BatchOptions,
    dispatch: RunDispatch,
    slices: OrderSlices | None = None,
    lookups: Executor | None = None,
    today: date | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchStart:
    """Plan the org's run and enqueue its customers in chunks; at most one run per org at a time.

    Three steps: open the run (its lock and record), plan it, dispatch the plan. With ``since``
    (incremental) only the orders created since then, less the overlap, are read, and customers
    the memo shows unchanged are carried over (``services.run.memo``). A customer whose inputs the
    plan holds in full (profile, Alpine IQ answer) and whose profile would not change is settled
    in the plan: its result is recorded, no task is sent. The rest go to the workers with their
    phone's ``phoneHash`` under ``options.phone_key``. With ``lookups`` (the process's look-up
    pool) a full run's Alpine IQ look-ups start while its history is read.

    A LoyaltyError while planning (bad credentials, Alleaves down) ends the run at once as
    ``failed`` (``fail_start``): its summary and its one alert say why.
    """
    refused = open_run(request, ledger=ledger, store=store, lock_ttl_s=options.lock_ttl_s)
    if refused is not None:
        return refused
    claim = ledger.claim_planner(request.run_id, stale_s=options.planner_stale_s)
    if claim != "claimed":
        # A redelivered or re-sent planner of a run another planner has (or had) in hand.
        log.info("run %s: planning %s; nothing to do", request.run_id, claim)
        return BatchStart(request.run_id, started=False, message=f"run {claim}")
    deadline = Deadline(options.plan_budget_s)  # one budget for every attempt
    try:
        plan = options.plan_retries.call(
            _planner(
                request,
                org,
                store=store,
                ledger=ledger,
                options=options,
                today=today,
                sleep=sleep,
                deadline=deadline,
                history=_history_reader(request, org, options, dispatch, slices, deadline, sleep),
                lookups=lookups,
            ),
            what=f"run {request.run_id}: planning",
            sleep=sleep,
        )
    except LoyaltyError as exc:
        return fail_start(request, exc, ledger=ledger, dispatch=dispatch)
    try:
        _record_plan(request, plan, store=store, ledger=ledger)
        if ledger.set_listed(request.run_id, plan.listed):
            dispatch.summarize("completed")
        _dispatch_plan(
            request,
            org,
            plan,
            store=store,
            ledger=ledger,
            options=options,
            dispatch=dispatch,
            done=_already_done(request.run_id, ledger),
        )
        ledger.update(request.run_id, dispatchedAt=time.time())
    finally:
        plan.close()  # reads ahead no longer needed, if the loop stopped early
    return BatchStart(request.run_id, started=True, listed=plan.listed)


def open_run(
    request: RunRequest, *, ledger: RunLedger, store: ProfileStore, lock_ttl_s: int
) -> BatchStart | None:
    """Take the org's run lock and register the run, in Redis and in Firestore (status
    ``running``, so that the watchdog finds it whatever happens next), before anything is
    read; the refusal when the run has ended, or when another run of the org holds the lock
    (a new run is recorded as its ``duplicate``).

    A run that is already registered (its planner redelivered or re-sent) keeps its record
    and re-takes its own lock."""
    org_id, run_id = request.org_id, request.run_id
    meta = ledger.meta(run_id)
    if meta.get("status") in FINAL or meta.get("status") == "duplicate":
        return BatchStart(run_id, started=False, message=f"run {run_id} has ended")
    # A planner claimed it before: a resumed run. Otherwise a new run (its record at most
    # ``queued`` by the API), or a bare record late results left after Redis lost the run.
    resumed = "planAttempts" in meta
    holder = ledger.acquire_lock(org_id, run_id, lock_ttl_s)
    if holder is not None:
        message = f"org {org_id} already has run {holder} in progress; no second batch started"
        log.warning(message)
        if not resumed:
            ledger.start(run_id, org_id, status="duplicate", error=message, runningRunId=holder)
        return BatchStart(holder, started=False, message=message)
    if not resumed:
        record_start(request, ledger, **_lost_run_carried(store.get_run_summary(run_id)))
        store.write_run_summary(
            run_id,
            {
                "runId": run_id,
                "orgId": org_id,
                "status": "running",
                "startedAt": float(ledger.meta(run_id)["startedAt"]),
                "dryRun": request.dry_run,
                "since": request.since.isoformat() if request.since else "full",
            },
        )
    return None


def _already_done(run_id: str, ledger: RunLedger) -> set[int]:
    """The customers of a resumed run that have a result (none on a first plan). The others
    are sent again, those an earlier planner sent included: its process may have taken their
    chunks with it (a result comes in once, however many times a customer is sent)."""
    if int(ledger.meta(run_id).get("planAttempts", "1")) <= 1:
        return set()
    return {
        int(result.customer_id)
        for result in ledger.iter_results(run_id)
        if str(result.customer_id).isdecimal()
    }


def record_start(request: RunRequest, ledger: RunLedger, **carried: str | int | float) -> None:
    """Open the run's record: dry or not, and since when (``full``: a full run)."""
    since = request.since.isoformat() if request.since else "full"
    ledger.start(
        request.run_id, request.org_id, dryRun=int(request.dry_run), since=since, **carried
    )


def _lost_run_carried(record: Mapping[str, Any] | None) -> dict[str, str | int | float]:
    """What a run Redis lost keeps when the watchdog plans it again (its Firestore record still
    ``running``): its start, and the recoveries counted there, so its summary reports them."""
    if record is None or record.get("status") != "running" or "startedAt" not in record:
        return {}
    carried: dict[str, str | int | float] = {"startedAt": float(record["startedAt"])}
    used = int(record.get("recoveries", 0))
    if used:
        carried["recoveries"] = used
        carried.update({f"recovery{n}": LOST_FROM_REDIS for n in range(1, used + 1)})
    return carried


def fail_start(
    request: RunRequest, exc: LoyaltyError, *, ledger: RunLedger, dispatch: RunDispatch
) -> BatchStart:
    """End an opened run that could not start as ``failed``: its summary and its one alert
    carry the error."""
    log.error("run %s: org %s could not start: %s", request.run_id, request.org_id, exc)
    ledger.update(request.run_id, error=f"{exc.reason}: {exc}", listed=0)
    dispatch.summarize("failed")
    return BatchStart(request.run_id, started=False, message=str(exc))


def _planner(
    request: RunRequest,
    org: OrgAdapters,
    *,
    store: ProfileStore,
    ledger: RunLedger,
    options: BatchOptions,
    today: date | None,
    sleep: Callable[[float], None],
    deadline: Deadline | None = None,
    history: HistoryReader | None = None,
    lookups: Executor | None = None,
) -> Callable[[], RunPlan]:
    """The run's planning as one call (tried again by ``_plan_with_retries``)."""
    since = request.since
    carry = partial(
        _carry_over_now,
        org_id=request.org_id,
        run_id=request.run_id,
        ledger=ledger,
        rules=org.settings.rules(),
        phone_key=options.phone_key,
        dry_run=request.dry_run,
    )
    return partial(
        plan_run,
        request.org_id,
        org.alleaves,
        org.alpine,
        store,
        history_start=options.history_start,
        # One day past today: an order placed this evening in the org's timezone is already
        # dated tomorrow in UTC.
        today=(today or date.today()) + timedelta(days=1),
        window_days=options.window_days,
        parallelism=options.parallelism,
        recent_since=since - timedelta(days=options.overlap_days) if since else None,
        carry_over=carry,
        sleep=sleep,
        max_pages=options.max_pages,
        deadline=deadline,
        history_reader=history,
        lookups=lookups,
    )


def _slice_reader(org: OrgAdapters, options: BatchOptions, deadline: Deadline) -> SliceReader:
    """How this process reads a slice of the org's history: the slices side by side split
    the order fetch parallelism between them."""

    def read(part: HistorySlice, before_page: Callable[[], None]) -> OrderHistory:
        return read_orders(
            org.alleaves,
            part.start,
            part.end,
            before_page,
            window_days=options.window_days,
            parallelism=max(1, -(-options.parallelism // part.count)),
            max_pages=options.max_pages,
            deadline=deadline,
            share=(part.index, part.count),
        )

    return read


def _history_reader(
    request: RunRequest,
    org: OrgAdapters,
    options: BatchOptions,
    dispatch: RunDispatch,
    slices: OrderSlices | None,
    deadline: Deadline,
    sleep: Callable[[float], None],
) -> HistoryReader | None:
    """The plan's history read in slices by every process that takes one (None: the
    planner reads it alone, as it does with one slice or nobody to hand slices to)."""
    if slices is None or dispatch.read_orders is None or options.plan_slices <= 1:
        return None
    return partial(
        gather_history,
        request.org_id,
        request.run_id,
        read=_slice_reader(org, options, deadline),
        slices=slices,
        count=options.plan_slices,
        send=dispatch.read_orders,
        deadline=deadline,
        sleep=sleep,
    )


def read_run_orders(part: HistorySlice, ports: RunPorts) -> bool:
    """Read a slice of a run's history for its planner (``loyalty.read_orders``); whether
    this reader read it. An org that cannot be served leaves it to the planner."""
    options = ports.options
    if ports.slices is None:
        return False
    try:
        org = ports.org_for(part.org_id)
    except LoyaltyError as exc:
        log.warning("run %s: orders of %s left to the planner: %s", part.run_id, part.key, exc)
        return False
    reader = _slice_reader(org, options, Deadline(options.plan_budget_s))
    return read_slice(part, reader, ports.slices, keep_s=options.plan_budget_s)


def _carry_over_now(plan: RunPlan, **kwargs: Any) -> set[int]:
    """``memo.carry_over``, its kept results stamped with the time they are carried."""
    return carry_over(plan, stamp=datetime.now(UTC).isoformat(), **kwargs)


def _record_plan(
    request: RunRequest, plan: RunPlan, *, store: ProfileStore, ledger: RunLedger
) -> None:
    """Record what the plan read, the failed results of its malformed customers, and the run as
    ``running`` in Firestore (the watchdog finds the run even if Redis loses it)."""
    run_id = request.run_id
    unowned = plan.unowned_malformed_orders()
    if unowned:
        log.warning(
            "run %s: org %s: %d malformed orders without a listed customer",
            run_id,
            request.org_id,
            len(unowned),
        )
    ledger.update(
        run_id,
        ordersSeen=plan.history.orders_seen,
        orderPages=plan.history.pages_fetched,
        ordersSince=plan.recent_since.isoformat() if plan.recent_since else "all",
        unownedMalformedOrders=len(unowned),
        unownedMalformedOrderIds=json.dumps(unowned[:UNOWNED_LISTED]),
    )
    _record_malformed(request, plan.malformed_customers, ledger=ledger, now=time.time())
    store.write_run_summary(run_id, {"listed": plan.listed})


def _record_malformed(
    request: RunRequest, records: Sequence[MalformedRecord], *, ledger: RunLedger, now: float
) -> None:
    """A ``failed`` result (reason ``malformed``) for each customer record of the listing that
    cannot be trusted, keyed by record id: they count in the run as any customer does."""
    if not records:
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
        for record in records
    }
    ledger.record(request.run_id, results)


def _dispatch_plan(
    request: RunRequest,
    org: OrgAdapters,
    plan: RunPlan,
    *,
    store: ProfileStore,
    ledger: RunLedger,
    options: BatchOptions,
    dispatch: RunDispatch,
    done: Collection[int] = frozenset(),
) -> None:
    """Settle in the plan the customers whose profile would not change (their results recorded
    ``SETTLED_BATCH`` at a time); enqueue the others in chunks of ``options.chunk_size``.
    Customers in ``done`` (a resumed run's customers with a result) are passed over."""
    chunk: list[CustomerWork] = []
    settled: list[SyncResult] = []
    sent_count = settled_count = 0
    for work in plan.work():
        if work.customer.customer_id in done:
            continue
        work = work.with_phone_hash(options.phone_key)
        result = _settled(request, org, work, store=store)
        if result is not None:
            settled.append(result)
            settled_count += 1
            if len(settled) == SETTLED_BATCH:
                _record(ledger, request.run_id, settled, dispatch.summarize)
                settled = []
            continue
        chunk.append(work)
        sent_count += 1
        if len(chunk) == options.chunk_size:
            dispatch.enqueue(chunk)
            chunk = []
    if chunk:
        dispatch.enqueue(chunk)
    if settled:
        _record(ledger, request.run_id, settled, dispatch.summarize)
    log.info(
        "run %s: org %s: %d listed: %d carried over, %d settled in the plan, %d sent",
        request.run_id,
        request.org_id,
        plan.listed,
        len(plan.carried),
        settled_count,
        sent_count,
    )


def _settled(
    request: RunRequest, org: OrgAdapters, work: CustomerWork, *, store: ProfileStore
) -> SyncResult | None:
    """The result of a customer whose profile would not change, decided from the plan alone
    (no call is made: the plan holds the profile and Alpine IQ's answer); None when a task must
    sync it: a write to make, or a look-up."""
    if work.profile is None or "loyaltyStatus" not in work.profile:
        return None  # a profile this worker never wrote: there is a write to make
    if work.alpine is None or work.malformed_orders:
        return None  # an answer only a look-up gives, or a failure for the task to report
    evaluation = evaluate_customer(
        org.settings,
        work,
        store=store,
        alpine=org.alpine,
        run_id=request.run_id,
        dry_run=request.dry_run,
    )
    if evaluation.result.status is not SyncStatus.UNCHANGED:
        return None
    return evaluation.result


def _record(
    ledger: RunLedger,
    run_id: str,
    results: Sequence[SyncResult],
    summarize: Callable[[str], None],
) -> None:
    if record_results(ledger, run_id, results):
        summarize("completed")


def record_results(ledger: RunLedger, run_id: str, results: Sequence[SyncResult]) -> bool:
    """Store customers' results (keyed by customer) and keep them in the org's memo; True when
    they complete the run."""
    ledger.remember(results)
    return ledger.record(run_id, {str(result.customer_id): result for result in results})


def close_run(
    run_id: str,
    *,
    status: str,
    ledger: RunLedger,
    store: ProfileStore,
    notifier_for: Callable[[str], Notifier],
    attempt: Attempt,
) -> dict[str, Any]:
    """Summarise the run (``summarize_batch``), unless the watchdog closed it while this call
    was late; a transient error is tried again (``RetryLater``)."""
    meta = ledger.meta(run_id)
    if meta.get("status") in FINAL and "summary" in meta:
        return dict(json.loads(meta["summary"]))
    try:
        notifier = notifier_for(meta["orgId"])
        return summarize_batch(
            run_id=run_id, ledger=ledger, store=store, notifier=notifier, status=status
        )
    except TransientError as exc:
        attempt.retry_or_fail(exc)
        raise


def summarize_batch(
    *,
    run_id: str,
    ledger: RunLedger,
    store: ProfileStore,
    notifier: Notifier,
    status: str = "completed",
    missing_ids: Sequence[int] = (),
) -> dict[str, Any]:
    """Aggregate the run's results, store the summary, send one alert, release the org's lock.

    An alert that cannot be delivered does not fail the run: the summary records it. A summary
    tried again (Firestore did not take it) does not alert again. ``missing_ids``: customers
    whose work was lost for good (an incomplete run), named in the summary.
    """
    meta = ledger.meta(run_id)
    org_id = meta["orgId"]
    builder = SummaryBuilder(
        run_id=run_id,
        org_id=org_id,
        listed=int(meta.get("listed", 0)),
        dry_run=meta.get("dryRun") == "1",
    )
    builder.add_all(ledger.iter_results(run_id))
    summary = builder.build(
        started_at=float(meta["startedAt"]), finished_at=time.time(), status=status
    )
    summary["ordersSince"] = meta.get("ordersSince", "all")
    # Malformed orders no customer's failure reports (no readable customer id): counted here.
    summary["unownedMalformedOrders"] = int(meta.get("unownedMalformedOrders", 0))
    summary["unownedMalformedOrderIds"] = json.loads(meta.get("unownedMalformedOrderIds", "[]"))
    if "listedAt" in meta:
        # The (last) planning's own time: reading Alleaves, Alpine IQ and Firestore before the
        # first task, not the wait of a run planned again after its planner or Redis was lost.
        planned_from = float(meta.get("planStartedAt", meta["startedAt"]))
        summary["planS"] = round(float(meta["listedAt"]) - planned_from, 3)
    if "error" in meta:
        summary["error"] = meta["error"]
    # Work the watchdog re-sent (a lost planner, lost chunks), and customers still missing.
    recoveries = int(meta.get("recoveries", 0))
    summary["recoveries"] = recoveries
    summary["recoveryLog"] = [meta.get(f"recovery{n}", "") for n in range(1, recoveries + 1)]
    summary["planAttempts"] = int(meta.get("planAttempts", 1))
    if missing_ids:
        summary["missingCustomerIds"] = sorted(missing_ids)[:UNOWNED_LISTED]
    summary["alert"] = _alert_once(run_id, meta, ledger, notifier, summary)
    store.write_run_summary(run_id, summary)
    if status == "completed" and not summary["dryRun"] and summary["failed"] == 0:
        # The next incremental run reads the orders created since this run started.
        ledger.mark_success(org_id, float(meta["startedAt"]))
    ledger.finish(run_id, status, summary)
    ledger.release_lock(org_id, run_id)
    return summary


def _alert_once(
    run_id: str,
    meta: Mapping[str, str],
    ledger: RunLedger,
    notifier: Notifier,
    summary: Mapping[str, Any],
) -> dict[str, Any]:
    """Send the run's one alert; what became of it, kept in the run's record so that a retried
    summary reports the first attempt's alert instead of posting a second one."""
    if "alert" in meta:
        kept: dict[str, Any] = json.loads(meta["alert"])
        return kept
    try:
        notifier.send(summary_alert(summary))
        alert: dict[str, Any] = {"sent": True}
    except LoyaltyError as exc:
        log.warning("run %s: alert not delivered: %s", run_id, exc)
        alert = {"sent": False, "error": str(exc)}
    ledger.update(run_id, alert=json.dumps(alert))
    return alert
