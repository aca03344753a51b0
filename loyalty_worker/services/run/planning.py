"""Planning a run: the plan's reads (``services.run.plan``) with the run's options, tried again
after a transient error; its history read in slices by other workers when it can be."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from loyalty_worker.errors import LoyaltyError
from loyalty_worker.services.run.context import Batch, BatchOptions, OrgAdapters, RunPorts
from loyalty_worker.services.run.history_slices import (
    HistorySlice,
    SliceReader,
    gather_history,
    read_slice,
)
from loyalty_worker.services.run.memo import carry_over
from loyalty_worker.services.run.plan import HistoryReader, RunPlan, plan_run, read_orders
from loyalty_worker.services.sync.deadline import Deadline
from loyalty_worker.services.sync.order_history import OrderHistory

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
    since = request.since
    deadline = Deadline(options.plan_budget_s)  # one budget for every try
    carry = partial(
        _carry_over_now,
        org_id=request.org_id,
        run_id=request.run_id,
        ledger=ports.ledger,
        rules=org.settings.rules(),
        phone_key=options.phone_key,
        dry_run=request.dry_run,
    )
    plan = partial(
        plan_run,
        request.org_id,
        org.alleaves,
        org.alpine,
        ports.store,
        history_start=options.history_start,
        # One day past today: an order placed this evening in the org's timezone is already
        # dated tomorrow in UTC.
        today=today + timedelta(days=1),
        window_days=options.window_days,
        parallelism=options.parallelism,
        recent_since=since - timedelta(days=options.overlap_days) if since else None,
        carry_over=carry,
        sleep=sleep,
        max_pages=options.max_pages,
        deadline=deadline,
        history_reader=_history_reader(batch, deadline, sleep),
        lookups=ports.lookups if options.plan_lookups else None,
    )
    return options.plan_retries.call(plan, what=f"run {request.run_id}: planning", sleep=sleep)


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
    batch: Batch, deadline: Deadline, sleep: Callable[[float], None]
) -> HistoryReader | None:
    """The plan's history read in slices by every process that takes one (None: the
    planner reads it alone, as it does with one slice or nobody to hand slices to)."""
    request, options, slices = batch.request, batch.ports.options, batch.ports.slices
    send = batch.dispatch.read_orders
    if slices is None or send is None or options.plan_slices <= 1:
        return None
    return partial(
        gather_history,
        request.org_id,
        request.run_id,
        read=_slice_reader(batch.org, options, deadline),
        slices=slices,
        count=options.plan_slices,
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


def _carry_over_now(plan: RunPlan, **kwargs: Any) -> set[int]:
    """``memo.carry_over``, its kept results stamped with the time they are carried."""
    return carry_over(plan, stamp=datetime.now(UTC).isoformat(), **kwargs)
