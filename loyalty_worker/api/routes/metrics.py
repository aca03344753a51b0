"""``GET /metrics``: Prometheus' text format, for the orgs the scraper's token may see.

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import logging

from fastapi import APIRouter, Response

from loyalty_worker.api.dashboard_deps import DashboardDep
from loyalty_worker.api.deps import Authenticated, DirectoryDep
from loyalty_worker.api.errors import responses
from loyalty_worker.errors import LoyaltyError
from loyalty_worker.services.dashboard.metrics import metrics_text

log = logging.getLogger(__name__)

router = APIRouter()


@router.get(
    "/metrics",
    summary="Loyalty metrics in Prometheus' text format",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4."},
        **responses(401, 503),
    },
)
def metrics(who: Authenticated, directory: DirectoryDep, dashboard: DashboardDep) -> Response:
    """Runs by status, the last run's duration and counts, customers by tier and status, the
    discrepancy rate and failures by reason (Alpine IQ and Alleaves errors), per org the
    token may act for."""
    grant = who.grant.orgs
    org_ids = dashboard.store.list_org_ids() if "*" in grant else sorted(grant)
    orgs = []
    for org_id in org_ids:
        try:
            orgs.append(directory.get_org_settings(org_id))
        except LoyaltyError as exc:
            log.warning("metrics: org %s left out: %s", org_id, exc)
    return Response(
        metrics_text(orgs, dashboard.store), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
