"""The enrollment list (the page at ``/dashboard/orgs/{orgId}/no-account``), its JSON twin and
its CSV for the org's marketing tool.

Contact details are shown in full to the org's people whose role lets them see contact details
(a viewer sees them masked; the JSON twin never answers a machine's token), the CSV with full
contact details is the admins' (``Action.EXPORT_CONTACTS``), and every CSV download is recorded
(``loyalty_exports``: who, when, how many rows, which filter).

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import logging
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from loyalty_worker.api.dashboard_deps import (
    ContactsExporter,
    ContactsReader,
    CursorParam,
    DashboardDep,
    PageSize,
    Reader,
    TierFilter,
    page_cursor,
)
from loyalty_worker.api.dashboard_pages import render
from loyalty_worker.api.errors import responses
from loyalty_worker.api.routes.dashboard_api import csv_response
from loyalty_worker.domain.access import Action
from loyalty_worker.ports.contacts import ContactStore
from loyalty_worker.services.dashboard.csv_export import csv_chunks
from loyalty_worker.services.dashboard.discrepancies import PAGE_SIZE
from loyalty_worker.services.dashboard.enrollment import (
    CSV_COLUMNS,
    NO_ACCOUNT,
    EnrollmentFilter,
    EnrollmentPage,
    Reach,
    Sort,
    audited,
    enrollment,
    enrollment_rows,
    masked_page,
)

log = logging.getLogger(__name__)

router = APIRouter()

ReachParam = Annotated[Reach, Query(description="How they can be reached.")]
SortParam = Annotated[Sort, Query(description="Most points from orders, or latest order first.")]


def enrollment_filter(
    reach: ReachParam = "usable",
    tier: TierFilter = None,
    sort: SortParam = "points",
    cursor: CursorParam = None,
    page_size: PageSize = PAGE_SIZE,
) -> EnrollmentFilter:
    """The list's filter, order and page, from the query: one dependency for the page, its
    JSON twin and its CSV."""
    return EnrollmentFilter(reach, tier or None, sort, page_cursor(cursor, sort), page_size)


FilterDep = Annotated[EnrollmentFilter, Depends(enrollment_filter)]


def _contacts(dashboard: DashboardDep) -> ContactStore:
    if dashboard.contacts is None:
        raise HTTPException(503, "contact details are not configured in this process")
    return dashboard.contacts


ContactsDep = Annotated[ContactStore, Depends(_contacts)]


def _query(flt: EnrollmentFilter) -> str:
    size = {"pageSize": str(flt.page_size)} if flt.page_size != PAGE_SIZE else {}
    return urlencode({**flt.query(), **size})


@router.get(
    "/dashboard/orgs/{orgId}/no-account", response_class=HTMLResponse, include_in_schema=False
)
def enrollment_page(
    request: Request,
    access: Reader,
    dashboard: DashboardDep,
    contacts: ContactsDep,
    flt: FilterDep,
) -> Response:
    org = access.org
    org_id = org.org_id
    every = dashboard.reads.submit(
        dashboard.store.count_profiles, org_id, {"loyaltyStatus": NO_ACCOUNT}
    )
    data = enrollment(
        org_id, contacts, flt, reads=dashboard.reads, exports_since=dashboard.audit_since()
    )
    if not access.may(Action.SEE_CONTACTS):
        data = masked_page(data)
    context = {
        "org_id": org_id,
        "data": data,
        "flt": flt,
        "every": every.result(),
        "tiers": [t.id for t in org.tiers],
        "query": _query(flt),
        "tz": org.timezone,
    }
    return render(request, "no_account.html", context, access)


@router.get(
    "/dashboard/orgs/{orgId}/no-account/enrollment.csv",
    response_class=Response,
    include_in_schema=False,
)
def enrollment_csv(
    access: ContactsExporter,
    dashboard: DashboardDep,
    contacts: ContactsDep,
    flt: FilterDep,
) -> Response:
    """Every row of the filter with full contact details, for the org's marketing tool; the
    export is recorded once the rows are sent."""
    org = access.org
    org_id = org.org_id
    log.info("%s: org %s: enrollment CSV (%s)", access.who.name, org_id, flt.describe())
    rows = audited(
        enrollment_rows(org_id, contacts, flt),
        contacts,
        org_id=org_id,
        by=access.who.name,
        at=dashboard.now(),
        flt=flt,
    )
    return csv_response(csv_chunks(rows, CSV_COLUMNS), f"{org_id}-enrollment.csv")


@router.get(
    "/api/loyalty/orgs/{orgId}/enrollment",
    summary="Customers to invite to an Alpine IQ account, with their contact details",
    response_model=EnrollmentPage,
    responses=responses(401, 403, 404, 503),
    tags=["dashboard"],
)
def enrollment_json(
    access: ContactsReader, dashboard: DashboardDep, contacts: ContactsDep, flt: FilterDep
) -> EnrollmentPage:
    """The enrollment page's rows (full phone and e-mail), for the org's people whose role
    lets them see contact details (never a machine's token)."""
    return enrollment(
        access.org_id, contacts, flt, reads=dashboard.reads, exports_since=dashboard.audit_since()
    )
