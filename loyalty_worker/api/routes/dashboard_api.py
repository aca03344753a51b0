"""The dashboard's JSON routes (``/api/loyalty/orgs/{orgId}/...``): every page's data, and its
actions, by bearer token or session cookie (``dashboard_deps``). Each answers the model its
service returns, which the OpenAPI schema describes.

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from loyalty_worker.api.dashboard_deps import (
    AuditPageDep,
    CustomerPath,
    DashboardDep,
    PageDep,
    ReadOrg,
    Reviewer,
    ReviewFilterDep,
    RunPath,
    Searcher,
    TaskPath,
    Trigger,
    doer,
)
from loyalty_worker.api.deps import ServicesDep
from loyalty_worker.api.errors import responses
from loyalty_worker.domain.review import Move
from loyalty_worker.services.dashboard import discrepancies as discrepancy_list
from loyalty_worker.services.dashboard import no_account as no_account_list
from loyalty_worker.services.dashboard.actions import SyncShown, sync_now, sync_result, trigger_run
from loyalty_worker.services.dashboard.csv_export import csv_chunks
from loyalty_worker.services.dashboard.customers import (
    CustomerPage,
    History,
    customer_page,
    history,
)
from loyalty_worker.services.dashboard.discrepancies import DiscrepancyPage
from loyalty_worker.services.dashboard.no_account import NoAccountPage
from loyalty_worker.services.dashboard.overview import Overview, overview
from loyalty_worker.services.dashboard.review_changes import (
    ReviewsChanged,
    change_reviews,
    undo_reviews,
)
from loyalty_worker.services.dashboard.reviews import ReviewChanged, change_review
from loyalty_worker.services.dashboard.run_page import RunPage, run_page
from loyalty_worker.services.dashboard.search import Found, find_customers
from loyalty_worker.services.dashboard.trends import Trends, trends

log = logging.getLogger(__name__)


@asynccontextmanager
async def _reads(app: FastAPI) -> AsyncIterator[None]:
    """The dashboard's read threads stop with the app."""
    yield
    services = getattr(app.state, "dashboard", None)
    if services is not None:
        services.close()


router = APIRouter(prefix="/api/loyalty/orgs/{orgId}", tags=["dashboard"], lifespan=_reads)

Search = Annotated[str, Query(alias="q", min_length=1, max_length=100)]
ERRORS = responses(401, 403, 404, 503)
# A route with a JSON body also answers 400 to a body that is not JSON.
BODY_ERRORS = responses(400, 401, 403, 404, 503)
REFUSED = {**BODY_ERRORS, 409: {"description": "A review's state does not allow this."}}


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


