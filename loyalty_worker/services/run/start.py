"""An org's run as a trigger asks for it: the org named, ``since`` as given, then ``start_batch``.

A run whose org cannot be served (no settings, invalid ones, no credentials) fails the way a
run whose planning fails does (``opening.fail_start``): a ``failed`` summary and one alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from loyalty_worker import log_context
from loyalty_worker.domain.selection import CustomerSelection
from loyalty_worker.errors import LoyaltyError
from loyalty_worker.services.run.batch import start_batch
from loyalty_worker.services.run.context import BatchStart, RunDispatch, RunPorts, RunRequest
from loyalty_worker.services.run.opening import fail_start, record_start

log = logging.getLogger(__name__)


def parse_since(value: str | None, last_success: float | None) -> date | None:
    """``since`` as a day: an ISO date (or date-time), ``"last"`` (the day of the org's last
    fully successful run, None when there is none: a full run), or None (a full run)."""
    if value is None:
        return None
    if value == "last":
        return None if last_success is None else datetime.fromtimestamp(last_success, UTC).date()
    return date.fromisoformat(value[:10])


@dataclass(frozen=True, slots=True)
class Asked:
    """What the planner's message asked for, as it carries it: dry or not, ``since`` (an ISO
    date or ``"last"``; None: a full run) and a partial run's ``selection``
    (``CustomerSelection.encode``; None: every customer)."""

    dry_run: bool = False
    since: str | None = None
    selection: str | None = None


def start_run(
    org_id: str,
    run_id: str,
    asked: Asked,
    *,
    last_success: Callable[[str], float | None],
    ports: RunPorts,
    dispatch: RunDispatch,
    planner: str = "",
) -> BatchStart:
    """Start the org's run: a full one, or, with ``since``, an incremental one, or, with a
    ``selection``, a partial one of those customers only (``start_batch``), planned under the
    token ``planner``."""
    # A planner sent without a run id (a plain ``send_task``) got one in its task: the rest of
    # the task's lines carry it.
    log_context.bind(org_id=org_id, run_id=run_id)
    selection = asked.selection
    request = RunRequest(
        org_id,
        run_id,
        dry_run=asked.dry_run,
        since=parse_since(asked.since, last_success(org_id)),
        planner=planner,
        selection=None if selection is None else CustomerSelection.decode(selection),
    )
    try:
        org = ports.org_for(org_id)
    except LoyaltyError as exc:
        record_start(request, ports.ledger)
        started = fail_start(request, exc, ledger=ports.ledger, dispatch=dispatch)
    else:
        started = start_batch(request, org, ports, dispatch)
    outcome = "started" if started.started else "not started"
    log.info(
        "run %s: org %s: %s, %d listed",
        run_id,
        org_id,
        outcome,
        started.listed,
        extra={"outcome": outcome},
    )
    return started
