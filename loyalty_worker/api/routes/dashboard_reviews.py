"""The dashboard's review forms: one review's move, a bulk acknowledge or resolve, and Undo.

Each posts the session's CSRF token and answers with a redirect (303) back to the page it came
from, the changes named in its query (``?done={customerId}.{entryId},...``): that page reads
them back from the audit and shows the banner, with Undo while it works (``banner``). Without
JavaScript this is the whole flow.

No ``from __future__ import annotations``: FastAPI reads the route's annotations at run time.
"""

import logging
import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import Response

from loyalty_worker.api.dashboard_deps import CustomerPath, DashboardDep, Reviewer
from loyalty_worker.api.dashboard_pages import redirect
from loyalty_worker.domain.review import Move
from loyalty_worker.services.dashboard.review_changes import (
    Banner,
    ReviewsChanged,
    banner,
    change_reviews,
    change_token,
    parse_changes,
    undo_reviews,
)
from loyalty_worker.services.dashboard.reviews import change_review

log = logging.getLogger(__name__)

router = APIRouter(prefix="/dashboard", include_in_schema=False)

# The ``done`` query parameter a page takes: the changes its banner shows.
DoneParam = Annotated[
    str, Query(max_length=12000, pattern=r"^[0-9A-Za-z.,]*$", description="Changes just made.")
]
_HISTORY = re.compile(r"^/dashboard/orgs/[^/]+/customers/[0-9]+/history$")


def back_to(org_id: str, back: str, changes: list[str]) -> str:
    """Where a form goes back to: the org's discrepancies page it came from (its query kept) or
    a customer's history, else the discrepancies; the changes named in ``done``."""
    parts = urlsplit(back)
    discrepancies = f"/dashboard/orgs/{org_id}/discrepancies"
    history = _HISTORY.match(parts.path) and parts.path.startswith(f"/dashboard/orgs/{org_id}/")
    path = parts.path if parts.path == discrepancies or history else discrepancies
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "done"]
    query.append(("done", ",".join(changes)))
    return f"{path}?{urlencode(query)}"


def page_banner(org_id: str, done: str, dashboard: DashboardDep) -> Banner | None:
    """The banner a page shows after the changes in its ``done`` parameter (None: none)."""
    if not done:
        return None
    try:
        changes = parse_changes([done])
    except ValueError:
        return None
    return banner(org_id, changes, dashboard.store, now=dashboard.now())


@dataclass(frozen=True, slots=True)
class ReviewForm:
    """The review form's fields: the move, and the page to go back to."""

    move: Move
    back: str


def review_form(
    to: Annotated[str, Form(pattern="^(open|acknowledged|resolved)$")],
    outcome: Annotated[str, Form(max_length=32)] = "",
    comment: Annotated[str, Form(max_length=1000)] = "",
    back: Annotated[str, Form(max_length=3000)] = "",
) -> ReviewForm:
    return ReviewForm(Move(to, outcome or None, comment or None), back)


@router.post("/orgs/{orgId}/discrepancies/{customerId}/review")
def review_page(
    access: Reviewer,
    customer_id: CustomerPath,
    dashboard: DashboardDep,
    form: Annotated[ReviewForm, Depends(review_form)],
) -> Response:
    org_id = access.org_id
    changed = change_review(
        org_id,
        customer_id,
        form.move,
        by=access.who.name,
        store=dashboard.store,
        now=dashboard.now(),
    )
    return redirect(back_to(org_id, form.back, [change_token(customer_id, changed.entry_id)]))


def _tokens(changed: ReviewsChanged) -> list[str]:
    return [change_token(item.customer_id, item.entry_id) for item in changed.items]


@router.post("/orgs/{orgId}/discrepancies/bulk")
def bulk_review_page(
    access: Reviewer,
    dashboard: DashboardDep,
    form: Annotated[ReviewForm, Depends(review_form)],
    customer: Annotated[list[int], Form(max_length=500)] = [],  # noqa: B006 (FastAPI copies)
    shown: Annotated[list[int], Form(max_length=500)] = [],  # noqa: B006
    everyone: Annotated[bool, Form(alias="all")] = False,
) -> Response:
    """Acknowledge or resolve the customers ticked (or, with "select all on this page", every
    one the page showed), each as its own audit entry."""
    org_id = access.org_id
    ids = shown if everyone else customer
    changed = change_reviews(
        org_id, ids, form.move, by=access.who.name, store=dashboard.store, now=dashboard.now()
    )
    log.info("%s: org %s: %d reviews %s", access.who.name, org_id, len(changed.items), form.move.to)
    return redirect(back_to(org_id, form.back, _tokens(changed)))


@router.post("/orgs/{orgId}/discrepancies/undo")
def undo_page(
    access: Reviewer,
    dashboard: DashboardDep,
    change: Annotated[list[str], Form(max_length=500)],
    back: Annotated[str, Form(max_length=3000)] = "",
) -> Response:
    """Undo the changes a banner (or the audit's latest entry) names."""
    org_id = access.org_id
    changes = parse_changes(change)
    changed = undo_reviews(
        org_id, changes, by=access.who.name, store=dashboard.store, now=dashboard.now()
    )
    log.info("%s: org %s: undid %d review changes", access.who.name, org_id, len(changed.items))
    return redirect(back_to(org_id, back, _tokens(changed)))
