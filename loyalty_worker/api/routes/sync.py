"""``POST /api/loyalty/sync``: enqueue an org's run or one customer's sync.

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import logging
from typing import Any

from fastapi import APIRouter, Response

from loyalty_worker import log_context
from loyalty_worker.api.dashboard_deps import PrincipalDep, check
from loyalty_worker.api.deps import DirectoryDep, ServicesDep
from loyalty_worker.api.errors import responses
from loyalty_worker.api.models import RunAccepted, SyncRequest, TaskAccepted
from loyalty_worker.domain.access import Action
from loyalty_worker.services.run.triggers import enqueue_org_run

log = logging.getLogger(__name__)

router = APIRouter()


@router.post(
    "/api/loyalty/sync",
    status_code=202,
    summary="Trigger a sync of an org, or of one customer",
    response_model=RunAccepted | TaskAccepted,
    responses=responses(400, 401, 403, 404, 503),
)
def trigger_sync(
    body: SyncRequest,
    who: PrincipalDep,
    response: Response,
    services: ServicesDep,
    directory: DirectoryDep,
) -> Any:
    """Enqueue ``loyalty.sync_org`` (answers a run id) or ``loyalty.sync_customer`` (a task
    id). A second org run while one is going is refused by the worker: its run reads
    ``duplicate`` and names the running one."""
    check(who, body.org_id, Action.TRIGGER, None)
    directory.get_org_settings(body.org_id)
    if body.customer_id is not None:
        log_context.bind(customer_id=body.customer_id)
        task_id = services.enqueuer.sync_customer(
            body.org_id, body.customer_id, dry_run=body.dry_run
        )
        log.info(
            "caller %s: org %s customer %d: sync enqueued (task %s)",
            who.name,
            body.org_id,
            body.customer_id,
            task_id,
        )
        return TaskAccepted(task_id=task_id)
    run_id = services.new_run_id(body.org_id)
    log_context.bind(run_id=run_id)  # the trigger line joins the run's lines in the workers
    enqueue_org_run(
        body.org_id,
        run_id,
        dry_run=body.dry_run,
        runs=services.tracker,
        enqueuer=services.enqueuer,
    )
    log.info("caller %s: org %s: run %s enqueued", who.name, body.org_id, run_id)
    status_url = f"/api/loyalty/runs/{run_id}"
    response.headers["Location"] = status_url
    return RunAccepted(run_id=run_id, status_url=status_url)
