"""The dashboard's pages (``/dashboard``): server-rendered, working without JavaScript (a small
script only follows a run's progress and a Sync Now in place).

Each page calls the same service as its JSON route in ``dashboard_api`` and hands the model it
returns to a template; each form that changes anything posts the session's CSRF token and
answers with a redirect (303) to the page showing the result. Refusals are pages
(``dashboard_pages``).

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import logging
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from loyalty_worker.api.dashboard_deps import (
    AuditPageDep,
    CustomerPath,
    DashboardDep,
    PrincipalDep,
    Reader,
    ReviewFilterDep,
    RunPath,
    Searcher,
    Trigger,
    doer,
    roles,
)
from loyalty_worker.api.dashboard_pages import redirect, render
from loyalty_worker.api.deps import PublicUrlDep, ServicesDep
from loyalty_worker.api.routes.dashboard_reviews import DoneParam, page_banner
from loyalty_worker.domain.access import Action
from loyalty_worker.domain.review import CHOSEN_OUTCOMES
from loyalty_worker.domain.run import run_page_path
from loyalty_worker.services.dashboard.actions import sync_now, sync_result, trigger_run
from loyalty_worker.services.dashboard.customers import customer_page, history
from loyalty_worker.services.dashboard.discrepancies import discrepancies
from loyalty_worker.services.dashboard.formatting import bars
from loyalty_worker.services.dashboard.names import contacts_of, masked, names_of
from loyalty_worker.services.dashboard.overview import overview
from loyalty_worker.services.dashboard.run_page import run_page
from loyalty_worker.services.dashboard.search import Found, find_customers
from loyalty_worker.services.dashboard.trends import trend_charts, trends

log = logging.getLogger(__name__)

router = APIRouter(prefix="/dashboard", include_in_schema=False)

# --- Pages ------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def home(request: Request, who: PrincipalDep, dashboard: DashboardDep) -> Response:
    """The orgs the person holds a role in (straight to the one when there is one)."""
    held = roles(who, dashboard.members)
    if len(held) == 1:
        return redirect(f"/dashboard/orgs/{next(iter(held))}")
    orgs = [(org_id, held[org_id]) for org_id in sorted(held)]
    return render(request, "home.html", {"orgs": orgs}, who)


@router.get("/orgs/{orgId}", response_class=HTMLResponse)
def overview_page(request: Request, access: Reader, dashboard: DashboardDep) -> Response:
    org = access.org
    # The trends' one query goes out beside the overview's reads.
    shown = dashboard.reads.submit(trends, org, dashboard.store, now=dashboard.now())
    data = overview(
        org,
        dashboard.store,
        now=dashboard.now(),
        nightly_hour=dashboard.nightly_hour,
        reads=dashboard.reads,
    )
    trend = data.trend
    context = {
        "org_id": org.org_id,
        "data": data,
        "tier_bars": bars([(t.name, t.count) for t in data.tiers]),
        "rate_bars": bars(
            [(str(i + 1), round(r.discrepancy_rate * 100, 1)) for i, r in enumerate(trend)],
            height=100,
        ),
        "failed_bars": bars([(str(i + 1), r.failed) for i, r in enumerate(trend)], height=100),
    }
    context["trends"] = shown.result()
    context["trend_charts"] = trend_charts(shown.result())
    return render(request, "overview.html", context, access)


@router.post("/orgs/{orgId}/runs")
def trigger_page(
    access: Trigger,
    services: ServicesDep,
    dashboard: DashboardDep,
    kind: Annotated[str, Form(pattern="^(full|incremental|dry)$")],
) -> Response:
    org_id = access.org_id
    run_id, started = trigger_run(
        org_id,
        kind,
        runs=dashboard.triggers,
        records=services.tracker,
        enqueuer=services.enqueuer,
        new_run_id=services.new_run_id(org_id),
        doer=doer(access, dashboard),
    )
    suffix = "" if started else "?already=1"
    return redirect(f"/dashboard/orgs/{org_id}/runs/{run_id}{suffix}")


@router.get("/orgs/{orgId}/runs/{runId}", response_class=HTMLResponse)
def run_view(
    request: Request,
    access: Reader,
    run_id: RunPath,
    services: ServicesDep,
    dashboard: DashboardDep,
    public_url: PublicUrlDep,
    already: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    org = access.org
    tz = ZoneInfo(org.timezone)
    found = run_page(run_id, org.org_id, live=services.tracker, stored=services.store, tz=tz)
    # The page's own address as the run's alert links to it (``LOYALTY_PUBLIC_URL``).
    link = public_url + run_page_path(org.org_id, found.run_id)
    ids = [
        *(f.customer_id for f in found.failures),
        *(d.customer_id for d in found.largest_discrepancies),
        *(t.customer_id for t in found.tier_changes),
    ]
    names = names_of(dashboard.contacts, org.org_id, ids)
    context = {
        "org_id": org.org_id,
        "run": found,
        "already": bool(already),
        "link": link,
        "names": names,
    }
    return render(request, "run.html", context, access)


@router.get("/orgs/{orgId}/discrepancies", response_class=HTMLResponse)
def discrepancies_page(
    request: Request,
    access: Reader,
    dashboard: DashboardDep,
    flt: ReviewFilterDep,
    done: DoneParam = "",
) -> Response:
    org = access.org
    data = discrepancies(
        org.org_id, dashboard.store, flt, now=dashboard.now(), reads=dashboard.reads
    )
    query = flt.query()
    here = {**query, **({"cursor": flt.cursor.encode()} if flt.cursor else {})}
    context = {
        "org_id": org.org_id,
        "data": data,
        "tiers": [t.id for t in org.tiers],
        "query": urlencode(query),
        "back": str(request.url.path) + "?" + urlencode(here),
        "outcomes": CHOSEN_OUTCOMES,
        "banner": page_banner(org.org_id, done, dashboard),
        "tz": org.timezone,
        "names": names_of(dashboard.contacts, org.org_id, [d.customer_id for d in data.items]),
    }
    return render(request, "discrepancies.html", context, access)


@router.get("/orgs/{orgId}/customers", response_class=HTMLResponse)
def customers_page(
    request: Request,
    access: Searcher,
    services: ServicesDep,
    dashboard: DashboardDep,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    org = access.org
    org_id = org.org_id
    answer = Found(org_id=org_id, items=[])
    if q.strip():
        answer = find_customers(
            org_id, q, dashboard.store, phone_key=services.phone_key, contacts=dashboard.contacts
        )
    if len(answer.items) == 1:
        return redirect(f"/dashboard/orgs/{org_id}/customers/{answer.items[0].customer_id}")
    context = {"org_id": org_id, "q": q, "found": answer.items, "hint": answer.hint}
    return render(request, "customers.html", context, access)


@router.get("/orgs/{orgId}/customers/{customerId}", response_class=HTMLResponse)
def customer_view(
    request: Request,
    access: Reader,
    customer_id: CustomerPath,
    dashboard: DashboardDep,
    services: ServicesDep,
    task: Annotated[str, Query(max_length=64, pattern=r"^[A-Za-z0-9-]*$")] = "",
    fragment: Annotated[str, Query(pattern=r"^(panel)?$")] = "",
) -> Response:
    org = access.org
    # The task's state first, the profile after: a Sync Now read as done shows what it wrote.
    result = sync_result(org.org_id, task, dashboard.tasks) if task else None
    data = customer_page(
        org, customer_id, dashboard.store, now=dashboard.now(), remembered=services.tracker
    )
    contact = contacts_of(dashboard.contacts, org.org_id, [customer_id]).get(customer_id)
    if contact is not None and not access.may(Action.SEE_CONTACTS):
        contact = masked(contact)
    context = {
        "org_id": org.org_id,
        "c": data,
        "task": task,
        "result": result,
        "contact": contact or {},
    }
    # fragment=panel: the panel alone, which the script puts in place after a Sync Now
    name = "_customer_panel.html" if fragment else "customer.html"
    return render(request, name, context, access)


@router.post("/orgs/{orgId}/customers/{customerId}/sync")
def sync_now_page(
    access: Trigger,
    customer_id: CustomerPath,
    services: ServicesDep,
    dashboard: DashboardDep,
) -> Response:
    org_id = access.org_id
    task_id = sync_now(
        org_id,
        customer_id,
        store=dashboard.store,
        enqueuer=services.enqueuer,
        tasks=dashboard.tasks,
        doer=doer(access, dashboard),
    )
    return redirect(f"/dashboard/orgs/{org_id}/customers/{customer_id}?task={task_id}")


@router.get("/orgs/{orgId}/customers/{customerId}/history", response_class=HTMLResponse)
def history_page(
    request: Request,
    access: Reader,
    customer_id: CustomerPath,
    dashboard: DashboardDep,
    page: AuditPageDep,
    done: DoneParam = "",
) -> Response:
    org = access.org
    data = history(
        org,
        customer_id,
        dashboard.store,
        now=dashboard.now(),
        page=page,
        retention=dashboard.audit_retention,
    )
    shown = page_banner(org.org_id, done, dashboard)
    # a page size asked for is kept by the links
    size = {"pageSize": str(page.page_size)} if "pageSize" in request.query_params else {}
    context = {
        "org_id": org.org_id,
        "h": data,
        "banner": shown,
        "tz": org.timezone,
        "paged": page.cursor is not None,
        "audit_query": urlencode(size),
    }
    return render(request, "history.html", context, access)
