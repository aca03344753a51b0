"""The dashboard's JSON routes (``/api/loyalty/orgs/{orgId}/...``): every page's data, and its
actions, by bearer token or session cookie (``dashboard_deps``).

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from loyalty_worker.api.dashboard_deps import (
    ChangerDep,
    CustomerPath,
    DashboardDep,
    OrgPath,
    Viewer,
    ViewerDep,
)
from loyalty_worker.api.deps import DirectoryDep, ServicesDep, allow
from loyalty_worker.api.errors import invalid, responses
from loyalty_worker.api.models import RUN_ID_PATTERN
from loyalty_worker.api.orgs import OrgDirectory
from loyalty_worker.domain.phone import phone_hash
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.dashboard import views

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/loyalty/orgs/{orgId}", tags=["dashboard"])

RunPath = Annotated[str, Path(alias="runId", pattern=RUN_ID_PATTERN, description="The run id.")]
TaskPath = Annotated[
    str, Path(alias="taskId", pattern=r"^[A-Za-z0-9-]{1,64}$", description="The task id.")
]
CursorParam = Annotated[
    str | None,
    Query(
        max_length=2000,
        pattern=r"^[A-Za-z0-9_-]*$",
        description="Where the page starts: a list answer's `next` or `prev`; none: the first "
        "page.",
    ),
]
PageSize = Annotated[int, Query(alias="pageSize", ge=1, le=500)]
StatusFilter = Annotated[
    Literal["alpine_higher", "calculated_higher"] | None, Query(description="Status filter.")
]
StateFilter = Annotated[
    Literal["open", "acknowledged", "resolved", "all"], Query(description="Review state.")
]
TierFilter = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
SortBy = Annotated[Literal["size", "age"], Query(description="Largest first, or oldest first.")]
Search = Annotated[str, Query(alias="q", min_length=1, max_length=100)]

ERRORS = responses(401, 403, 404, 503)
# A route with a JSON body also answers 400 to a body that is not JSON.
BODY_ERRORS = responses(400, 401, 403, 404, 503)


class RunTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["full", "incremental", "dry"] = Field(
        description="A full run, an incremental one (orders since the last success), or a dry "
        "run (a preview: nothing written)."
    )


class RunTriggered(BaseModel):
    run_id: str = Field(serialization_alias="runId")
    started: bool = Field(description="False: the org's run already going is named instead.")
    page_url: str = Field(serialization_alias="pageUrl")


class ReviewChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Literal["open", "acknowledged", "resolved"]
    outcome: Literal["fixed", "expected", "no_action", "false_positive"] | None = None
    comment: str | None = Field(default=None, max_length=1000)


class SyncStarted(BaseModel):
    task_id: str = Field(serialization_alias="taskId")
    status_url: str = Field(serialization_alias="statusUrl")


def org_for(who: Viewer, org_id: str, directory: OrgDirectory) -> OrgSettings:
    """403 unless the caller may act for the org, 404 when it has no settings."""
    allow(who.caller, org_id)
    return directory.get_org_settings(org_id)


def now_of(dashboard: DashboardDep) -> datetime:
    return datetime.fromtimestamp(dashboard.clock(), UTC)


def page_cursor(token: str | None, sort: str) -> views.PageCursor | None:
    """The decoded ``cursor`` parameter; 422 for a token that is not one of this list's."""
    if not token:
        return None
    try:
        return views.PageCursor.decode(token, sort)
    except ValueError:
        raise invalid(
            ("query", "cursor"), "not a cursor of this list: use its next or prev"
        ) from None


def review_filter(
    status: StatusFilter = None,
    tier: TierFilter = None,
    state: StateFilter = "open",
    sort: SortBy = "size",
    cursor: CursorParam = None,
    page_size: PageSize = views.PAGE_SIZE,
) -> views.ReviewFilter:
    """The discrepancy list's filter, order and page, from the query: one dependency for its
    page, its JSON route and its CSV."""
    return views.ReviewFilter(
        status=status,
        tier=tier,
        state=None if state == "all" else state,
        sort=sort,
        cursor=page_cursor(cursor, sort),
        page_size=page_size,
    )


ReviewFilterDep = Annotated[views.ReviewFilter, Depends(review_filter)]


@dataclass(frozen=True, slots=True)
class PageRequest:
    cursor: views.PageCursor | None
    page_size: int


def page_request(cursor: CursorParam = None, page_size: PageSize = views.PAGE_SIZE) -> PageRequest:
    """A list's page (the no-account list): its cursor and size."""
    return PageRequest(page_cursor(cursor, views.NO_ACCOUNT_SORT), page_size)


PageDep = Annotated[PageRequest, Depends(page_request)]


