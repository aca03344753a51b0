"""``GET /api/loyalty/runs/{runId}``: follow a run.

A run of another org answers the very 404 of a run that does not exist: a caller cannot learn
which org a run id belongs to, nor that it exists.

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import logging
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from loyalty_worker import log_context
from loyalty_worker.api.deps import Authenticated, ServicesDep
from loyalty_worker.api.errors import responses
from loyalty_worker.api.models import RUN_ID_PATTERN, RunStatus
from loyalty_worker.services.run.view import find_run

log = logging.getLogger(__name__)

router = APIRouter()


@router.get(
    "/api/loyalty/runs/{runId}",
    summary="A run's progress and summary",
    response_model=RunStatus,
    response_model_exclude_none=True,
    responses=responses(401, 404, 503),
)
def run_status(
    run_id: Annotated[str, Path(alias="runId", pattern=RUN_ID_PATTERN, description="The run id.")],
    who: Authenticated,
    services: ServicesDep,
) -> RunStatus:
    """Live progress from Redis; once Redis has forgotten the run, its stored summary."""
    log_context.bind(run_id=run_id)
    run = find_run(run_id, live=services.tracker, stored=services.store)
    if run is None or not who.allows(run.org_id):
        if run is not None:
            log.warning("caller %s refused run %s of another org", who.fingerprint, run_id)
        raise HTTPException(404, f"unknown run {run_id!r}")
    log_context.bind(org_id=run.org_id)
    return RunStatus(**asdict(run))
