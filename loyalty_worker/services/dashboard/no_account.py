"""Customers without an Alpine IQ account (prompt them to create one): masked phone, points from
orders, last order, by Alleaves id a page at a time, and every one of them for the CSV.

An ordered query read from the page's cursor on; the total is an aggregation count. A profile
holds no phone: each row's comes, masked, from the customer's latest kept sync result.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor

from pydantic import Field

from loyalty_worker.domain.models import ReconciliationStatus
from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.ports.dashboard import DashboardStore, KeyValue
from loyalty_worker.ports.run import RememberedResults
from loyalty_worker.services.dashboard.cursors import PageCursor, page_links
from loyalty_worker.services.dashboard.discrepancies import PAGE_SIZE, STREAM_BATCH
from loyalty_worker.services.dashboard.formatting import mask_phone
from loyalty_worker.services.dashboard.page import ListPage, PageModel

NO_ACCOUNT = ReconciliationStatus.NO_ALPINE_ACCOUNT.value
NO_ACCOUNT_SORT = "id"
NO_ACCOUNT_FIELDS = ("alleavesCustomerId", "phone", "pointsFromOrders", "loyaltyOrders", "tier")
CSV_COLUMNS = ("customerId", "phone", "pointsFromOrders", "lastOrder", "tier")
# Customers whose kept results are read at once.
RECALL_CHUNK = 1000


class NoAccountRow(PageModel):
    """A customer without an Alpine IQ account."""

    customer_id: int
    phone: str = Field(description="Masked to its last four digits; — when none is known.")
    points_from_orders: int
    last_order: int | None = Field(description="The id of the customer's latest counted order.")
    tier: str | None


class NoAccountPage(ListPage):
    """One page of the customers without an Alpine IQ account, by Alleaves id."""

    items: list[NoAccountRow]


def _last_order(profile: ProfileDocument) -> int | None:
    ledger = profile.get("loyaltyOrders")
    ids = [int(key) for key in ledger if str(key).isdigit()] if isinstance(ledger, dict) else []
    return max(ids) if ids else None


def _customer(profile: ProfileDocument) -> int:
    return int(profile.get("alleavesCustomerId") or 0)


def _rows(
    org_id: str, profiles: Sequence[ProfileDocument], remembered: RememberedResults | None
) -> list[NoAccountRow]:
    """Rows of the list, each phone (masked) from the customer's latest kept sync result when
    there is one."""
    ids = [_customer(p) for p in profiles]
    phones: dict[int, str | None] = {}
    if remembered is not None:
        for start in range(0, len(ids), RECALL_CHUNK):
            kept = remembered.recall(org_id, ids[start : start + RECALL_CHUNK])
            phones.update({cid: result.phone for cid, result in kept.items()})
    return [
        NoAccountRow(
            customer_id=cid,
            phone=mask_phone(profile.get("phone") or phones.get(cid)),
            points_from_orders=int(profile.get("pointsFromOrders") or 0),
            last_order=_last_order(profile),
            tier=profile.get("tier"),
        )
        for profile, cid in zip(profiles, ids, strict=True)
    ]


def _stream(
    org_id: str, store: DashboardStore, after: tuple[int, ...] | None, batch: int
) -> Iterator[ProfileDocument]:
    """The org's customers without an Alpine IQ account by Alleaves id, after ``after``: an
    ordered query read in growing batches."""
    equals = {"loyaltyStatus": NO_ACCOUNT}
    order = (("alleavesCustomerId", False),)
    start: tuple[KeyValue, ...] | None = after
    while True:
        found = store.page_profiles(
            org_id, equals, order, after=start, limit=batch, fields=NO_ACCOUNT_FIELDS
        )
        yield from found
        if len(found) < batch:
            return
        start = (found[-1].get("alleavesCustomerId"),)
        batch = min(batch * 2, STREAM_BATCH)


def no_account(
    org_id: str,
    store: DashboardStore,
    *,
    cursor: PageCursor | None,
    page_size: int = PAGE_SIZE,
    remembered: RememberedResults | None = None,
    reads: Executor,
) -> NoAccountPage:
    """One page of the customers without an Alpine IQ account; the total, an aggregation
    count, is read on ``reads`` beside the page."""
    after = cursor.after if cursor is not None else None
    total = reads.submit(store.count_profiles, org_id, {"loyaltyStatus": NO_ACCOUNT})
    found = list(itertools.islice(_stream(org_id, store, after, page_size + 1), page_size + 1))
    counted = total.result()
    more = len(found) > page_size
    found = found[:page_size]
    links = page_links(cursor, NO_ACCOUNT_SORT, (_customer(found[-1]),) if more else None)
    return NoAccountPage(
        org_id=org_id,
        total=counted,
        page=links.page,
        next=links.next,
        prev=links.prev,
        page_size=page_size,
        pages=max((counted + page_size - 1) // page_size, 1),
        items=_rows(org_id, found, remembered),
    )


def no_account_rows(
    org_id: str, store: DashboardStore, remembered: RememberedResults | None = None
) -> Iterator[NoAccountRow]:
    """Every customer without an Alpine IQ account, by Alleaves id (the CSV), read in
    batches."""
    stream = _stream(org_id, store, None, STREAM_BATCH)
    while chunk := list(itertools.islice(stream, STREAM_BATCH)):
        yield from _rows(org_id, chunk, remembered)
