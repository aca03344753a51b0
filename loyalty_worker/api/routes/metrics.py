"""``GET /metrics``: Prometheus' text format, for the orgs the scraper's token may see.

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import logging
from collections.abc import Callable

from fastapi import APIRouter, Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from loyalty_worker.api import lookup_timing
from loyalty_worker.api.dashboard_deps import DashboardDep
from loyalty_worker.api.deps import Authenticated, DirectoryDep
from loyalty_worker.api.errors import responses
from loyalty_worker.errors import LoyaltyError
from loyalty_worker.services.dashboard.metrics import Sample, org_samples, render

log = logging.getLogger(__name__)

router = APIRouter()

# When this process's first scrape met each org.
_first_seen: dict[str, float] = {}


def _first_seen_by(now: float) -> Callable[[str, float | None], float]:
    def first_seen(org_id: str, oldest_run_start: float | None) -> float:
        # The org's oldest stored run (of the last 30), or this process's first scrape of it if
        # earlier: a time that only moves back, so a new org that never completes a run is
        # alerted on.
        met = _first_seen.setdefault(org_id, now)
        return met if oldest_run_start is None else min(met, oldest_run_start)

    return first_seen


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
    """Runs by status, the last full run's status, duration and counts, the synced share, the
    discrepancy rate and failures by reason, the last completed run's end and the next run due,
    customers by tier and status, per enabled org the token may act for; and the look-up's
    timing."""
    grant = who.grant.orgs
    org_ids = dashboard.store.list_org_ids() if "*" in grant else sorted(grant)
    samples: list[Sample] = []
    first_seen = _first_seen_by(dashboard.clock())
    for org_id in org_ids:
        try:
            org = directory.get_org_settings(org_id)
            samples += org_samples(
                org,
                dashboard.store,
                nightly_hour=dashboard.nightly_hour,
                first_seen=first_seen,
            )
        except LoyaltyError as exc:
            log.warning("metrics: org %s left out: %s", org_id, exc)
    body = render(samples) + generate_latest(lookup_timing.REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)  # the text generate_latest writes