class BulkReview(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_ids: list[Annotated[int, Field(ge=1, le=2**53)]] = Field(
        alias="customerIds", min_length=1, max_length=500
    )
    to: Literal["acknowledged", "resolved"]
    outcome: Literal["fixed", "expected", "no_action", "false_positive"] | None = None
    comment: str | None = Field(default=None, max_length=1000)


class UndoneChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: int = Field(alias="customerId", ge=1, le=2**53)
    entry_id: str = Field(
        alias="entryId", pattern=r"^[A-Za-z0-9]{1,40}$", description="The audit entry's id."
    )


class UndoChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    changes: list[UndoneChange] = Field(min_length=1, max_length=500)


class SyncStarted(BaseModel):
    task_id: str = Field(serialization_alias="taskId")
    status_url: str = Field(serialization_alias="statusUrl")


def csv_response(chunks: Iterator[str], filename: str) -> Response:
    """A CSV download, streamed; its first chunk is read before the answer starts, so that a
    store that is down still gets its 503."""
    first = next(chunks, "")
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/overview", summary="The org at a glance", response_model=Overview, responses=ERRORS)
def org_overview(org: ReadOrg, dashboard: DashboardDep) -> Overview:
    """Customers by tier and status, the last runs, the discrepancy rate and failures over the
    last 30 runs, the next nightly run (the org's time zone), points liability of both
    sources. The tier and status counts are those of the last completed run's summary
    (``countsAsOf`` names it; null: counted from the profiles, before any run)."""
    return overview(
        org,
        dashboard.store,
        now=dashboard.now(),
        nightly_hour=dashboard.nightly_hour,
        reads=dashboard.reads,
    )


@router.get(
    "/trends", summary="Trends over the last 90 days", response_model=Trends, responses=ERRORS
)
def org_trends(org: ReadOrg, dashboard: DashboardDep) -> Trends:
    """The org's completed full runs of the last 90 days, oldest first, as the overview's trend
    charts draw them: points liability of both sources, the discrepancy rate (customers
    ``alpine_higher`` or ``calculated_higher`` over the customers the run synced) and customers
    by tier, each from the run's summary. ``enough`` is false before two such runs."""
    return trends(org, dashboard.store, now=dashboard.now())


@router.get(
    "/runs/{runId}", summary="A run, as its page shows it", response_model=RunPage, responses=ERRORS
)
def run(org: ReadOrg, run_id: RunPath, services: ServicesDep) -> RunPage:
    """Live progress while the run goes, then its summary: failures by reason, the largest
    discrepancies (phones masked), tier changes."""
    tz = ZoneInfo(org.timezone)
    return run_page(run_id, org.org_id, live=services.tracker, stored=services.store, tz=tz)


@router.post(
    "/runs",
    status_code=202,
    summary="Start a full, incremental or dry run (or name the one going)",
    response_model=RunTriggered,
    responses=BODY_ERRORS,
)
def trigger(
    body: RunTrigger,
    access: Trigger,
    services: ServicesDep,
    dashboard: DashboardDep,
) -> RunTriggered:
    org_id = access.org_id
    run_id, started = trigger_run(
        org_id,
        body.kind,
        runs=dashboard.triggers,
        records=services.tracker,
        enqueuer=services.enqueuer,
        new_run_id=services.new_run_id(org_id),
        doer=doer(access, dashboard),
    )
    return RunTriggered(
        run_id=run_id, started=started, page_url=f"/dashboard/orgs/{org_id}/runs/{run_id}"
    )


@router.get(
    "/discrepancies",
    summary="Discrepancies to review",
    response_model=DiscrepancyPage,
    responses=ERRORS,
)
def discrepancies(org: ReadOrg, dashboard: DashboardDep, flt: ReviewFilterDep) -> DiscrepancyPage:
    """Customers whose status is alpine_higher or calculated_higher, with their review state;
    sortable by size or age, filterable by status, tier and review state, a page at a time
    (`next` and `prev` are the cursors of the pages around this one, null at either end)."""
    return discrepancy_list.discrepancies(
        org.org_id, dashboard.store, flt, now=dashboard.now(), reads=dashboard.reads
    )


@router.get(
    "/discrepancies.csv",
    summary="Discrepancies of the current filter, as CSV",
    response_class=Response,
    responses=ERRORS,
)
def discrepancies_csv(org: ReadOrg, dashboard: DashboardDep, flt: ReviewFilterDep) -> Response:
    """Every row of the filter (the cursor and page size are ignored), streamed."""
    rows = discrepancy_list.discrepancy_csv_rows(
        org.org_id, dashboard.store, flt, now=dashboard.now()
    )
    chunks = csv_chunks(rows, discrepancy_list.CSV_COLUMNS)
    return csv_response(chunks, f"{org.org_id}-discrepancies.csv")


@router.post(
    "/discrepancies/{customerId}/review",
    summary="Acknowledge, resolve or re-open a discrepancy",
    response_model=ReviewChanged,
    responses=REFUSED,
)
def review(
    customer_id: CustomerPath,
    body: ReviewChange,
    access: Reviewer,
    dashboard: DashboardDep,
) -> ReviewChanged:
    """open → acknowledged → resolved; resolving needs an outcome and a comment. Each change is
    kept as an audit entry (who, when, from → to)."""
    move = Move(body.to, body.outcome, body.comment)
    return change_review(
        access.org_id,
        customer_id,
        move,
        by=access.who.name,
        store=dashboard.store,
        now=dashboard.now(),
    )


@router.post(
    "/discrepancies/bulk-review",
    summary="Acknowledge or resolve many discrepancies at once",
    response_model=ReviewsChanged,
    responses=REFUSED,
)
def bulk_review(body: BulkReview, access: Reviewer, dashboard: DashboardDep) -> ReviewsChanged:
    """Each customer's change is its own audit entry; all or none (409 names the customers a
    change does not fit). Resolving needs an outcome and a comment."""
    move = Move(body.to, body.outcome, body.comment)
    return change_reviews(
        access.org_id,
        body.customer_ids,
        move,
        by=access.who.name,
        store=dashboard.store,
        now=dashboard.now(),
    )


@router.post(
    "/discrepancies/undo",
    summary="Undo review changes",
    response_model=ReviewsChanged,
    responses=REFUSED,
)
def undo_review_changes(
    body: UndoChanges, access: Reviewer, dashboard: DashboardDep
) -> ReviewsChanged:
    """Undo each named change (a review change's `entryId`): the review back to how it was,
    as its own audit entry. Only a person's latest change of a review, for 10 minutes after it
    was made; all or none (409 says why)."""
    changes = [(item.customer_id, item.entry_id) for item in body.changes]
    return undo_reviews(
        access.org_id, changes, by=access.who.name, store=dashboard.store, now=dashboard.now()
    )


@router.get(
    "/no-account",
    summary="Customers without an Alpine IQ account",
    response_model=NoAccountPage,
    responses=ERRORS,
)
def no_account(
    org: ReadOrg, dashboard: DashboardDep, services: ServicesDep, page: PageDep
) -> NoAccountPage:
    """Masked phone, points from orders and last order of each, by Alleaves id, a page at a
    time: prompt them to create one."""
    return no_account_list.no_account(
        org.org_id,
        dashboard.store,
        cursor=page.cursor,
        page_size=page.page_size,
        remembered=services.tracker,
        reads=dashboard.reads,
    )


@router.get(
    "/no-account.csv",
    summary="Customers without an Alpine IQ account, as CSV",
    response_class=Response,
    responses=ERRORS,
)
def no_account_csv(org: ReadOrg, dashboard: DashboardDep, services: ServicesDep) -> Response:
    rows = no_account_list.no_account_rows(org.org_id, dashboard.store, services.tracker)
    chunks = csv_chunks(rows, no_account_list.CSV_COLUMNS)
    return csv_response(chunks, f"{org.org_id}-no-alpine-account.csv")


@router.get(
    "/customers",
    summary="Find customers by Alleaves id, name or phone",
    response_model=Found,
    responses=ERRORS,
)
def customers(access: Searcher, q: Search, services: ServicesDep, dashboard: DashboardDep) -> Found:
    return find_customers(
        access.org_id, q, dashboard.store, phone_key=services.phone_key, contacts=dashboard.contacts
    )


@router.get(
    "/customers/{customerId}",
    summary="A customer's loyalty panel",
    response_model=CustomerPage,
    responses=ERRORS,
)
def customer(
    org: ReadOrg, customer_id: CustomerPath, services: ServicesDep, dashboard: DashboardDep
) -> CustomerPage:
    """Points and where they come from (the counted orders), Alpine IQ balance and tier,
    discrepancy, tier source, last changed and last verified (and how long ago)."""
    return customer_page(
        org, customer_id, dashboard.store, now=dashboard.now(), remembered=services.tracker
    )


@router.get(
    "/customers/{customerId}/history",
    summary="A customer's loyalty history and review audit",
    response_model=History,
    responses=ERRORS,
)
def customer_history(
    org: ReadOrg, customer_id: CustomerPath, dashboard: DashboardDep, page: AuditPageDep
) -> History:
    """One entry per sync that changed the profile: when, run, points/tier/status before →
    after; and the review's audit a page at a time, newest first (`next` and `prev` are the
    cursors of its older and newer pages, null at either end; at most 100 entries a page).
    Audit entries older than the retention (`LOYALTY_AUDIT_RETENTION_DAYS`) are not shown."""
    return history(
        org,
        customer_id,
        dashboard.store,
        now=dashboard.now(),
        page=page,
        retention=dashboard.audit_retention,
    )


@router.post(
    "/customers/{customerId}/sync",
    status_code=202,
    summary="Sync Now: enqueue one customer's sync",
    response_model=SyncStarted,
    responses=ERRORS,
)
def sync_customer(
    customer_id: CustomerPath,
    access: Trigger,
    services: ServicesDep,
    dashboard: DashboardDep,
) -> SyncStarted:
    org_id = access.org_id
    task_id = sync_now(
        org_id,
        customer_id,
        store=dashboard.store,
        enqueuer=services.enqueuer,
        tasks=dashboard.tasks,
        doer=doer(access, dashboard),
    )
    return SyncStarted(task_id=task_id, status_url=f"/api/loyalty/orgs/{org_id}/tasks/{task_id}")


@router.get(
    "/tasks/{taskId}",
    summary="What became of a Sync Now",
    response_model=SyncShown,
    response_model_exclude_unset=True,
    responses=ERRORS,
)
def task(org: ReadOrg, task_id: TaskPath, dashboard: DashboardDep) -> SyncShown:
    """The task's state; once it succeeded, what the sync did (a part its result lacks is left
    out)."""
    return sync_result(org.org_id, task_id, dashboard.tasks)