def csv_response(chunks: Iterator[str], filename: str) -> Response:
    """A CSV download, streamed; its first chunk is read before the answer starts, so that a
    store that is down still gets its 503."""
    first = next(chunks, "")
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/overview", summary="The org at a glance", responses=ERRORS)
def overview(
    org_id: OrgPath, who: ViewerDep, directory: DirectoryDep, dashboard: DashboardDep
) -> dict[str, Any]:
    """Customers by tier and status, the last runs, the discrepancy rate and failures over the
    last 30 runs, the next nightly run (the org's time zone), points liability of both
    sources. The tier and status counts are those of the last completed run's summary
    (``countsAsOf`` names it; null: counted from the profiles, before any run)."""
    org = org_for(who, org_id, directory)
    return views.overview(
        org, dashboard.store, now=now_of(dashboard), nightly_hour=dashboard.nightly_hour
    )


@router.get("/runs/{runId}", summary="A run, as its page shows it", responses=ERRORS)
def run(
    org_id: OrgPath,
    run_id: RunPath,
    who: ViewerDep,
    directory: DirectoryDep,
    services: ServicesDep,
) -> dict[str, Any]:
    """Live progress while the run goes, then its summary: failures by reason, the largest
    discrepancies (phones masked), tier changes."""
    org = org_for(who, org_id, directory)
    from zoneinfo import ZoneInfo

    found = views.run_page(
        run_id, live=services.tracker, stored=services.store, tz=ZoneInfo(org.timezone)
    )
    if found is None or found["orgId"] != org_id:
        raise HTTPException(404, f"unknown run {run_id!r}")
    return found


@router.post(
    "/runs",
    status_code=202,
    summary="Start a full, incremental or dry run (or name the one going)",
    response_model=RunTriggered,
    responses=BODY_ERRORS,
)
def trigger(
    org_id: OrgPath,
    body: RunTrigger,
    who: ChangerDep,
    directory: DirectoryDep,
    services: ServicesDep,
    dashboard: DashboardDep,
) -> RunTriggered:
    org_for(who, org_id, directory)
    run_id, started = views.trigger_run(
        org_id, body.kind, runs=dashboard.triggers, new_run_id=services.new_run_id(org_id)
    )
    log.info("%s: org %s: %s run %s (started: %s)", who.who, org_id, body.kind, run_id, started)
    return RunTriggered(
        run_id=run_id, started=started, page_url=f"/dashboard/orgs/{org_id}/runs/{run_id}"
    )


@router.get("/discrepancies", summary="Discrepancies to review", responses=ERRORS)
def discrepancies(
    org_id: OrgPath,
    who: ViewerDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
    flt: ReviewFilterDep,
) -> dict[str, Any]:
    """Customers whose status is alpine_higher or calculated_higher, with their review state;
    sortable by size or age, filterable by status, tier and review state, a page at a time
    (`next` and `prev` are the cursors of the pages around this one, null at either end)."""
    org_for(who, org_id, directory)
    return views.discrepancies(org_id, dashboard.store, flt, now=now_of(dashboard))


@router.get(
    "/discrepancies.csv",
    summary="Discrepancies of the current filter, as CSV",
    response_class=Response,
    responses=ERRORS,
)
def discrepancies_csv(
    org_id: OrgPath,
    who: ViewerDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
    flt: ReviewFilterDep,
) -> Response:
    """Every row of the filter (the cursor and page size are ignored), streamed."""
    org_for(who, org_id, directory)
    rows = views.discrepancy_csv_rows(org_id, dashboard.store, flt, now=now_of(dashboard))
    columns = (
        "customerId", "status", "tier", "calculated", "alpine", "discrepancy", "daysOpen",
        "state", "outcome", "comment",
    )  # fmt: skip
    return csv_response(views.csv_chunks(rows, columns), f"{org_id}-discrepancies.csv")


@router.post(
    "/discrepancies/{customerId}/review",
    summary="Acknowledge, resolve or re-open a discrepancy",
    responses={**BODY_ERRORS, 409: {"description": "The review's state does not allow this."}},
)
def review(
    org_id: OrgPath,
    customer_id: CustomerPath,
    body: ReviewChange,
    who: ChangerDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
) -> dict[str, Any]:
    """open → acknowledged → resolved; resolving needs an outcome and a comment. Each change is
    kept as an audit entry (who, when, from → to)."""
    org_for(who, org_id, directory)
    try:
        return views.change_review(
            org_id,
            customer_id,
            to=body.to,
            by=who.who,
            store=dashboard.store,
            now=now_of(dashboard),
            outcome=body.outcome,
            comment=body.comment,
        )
    except views.NotFound:
        raise HTTPException(404, f"unknown customer {customer_id}") from None
    except views.ReviewRefused as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/no-account", summary="Customers without an Alpine IQ account", responses=ERRORS)
