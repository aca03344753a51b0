"""A batch run from trigger to summary, independent of Celery.

``start_batch`` opens the run (``opening``: the org's lock, the run's record), plans it
(``planning``, over ``plan``) and dispatches the plan (``dispatch``): each chunk of customers'
work goes to ``RunDispatch.enqueue``. Every finished customer's result goes through
``closing.record_results``; the one that completes the run gets True and has the run closed
(``closing.close_run``): its summary written and one alert sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date

from loyalty_worker.errors import LoyaltyError
from loyalty_worker.services.run.context import (
    Batch,
    BatchStart,
    OrgAdapters,
    RunDispatch,
    RunPorts,
    RunRequest,
)
from loyalty_worker.services.run.dispatch import dispatch_plan
from loyalty_worker.services.run.opening import fail_start, open_run
from loyalty_worker.services.run.planning import make_plan

log = logging.getLogger(__name__)


def start_batch(
    request: RunRequest,
    org: OrgAdapters,
    ports: RunPorts,
    dispatch: RunDispatch,
    *,
    today: date | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchStart:
    """Plan the org's run and enqueue its customers in chunks; at most one run per org at a time.

    Three steps: open the run (its lock and record), plan it (``planning.make_plan``), dispatch
    the plan (``dispatch.dispatch_plan``). A LoyaltyError while planning (bad credentials,
    Alleaves down) ends the run at once as ``failed`` (``fail_start``): its summary and its one
    alert say why.
    """
    ledger, options = ports.ledger, ports.options
    refused = open_run(request, ledger=ledger, store=ports.store, lock_ttl_s=options.lock_ttl_s)
    if refused is not None:
        return refused
    claim = ledger.claim_planner(
        request.run_id, holder=request.planner, stale_s=options.planner_stale_s
    )
    if claim != "claimed":
        # A redelivered or re-sent planner of a run another planner has (or had) in hand.
        log.info("run %s: planning %s; nothing to do", request.run_id, claim)
        return BatchStart(request.run_id, started=False, message=f"run {claim}")
    batch = Batch(request, org, ports, dispatch)
    try:
        plan = make_plan(batch, today=today or date.today(), sleep=sleep)
    except LoyaltyError as exc:
        return fail_start(request, exc, ledger=ledger, dispatch=dispatch)
    try:
        dispatch_plan(batch, plan)
    finally:
        plan.close()  # reads ahead no longer needed, if the loop stopped early
    return BatchStart(request.run_id, started=True, listed=plan.listed)
