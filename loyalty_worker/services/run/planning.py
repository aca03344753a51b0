"""Planning a run: the plan's reads (``services.run.plan``) under the run's options, tried
again after a transient error; its history read in slices by other workers when it can be."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta

from loyalty_worker.errors import LoyaltyError
from loyalty_worker.services.run.context import Batch, BatchOptions, OrgAdapters, RunPorts
from loyalty_worker.services.run.history_slices import (
    HistorySlice,
    SlicedHistory,
    SliceReader,
    read_slice,
)
from loyalty_worker.services.run.memo import MemoCarryOver
from loyalty_worker.services.run.plan import (
    HistoryReader,
    PlanHooks,
    PlanSources,
    PlanWindow,
    RunPlan,
    plan_run,
)
from loyalty_worker.services.sync.deadline import Deadline
from loyalty_worker.services.sync.order_history import OrderHistory, read_orders
from loyalty_worker.services.sync.paging import HistoryWindow, Paging

log = logging.getLogger(__name__)


def make_plan(batch: Batch, *, today: date, sleep: Callable[[float], None]) -> RunPlan:
    """The run's plan (``plan.plan_run``) under the run's options, its planning started again
    after a transient error (``BatchOptions.plan_retries``) within one budget for every try.

    With ``since`` (incremental) only the orders created since then, less the overlap, are
    read, and the customers the memo shows unchanged are carried over (``services.run.memo``).
    With the process's look-up pool, a full run's Alpine IQ look-ups start while its history is
    read."""
    request, org, ports = batch.request, batch.org, batch.ports
    options = ports.options
    deadline = Deadline(options.plan_budget_s)  # one budget for every try
    sources = PlanSources(request.org_id, org.alleaves, org.alpine, ports.store)
    # One day past today: an order placed this evening in the org's timezone is already dated
    # tomorrow in UTC.
    history = HistoryWindow(options.history_start, today + timedelta(days=1), options.window_days)
    since = request.since
    window = PlanWindow(history, since - timedelta(days=options.overlap_days) if since else None)
    hooks = PlanHooks(
        carry_over=MemoCarryOver(
            org_id=request.org_id,
            run_id=request.run_id,
            ledger=ports.ledger,
            rules=org.settings.rules(),
            phone_key=options.phone_key,
            dry_run=request.dry_run,
        ),
        history_reader=_sliced_history(batch, deadline, sleep),
        lookups=ports.lookups if options.plan_lookups else None,
        sleep=sleep,
        selection=request.selection,
    )
    paging = Paging(options.parallelism, options.max_pages, deadline)
    return options.plan_retries.call(
        lambda: plan_run(sources, window, paging, hooks),
        what=f"run {request.run_id}: planning",
        sleep=sleep,
    )


def _slice_reader(org: OrgAdapters, options: BatchOptions, deadline: Deadline) -> SliceReader:
    """How this process reads a slice of the org's history: the slices side by side split
    the order fetch parallelism between them."""

    def read(part: HistorySlice, before_page: Callable[[], None]) -> OrderHistory:
        return read_orders(
            org.alleaves,
            HistoryWindow(part.start, part.end, options.window_days),
            Paging(max(1, -(-options.parallelism // part.count)), options.max_pages, deadline),
            before_page=before_page,
            share=(part.index, part.count),
        )

    return read


def _sliced_history(
    batch: Batch, deadline: Deadline, sleep: Callable[[float], None]
) -> HistoryReader | None:
    """The plan's history read in slices by every process that takes one (None: the
    planner reads it alone, as it does with one slice or nobody to hand slices to)."""
    request, options, slices = batch.request, batch.ports.options, batch.ports.slices
    send = batch.dispatch.read_orders
    if slices is None or send is None or options.plan_slices <= 1:
        return None
    return SlicedHistory(
        request.org_id,
        request.run_id,
        count=options.plan_slices,
        read=_slice_reader(batch.org, options, deadline),
        slices=slices,
        send=send,
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