def no_account(
    org_id: OrgPath,
    who: ViewerDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
    services: ServicesDep,
    page: PageDep,
) -> dict[str, Any]:
    """Masked phone, points from orders and last order of each, by Alleaves id, a page at a
    time: prompt them to create one."""
    org_for(who, org_id, directory)
    return views.no_account(
        org_id,
        dashboard.store,
        cursor=page.cursor,
        page_size=page.page_size,
        remembered=services.tracker,
    )


@router.get(
    "/no-account.csv",
    summary="Customers without an Alpine IQ account, as CSV",
    response_class=Response,
    responses=ERRORS,
)
def no_account_csv(
    org_id: OrgPath,
    who: ViewerDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
    services: ServicesDep,
) -> Response:
    org_for(who, org_id, directory)
    rows = views.no_account_rows(org_id, dashboard.store, services.tracker)
    columns = ("customerId", "phone", "pointsFromOrders", "lastOrder", "tier")
    return csv_response(views.csv_chunks(rows, columns), f"{org_id}-no-alpine-account.csv")


@router.get("/customers", summary="Find customers by Alleaves id, name or phone", responses=ERRORS)
def find_customers(
    org_id: OrgPath,
    q: Search,
    who: ViewerDep,
    directory: DirectoryDep,
    services: ServicesDep,
    dashboard: DashboardDep,
) -> dict[str, Any]:
    org_for(who, org_id, directory)
    return {"orgId": org_id, "items": search(org_id, q, services.phone_key, dashboard)}


def search(
    org_id: str, q: str, phone_key: bytes | None, dashboard: DashboardDep
) -> list[dict[str, Any]]:
    hashed = None
    digits = "".join(ch for ch in q if ch.isdigit())
    if phone_key is not None and len(digits) >= 10:
        hashed = phone_hash(digits, phone_key) or None
    return views.find_customers(org_id, q, dashboard.store, phone_hash=hashed)


@router.get("/customers/{customerId}", summary="A customer's loyalty panel", responses=ERRORS)
def customer(
    org_id: OrgPath,
    customer_id: CustomerPath,
    who: ViewerDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
) -> dict[str, Any]:
    """Points and where they come from (the counted orders), Alpine IQ balance and tier,
    discrepancy, tier source, last changed and last verified."""
    org = org_for(who, org_id, directory)
    try:
        return views.customer_page(
            org,
            customer_id,
            dashboard.store,
            last_verified=views.last_verified(org, dashboard.store),
        )
    except views.NotFound:
        raise HTTPException(404, f"unknown customer {customer_id}") from None


@router.get(
    "/customers/{customerId}/history",
    summary="A customer's loyalty history and review audit",
    responses=ERRORS,
)
def customer_history(
    org_id: OrgPath,
    customer_id: CustomerPath,
    who: ViewerDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
) -> dict[str, Any]:
    """One entry per sync that changed the profile: when, run, points/tier/status before →
    after."""
    org = org_for(who, org_id, directory)
    try:
        return views.history(org, customer_id, dashboard.store)
    except views.NotFound:
        raise HTTPException(404, f"unknown customer {customer_id}") from None


@router.post(
    "/customers/{customerId}/sync",
    status_code=202,
    summary="Sync Now: enqueue one customer's sync",
    response_model=SyncStarted,
    responses=ERRORS,
)
def sync_now(
    org_id: OrgPath,
    customer_id: CustomerPath,
    who: ChangerDep,
    directory: DirectoryDep,
    services: ServicesDep,
    dashboard: DashboardDep,
) -> SyncStarted:
    org_for(who, org_id, directory)
    if dashboard.store.get_profile(org_id, customer_id) is None:
        raise HTTPException(404, f"unknown customer {customer_id}")
    task_id = services.enqueuer.sync_customer(org_id, customer_id)
    log.info("%s: org %s customer %d: sync now (task %s)", who.who, org_id, customer_id, task_id)
    return SyncStarted(task_id=task_id, status_url=f"/api/loyalty/orgs/{org_id}/tasks/{task_id}")


@router.get("/tasks/{taskId}", summary="What became of a Sync Now", responses=ERRORS)
def task(
    org_id: OrgPath,
    task_id: TaskPath,
    who: ViewerDep,
    directory: DirectoryDep,
    dashboard: DashboardDep,
) -> dict[str, Any]:
    org_for(who, org_id, directory)
    outcome = dashboard.tasks.outcome(task_id)
    result = outcome.get("result") if outcome else None
    if isinstance(result, dict) and result.get("orgId") not in (None, org_id):
        raise HTTPException(404, f"unknown task {task_id!r}")
    return views.sync_result(outcome)
