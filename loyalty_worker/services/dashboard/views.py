"""What the loyalty dashboard shows and does: one function per page, the same answer for the HTML
page and its JSON route (plain JSON-ready dicts; the templates only lay them out).

Review state (``open`` → ``acknowledged`` → ``resolved``) is kept beside the profiles, never in
them (``DashboardStore.write_review``), with one audit entry per change. A review records the
discrepancy it was made at: when a later sync changes that customer's discrepancy the entry
reads ``open`` again, and when a later run finds the sources agree it reads ``resolved`` with
outcome ``matched``; ``settle_reviews`` stores those changes, each with its audit entry by
``sync``, when the customer's row is next listed (or the list of the state it was stored in is
next read).

The long lists page by keyset cursor (``PageCursor``): ordered queries from where the last page
ended, never an offset, with totals from aggregation counts.
"""

from __future__ import annotations

import base64
import csv
import heapq
import io
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from loyalty_worker.domain.models import ReconciliationStatus
from loyalty_worker.domain.phone import mask_phone as mask_domain_phone
from loyalty_worker.domain.points import floor_points
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.dashboard import DashboardStore
from loyalty_worker.ports.run import RememberedResults, RunProgressSource, RunSummaries
from loyalty_worker.ports.triggers import RunTriggers
from loyalty_worker.services.run.view import find_run

DISCREPANCY_STATUSES = (
    ReconciliationStatus.ALPINE_HIGHER.value,
    ReconciliationStatus.CALCULATED_HIGHER.value,
)
NO_ACCOUNT = ReconciliationStatus.NO_ALPINE_ACCOUNT.value
STATUSES = tuple(status.value for status in ReconciliationStatus)
REVIEW_STATES = ("open", "acknowledged", "resolved")
REVIEWED_STATES = ("acknowledged", "resolved")
OUTCOMES = ("fixed", "expected", "no_action", "false_positive")
AUTO_OUTCOME = "matched"
SORTS = ("size", "age")
RECENT_RUNS = 30
LISTED_RUNS = 10
PAGE_SIZE = 50
# A list's later batches (and the CSV's) read up to this many profiles at once.
STREAM_BATCH = 500
CSV_CHUNK_ROWS = 500
# A page cursor keeps the way back this many pages; its keys have this many values per sort.
MAX_TRAIL = 30
MAX_PAGE = 1_000_000
NO_ACCOUNT_SORT = "id"
KEY_LENGTH = {"size": 2, "age": 2, NO_ACCOUNT_SORT: 1}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The profile fields a list's rows show (read alone: a profile's ledger is most of its size).
DISCREPANCY_FIELDS = (
    "alleavesCustomerId", "loyaltyStatus", "tier", "pointsFromOrders", "pointsFromAlpine",
    "loyaltyDiscrepancy", "pointsLastCalculated",
)  # fmt: skip
NO_ACCOUNT_FIELDS = ("alleavesCustomerId", "phone", "pointsFromOrders", "loyaltyOrders", "tier")
HISTORY_LIMIT = 100
# Reads of one page sent at once (the overview's counts).
READ_THREADS = 8
# A run's statuses while it is not over yet (the run state's, and the API's ``queued``).
GOING = frozenset({"queued", "starting", "running", "listing", "syncing", "summarizing"})


class ReviewRefused(ValueError):
    """A review change the current state does not allow (or an outcome missing)."""


class NotFound(LookupError):
    """A customer, run or page the org does not have."""


def mask_phone(phone: object) -> str:
    """A phone as people may see it: its last four digits only (``***-***-1234``)."""
    if phone is None or phone == "":
        return "—"
    text = str(phone)
    return text if text.startswith("***-***-") else mask_domain_phone(text)


def local_time(epoch: object, tz: ZoneInfo) -> str | None:
    """An epoch-seconds (or datetime) stamp in the org's zone, to the minute."""
    if isinstance(epoch, datetime):
        moment = epoch if epoch.tzinfo else epoch.replace(tzinfo=UTC)
    elif isinstance(epoch, int | float) and epoch:
        moment = datetime.fromtimestamp(float(epoch), UTC)
    elif isinstance(epoch, str) and epoch:
        try:
            moment = datetime.fromisoformat(epoch)
        except ValueError:
            return epoch
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    else:
        return None
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def next_nightly(now: datetime, tz: ZoneInfo, hour: int) -> datetime:
    """The next ``hour``:00 in ``tz`` after ``now``: when the org's nightly run opens."""
    local = now.astimezone(tz)
    for days in range(3):
        day = local.date() + timedelta(days=days)
        opens = datetime.combine(day, time(hour), tzinfo=tz)
        if opens.astimezone(UTC) > now:
            return opens
    return datetime.combine(local.date() + timedelta(days=1), time(hour), tzinfo=tz)


# --- Overview -------------------------------------------------------------------------------


def run_row(run: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """One line of the runs table."""
    alert = run.get("alert")
    return {
        "runId": run.get("runId"),
        "status": run.get("status", "running"),
        "dryRun": bool(run.get("dryRun")),
        "started": local_time(run.get("startedAt"), tz),
        "durationS": run.get("durationS"),
        "listed": run.get("listed"),
        "synced": run.get("synced"),
        "unchanged": run.get("unchanged"),
        "failed": run.get("failed"),
        "failedByReason": dict(run.get("failedByReason") or {}),
        "alertSent": alert.get("sent") if isinstance(alert, Mapping) else alert,
        "discrepancyRate": run.get("discrepancyRate"),
    }


def overview(
    org: OrgSettings, store: DashboardStore, *, now: datetime, nightly_hour: int
) -> dict[str, Any]:
    """The org at a glance: tiers, statuses, last runs, the 30-run trend, liability."""
    tz = ZoneInfo(org.timezone)
    org_id = org.org_id
    ordered = sorted(org.tiers, key=lambda t: t.threshold)
    runs = store.list_org_runs(org_id, limit=RECENT_RUNS)
    counted = counts_run(runs)
    # Reads sent side by side: the page waits for the slowest one rather than for their sum.
    liability = None if counted is None else counted.get("liability")
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        if isinstance(liability, Mapping):  # summed by that run too (summaries since 2026-12)
            calculated_sum = _done(int(liability.get("calculated") or 0))
            alpine_sum = _done(int(liability.get("alpine") or 0))
        else:
            calculated_sum = pool.submit(store.sum_profiles, org_id, "pointsFromOrders")
            alpine_sum = pool.submit(store.sum_profiles, org_id, "pointsFromAlpine")
        if counted is not None:
            # The last completed run counted every customer it listed, by tier and status:
            # no query scans the org's profiles for them.
            by_tier = {str(k): int(v) for k, v in counted["tiers"].items()}
            by_status = {str(k): int(v) for k, v in counted["reconciliation"].items()}
            tiers = [
                {"id": t.id, "name": t.name or t.id, "count": by_tier.get(t.id, 0)} for t in ordered
            ]
            statuses = [{"status": s, "count": by_status.get(s, 0)} for s in STATUSES]
            customers = sum(by_status.values())
        else:  # no completed run yet: aggregation queries
            tier_counts = [pool.submit(store.count_profiles, org_id, "tier", t.id) for t in ordered]
            status_counts = [
                pool.submit(store.count_profiles, org_id, "loyaltyStatus", s) for s in STATUSES
            ]
            total = pool.submit(store.count_profiles, org_id)
            tiers = [
                {"id": t.id, "name": t.name or t.id, "count": count.result()}
                for t, count in zip(ordered, tier_counts, strict=True)
            ]
            statuses = [
                {"status": s, "count": count.result()}
                for s, count in zip(STATUSES, status_counts, strict=True)
            ]
            customers = total.result()
        calculated = calculated_sum.result()
        alpine = alpine_sum.result()
    finished = [run for run in runs if run.get("status") not in (None, "running")]
    trend = [
        {
            "runId": run.get("runId"),
            "discrepancyRate": float(run.get("discrepancyRate") or 0.0),
            "failed": int(run.get("failed") or 0),
        }
        for run in reversed(finished)
    ]
    rates = [row["discrepancyRate"] for row in trend]
    return {
        "orgId": org_id,
        "timezone": org.timezone,
        "customers": customers,
        "tiers": tiers,
        "statuses": statuses,
        "runs": [run_row(run, tz) for run in runs[:LISTED_RUNS]],
        "trend": trend,
        "discrepancyRate": round(sum(rates) / len(rates), 4) if rates else 0.0,
        "failedCount": sum(row["failed"] for row in trend),
        "nextNightlyRun": next_nightly(now, tz, nightly_hour).strftime("%Y-%m-%d %H:%M %Z"),
        "liability": {"calculated": calculated, "alpine": alpine, "gap": alpine - calculated},
        # The run whose summary the counts (and, when it summed them, the liability) come
        # from; None: counted from the profiles now.
        "countsAsOf": None if counted is None else counted.get("runId"),
    }


def _done(value: int) -> Future[int]:
    future: Future[int] = Future()
    future.set_result(value)
    return future


def counts_run(runs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The latest completed run (not a dry run) whose summary counts customers by tier and by
    status, among ``runs`` (newest first)."""
    for run in runs:
        if (
            run.get("status") == "completed"
            and not run.get("dryRun")
            and isinstance(run.get("tiers"), Mapping)
            and isinstance(run.get("reconciliation"), Mapping)
        ):
            return run
    return None


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    x: float
    y: float
    width: float
    height: float
    text: str


def bars(
    items: Sequence[tuple[str, float]], *, width: float = 480, height: float = 160
) -> list[Bar]:
    """Geometry of a server-rendered SVG bar chart (the template draws the rectangles)."""
    if not items:
        return []
    top = max(value for _, value in items) or 1.0
    slot = width / len(items)
    bar_width = min(max(slot * 0.7, 1.0), 64.0)
    chart = height - 20
    out = []
    for index, (label, value) in enumerate(items):
        bar_height = chart * (value / top)
        out.append(
            Bar(
                label=label,
                value=value,
                x=round(index * slot + (slot - bar_width) / 2, 1),
                y=round(chart - bar_height, 1),
                width=round(bar_width, 1),
                height=round(bar_height, 1),
                text=f"{value:g}",
            )
        )
    return out


# --- A run ----------------------------------------------------------------------------------


def run_page(
    run_id: str, *, live: RunProgressSource, stored: RunSummaries, tz: ZoneInfo | None = None
) -> dict[str, Any] | None:
    """A run's summary (when closed) or live progress; None for an unknown run."""
    run = find_run(run_id, live=live, stored=stored)
    if run is None:
        return None
    summary = dict(run.summary or {})
    zone = tz or ZoneInfo("UTC")
    finished = run.status not in GOING
    largest = [
        {
            **{k: v for k, v in entry.items() if k != "phone"},
            "phone": mask_phone(entry.get("phone")),
        }
        for entry in summary.get("largestDiscrepancies") or []
    ]
    return {
        "runId": run.run_id,
        "orgId": run.org_id,
        "status": run.status,
        "finished": finished,
        "listed": run.listed,
        "done": run.done,
        "failed": run.failed,
        "error": run.error,
        "dryRun": bool(summary.get("dryRun")),
        "started": local_time(summary.get("startedAt"), zone),
        "durationS": summary.get("durationS"),
        "synced": summary.get("synced"),
        "unchanged": summary.get("unchanged"),
        "failedByReason": dict(summary.get("failedByReason") or {}),
        "failures": list(summary.get("failures") or []),
        "largestDiscrepancies": largest,
        "tierChanges": list(summary.get("tierChanges") or []),
        "tierChangeCount": summary.get("tierChangeCount", 0),
        "discrepancies": summary.get("discrepancies"),
        "discrepancyRate": summary.get("discrepancyRate"),
        "reconciliation": dict(summary.get("reconciliation") or {}),
        "tiers": dict(summary.get("tiers") or {}),
    }


# --- Pages of a list: keyset cursors ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a page of a list starts, as an opaque token for the URL (keyset pagination: no
    page reads the rows before it). ``trail`` holds the sort keys of the last row of the pages
    before it, the latest last: the page starts after ``trail[-1]``, and the earlier ones lead
    back (the last ``MAX_TRAIL`` are kept; past them only the first page is linked)."""

    sort: str
    page: int = 1
    trail: tuple[tuple[int, ...], ...] = ()

    @property
    def after(self) -> tuple[int, ...] | None:
        return self.trail[-1] if self.trail else None

    def next(self, last: tuple[int, ...]) -> PageCursor:
        return PageCursor(self.sort, self.page + 1, (*self.trail, last)[-MAX_TRAIL:])

    def prev(self) -> PageCursor | None:
        if self.page <= 1:
            return None
        if self.page == 2:
            return PageCursor(self.sort)
        if len(self.trail) < 2:  # the way back was longer than the trail kept
            return None
        return PageCursor(self.sort, self.page - 1, self.trail[:-1])

    def encode(self) -> str:
        body = json.dumps(
            [self.sort, self.page, [list(key) for key in self.trail]], separators=(",", ":")
        )
        return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, sort: str) -> PageCursor:
        """The cursor of ``token``; ValueError for a token that is not one of ``sort``'s."""
        try:
            padded = token + "=" * (-len(token) % 4)
            found = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        except (ValueError, UnicodeError, RecursionError) as exc:  # "[[[[…" nests too deep
            raise ValueError("not a page cursor") from exc
        if not (isinstance(found, list) and len(found) == 3 and found[0] == sort):
            raise ValueError("not a page cursor of this list")
        page, trail = found[1], found[2]
        if not (_is_int(page) and 1 <= page <= MAX_PAGE and isinstance(trail, list)):
            raise ValueError("not a page cursor")
        if len(trail) > MAX_TRAIL or len(trail) > page - 1 or (page > 1 and not trail):
            raise ValueError("not a page cursor")
        keys = []
        for key in trail:
            if not (
                isinstance(key, list)
                and len(key) == KEY_LENGTH[sort]
                and all(_is_key_value(value) for value in key)
            ):
                raise ValueError("not a page cursor")
            keys.append(tuple(key))
        return cls(sort, page, tuple(keys))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_key_value(value: object) -> bool:
    return _is_int(value) and -(2**63) <= value < 2**63  # type: ignore[operator]


def page_links(
    cursor: PageCursor | None, sort: str, last: tuple[int, ...] | None
) -> dict[str, Any]:
    """``page``, and the ``next``/``prev`` cursors (null: no such page) of a page whose last
    row has the sort key ``last`` (None: the list ends on this page)."""
    here = cursor or PageCursor(sort)
    prev = here.prev()
    return {
        "page": here.page,
        "next": here.next(last).encode() if last is not None else None,
        "prev": prev.encode() if prev is not None else None,
    }


# --- Discrepancies to review ------------------------------------------------------------------


def _stamp(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def effective_review(
    profile: Mapping[str, Any] | None, review: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The review as it reads now: re-opened when the discrepancy changed since it was made,
    resolved as ``matched`` when the sources agree again."""
    status = (profile or {}).get("loyaltyStatus")
    if status not in DISCREPANCY_STATUSES:
        if review is None:  # never under review: nothing to show
            return {"state": "none", "outcome": None, "comment": None}
        if review.get("state") == "resolved":
            return dict(review)
        return {**review, "state": "resolved", "outcome": AUTO_OUTCOME, "comment": None}
    if review is None:
        return {"state": "open", "outcome": None, "comment": None}
    same = (
        review.get("discrepancy") == (profile or {}).get("loyaltyDiscrepancy")
        and review.get("loyaltyStatus") == status
    )
    if same and review.get("outcome") != AUTO_OUTCOME:
        return dict(review)
    return {**review, "state": "open", "outcome": None, "comment": None}


def _opened(profile: Mapping[str, Any], review: Mapping[str, Any] | None) -> datetime | None:
    """Since when a discrepancy is open: its review's ``openedAt``, else when the profile was
    last calculated."""
    return _stamp((review or {}).get("openedAt")) or _stamp(profile.get("pointsLastCalculated"))


def _review_row(
    profile: Mapping[str, Any], review: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    discrepancy = int(profile.get("loyaltyDiscrepancy") or 0)
    opened = _opened(profile, review)
    return {
        "customerId": int(profile.get("alleavesCustomerId") or 0),
        "status": profile.get("loyaltyStatus"),
        "tier": profile.get("tier"),
        "calculated": profile.get("pointsFromOrders"),
        "alpine": profile.get("pointsFromAlpine"),
        "discrepancy": discrepancy,
        "daysOpen": max((now - opened).days, 0) if opened else 0,
        "state": review.get("state", "open"),
        "outcome": review.get("outcome"),
        "comment": review.get("comment"),
    }


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    """A discrepancy list's filter, order and page: the same for its page, its JSON route and
    its CSV (which ignores the page)."""

    status: str | None = None
    tier: str | None = None
    state: str | None = "open"
    sort: str = "size"
    cursor: PageCursor | None = None
    page_size: int = PAGE_SIZE

    @property
    def page(self) -> int:
        return self.cursor.page if self.cursor is not None else 1

    def query(self) -> dict[str, str]:
        """The filter as URL query parameters (the page left out)."""
        shown = {
            "status": self.status,
            "tier": self.tier,
            "state": self.state or "all",
            "sort": self.sort,
        }
        return {k: v for k, v in shown.items() if v}


def _review_change(
    profile: Mapping[str, Any] | None, review: Mapping[str, Any], now: datetime
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The stored change (and its audit entry by ``sync``) that brings a review to how it reads
    now, if it reads otherwise."""
    current = effective_review(profile, review)
    if current.get("state") == review.get("state") and current.get("outcome") == review.get(
        "outcome"
    ):
        return None
    change = {
        "state": current["state"],
        "outcome": current.get("outcome"),
        "comment": None,
        "discrepancy": (profile or {}).get("loyaltyDiscrepancy"),
        "loyaltyStatus": (profile or {}).get("loyaltyStatus"),
        "tier": (profile or {}).get("tier"),
        "updatedAt": now.isoformat(),
        "updatedBy": "sync",
    }
    if current["state"] == "open":
        change["openedAt"] = now.isoformat()
    audit = {
        "at": now.isoformat(),
        "by": "sync",
        "from": review.get("state"),
        "to": current["state"],
        "outcome": current.get("outcome"),
    }
    return change, audit


def settle_reviews(
    org_id: str,
    profiles: Mapping[int, Mapping[str, Any] | None],
    reviews: Mapping[int, Mapping[str, Any]],
    store: DashboardStore,
    *,
    now: datetime,
) -> dict[int, dict[str, Any]]:
    """Store the review changes the syncs made (re-opened, or resolved as matched), each with
    its audit entry by ``sync``; ``profiles`` holds the reviewed customers' profiles (None or
    missing: no profile). Returns the reviews as they read now."""
    settled: dict[int, dict[str, Any]] = {}
    for customer_id, review in reviews.items():
        profile = profiles.get(customer_id)
        found = _review_change(profile, review, now)
        if found is None:
            settled[customer_id] = dict(review)
            continue
        change, audit = found
        store.write_review(org_id, customer_id, change, audit)
        settled[customer_id] = {**review, **change}
    return settled


Key = tuple[int, int]


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _sort_key(sort: str, profile: Mapping[str, Any]) -> Key:
    """Where a discrepancy goes in its list: the largest gap first (``size``), or the one
    unchanged the longest first (``age``: by when the profile was last calculated, to the
    microsecond, so that a cursor gives the stamp back exactly); then by customer id."""
    customer_id = int(profile.get("alleavesCustomerId") or 0)
    if sort == "size":
        return (-abs(int(profile.get("loyaltyDiscrepancy") or 0)), customer_id)
    calculated = _stamp(profile.get("pointsLastCalculated"))
    return (_micros(calculated) if calculated else 0, customer_id)


def _cursor_key(sort: str, key: tuple[int, ...]) -> Key:
    """A cursor's stored key as a sort key (``size`` stores the gap positive)."""
    first, customer = key
    return (-first, customer) if sort == "size" else (first, customer)


def _stored_key(sort: str, key: Key) -> tuple[int, ...]:
    return (-key[0], key[1]) if sort == "size" else key


def _in_scope(profile: Mapping[str, Any] | None, flt: ReviewFilter) -> bool:
    if profile is None or profile.get("loyaltyStatus") not in DISCREPANCY_STATUSES:
        return False
    return (flt.status is None or profile.get("loyaltyStatus") == flt.status) and (
        flt.tier is None or profile.get("tier") == flt.tier
    )


def _statuses(flt: ReviewFilter) -> tuple[str, ...]:
    return (flt.status,) if flt.status is not None else DISCREPANCY_STATUSES


def _after(flt: ReviewFilter) -> Key | None:
    if flt.cursor is None or flt.cursor.after is None:
        return None
    return _cursor_key(flt.sort, flt.cursor.after)


def _profile_stream(
    org_id: str,
    store: DashboardStore,
    flt: ReviewFilter,
    status: str,
    after: Key | None,
    now: datetime,
    known: Mapping[int, Mapping[str, Any]] | None = None,
) -> Iterator[tuple[Key, dict[str, Any]]]:
    """The discrepancies of one status in the list's order, from ``after`` on, with their
    review state: an ordered Firestore query read in growing batches (the first one a page
    and one), each batch's reviews read by customer id (or taken from ``known``, every review
    of the org), those that changed settled."""
    equals: dict[str, Any] = {"loyaltyStatus": status}
    if flt.tier is not None:
        equals["tier"] = flt.tier
    if flt.sort == "size":
        # alpine_higher gaps are positive, calculated_higher ones negative: largest first is
        # descending for the one, ascending for the other.
        sign = 1 if status == ReconciliationStatus.ALPINE_HIGHER.value else -1
        order = (("loyaltyDiscrepancy", sign > 0), ("alleavesCustomerId", False))
        start: tuple[Any, ...] | None = None if after is None else (-after[0] * sign, after[1])
    else:
        order = (("pointsLastCalculated", False), ("alleavesCustomerId", False))
        start = None if after is None else (EPOCH + timedelta(microseconds=after[0]), after[1])
    batch = flt.page_size + 1
    while True:
        found = store.page_profiles(
            org_id, equals, order, after=start, limit=batch, fields=DISCREPANCY_FIELDS
        )
        ids = [int(p.get("alleavesCustomerId") or 0) for p in found]
        reviews: Mapping[int, Mapping[str, Any]]
        if known is not None:
            reviews = {cid: known[cid] for cid in ids if cid in known}
        else:
            reviews = store.get_reviews(org_id, customer_ids=ids) if ids else {}
        settled = settle_reviews(
            org_id, dict(zip(ids, found, strict=True)), reviews, store, now=now
        )
        for customer_id, profile in zip(ids, found, strict=True):
            key = _sort_key(flt.sort, profile)
            if after is not None and key <= after:  # a stamp stored as another type
                continue
            row = _review_row(profile, effective_review(profile, settled.get(customer_id)), now)
            if flt.state is None or row["state"] == flt.state:
                yield key, row
        if len(found) < batch:
            return
        start = tuple(found[-1].get(field) for field, _ in order)
        batch = min(batch * 2, STREAM_BATCH)


def _reviewed_rows(
    org_id: str, store: DashboardStore, flt: ReviewFilter, now: datetime
) -> list[tuple[Key, dict[str, Any]]]:
    """Every row of an ``acknowledged`` or ``resolved`` list, in its order: the reviews stored
    in that state (their number grows with the admins' work, not with the org) with their
    customers' profiles, those that changed settled."""
    assert flt.state is not None
    reviews = store.get_reviews(org_id, state=flt.state)
    profiles = store.read_profiles(org_id, sorted(reviews), DISCREPANCY_FIELDS) if reviews else {}
    settled = settle_reviews(org_id, profiles, reviews, store, now=now)
    rows = []
    for customer_id, review in settled.items():
        profile = profiles.get(customer_id)
        if profile is None or not _in_scope(profile, flt):
            continue
        row = _review_row(profile, effective_review(profile, review), now)
        if row["state"] == flt.state:
            rows.append((_sort_key(flt.sort, profile), row))
    rows.sort(key=lambda item: item[0])
    return rows


def discrepancy_rows(
    org_id: str,
    store: DashboardStore,
    flt: ReviewFilter,
    *,
    now: datetime,
    known: Mapping[int, Mapping[str, Any]] | None = None,
) -> Iterator[tuple[Key, dict[str, Any]]]:
    """The filter's rows in its order, from its cursor on, each with its sort key (``known``:
    every review of the org, read already)."""
    after = _after(flt)
    if flt.state in REVIEWED_STATES:
        rows = _reviewed_rows(org_id, store, flt, now)
        return iter([item for item in rows if after is None or item[0] > after])
    streams = [
        _profile_stream(org_id, store, flt, status, after, now, known) for status in _statuses(flt)
    ]
    return heapq.merge(*streams, key=lambda item: item[0])


def _open_total(
    org_id: str, store: DashboardStore, flt: ReviewFilter, pool: ThreadPoolExecutor
) -> Future[int]:
    """The discrepancies of the filter (aggregation counts, one a status); for the open list,
    less the reviews stored acknowledged or resolved at one of those statuses (and tier)."""
    scope = {"tier": flt.tier} if flt.tier else {}
    counts = [
        pool.submit(store.count_matching, org_id, {"loyaltyStatus": status, **scope})
        for status in _statuses(flt)
    ]
    closed = []
    if flt.state == "open":
        closed = [
            pool.submit(
                store.count_reviews,
                org_id,
                {"state": state, "loyaltyStatus": status, **scope},
            )
            for state in REVIEWED_STATES
            for status in _statuses(flt)
        ]

    def total() -> int:
        return sum(c.result() for c in counts) - sum(c.result() for c in closed)

    return pool.submit(total)


def discrepancies(
    org_id: str, store: DashboardStore, flt: ReviewFilter, *, now: datetime
) -> dict[str, Any]:
    """One page of the customers whose balances differ beyond the threshold, with their review
    state (keyset pagination: no page reads the rows before it). The open and "all" lists'
    totals are aggregation counts (the open one less the reviews stored acknowledged or
    resolved: a review a sync changed counts there until its row is next read); the
    acknowledged and resolved lists are read whole, from their reviews."""
    if flt.state in REVIEWED_STATES:
        rows = _reviewed_rows(org_id, store, flt, now)
        total = len(rows)
        after = _after(flt)
        page = [item for item in rows if after is None or item[0] > after][: flt.page_size + 1]
    else:
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            counted = _open_total(org_id, store, flt, pool)
            page = list(
                itertools.islice(discrepancy_rows(org_id, store, flt, now=now), flt.page_size + 1)
            )
            total = max(counted.result(), 0)
    more = len(page) > flt.page_size
    page = page[: flt.page_size]
    last = _stored_key(flt.sort, page[-1][0]) if more else None
    return {
        "orgId": org_id,
        "total": total,
        **page_links(flt.cursor, flt.sort, last),
        "pageSize": flt.page_size,
        "pages": max((total + flt.page_size - 1) // flt.page_size, 1),
        "filter": {"status": flt.status, "tier": flt.tier, "state": flt.state, "sort": flt.sort},
        "items": [row for _, row in page],
    }


def discrepancy_csv_rows(
    org_id: str, store: DashboardStore, flt: ReviewFilter, *, now: datetime
) -> Iterator[dict[str, Any]]:
    """Every row of the filter, in its order (the CSV), read batch by batch; the org's reviews
    are read once, up front (the CSV reads every discrepancy anyway)."""
    whole = ReviewFilter(flt.status, flt.tier, flt.state, flt.sort, None, STREAM_BATCH)
    known = None if flt.state in REVIEWED_STATES else store.get_reviews(org_id)
    return (row for _, row in discrepancy_rows(org_id, store, whole, now=now, known=known))


def change_review(
    org_id: str,
    customer_id: int,
    *,
    to: str,
    by: str,
    store: DashboardStore,
    now: datetime,
    outcome: str | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """Move a customer's review: acknowledge, resolve (with an outcome and a comment) or
    re-open. NotFound when the customer has no profile; ReviewRefused for a move not allowed."""
    profile = store.get_profile(org_id, customer_id)
    if profile is None:
        raise NotFound(f"customer {customer_id}")
    review = store.get_review(org_id, customer_id)
    current = effective_review(profile, review)
    state = current.get("state", "open")
    allowed = {
        "acknowledged": ("open",),
        "resolved": ("open", "acknowledged"),
        "open": ("acknowledged", "resolved"),
    }
    if to not in allowed:
        raise ReviewRefused(f"unknown review state {to!r}")
    if state not in allowed[to]:
        raise ReviewRefused(f"a review {state} cannot become {to}")
    if to == "resolved":
        if outcome not in OUTCOMES:
            raise ReviewRefused(f"resolving needs an outcome: one of {', '.join(OUTCOMES)}")
        if not (comment or "").strip():
            raise ReviewRefused("resolving needs a comment")
    else:
        outcome, comment = None, None
    stamp = now.isoformat()
    change = {
        "state": to,
        "outcome": outcome,
        "comment": (comment or "").strip() or None,
        "discrepancy": profile.get("loyaltyDiscrepancy"),
        "loyaltyStatus": profile.get("loyaltyStatus"),
        "tier": profile.get("tier"),
        "updatedAt": stamp,
        "updatedBy": by,
        "openedAt": (review or {}).get("openedAt") or stamp,
    }
    audit = {
        "at": stamp,
        "by": by,
        "from": state,
        "to": to,
        "outcome": outcome,
        "comment": change["comment"],
    }
    store.write_review(org_id, customer_id, change, audit)
    return {"customerId": customer_id, **change}


# --- Customers without an Alpine IQ account ---------------------------------------------------


def _last_order(profile: Mapping[str, Any]) -> int | None:
    ledger = profile.get("loyaltyOrders")
    ids = [int(key) for key in ledger if str(key).isdigit()] if isinstance(ledger, Mapping) else []
    return max(ids) if ids else None


def no_account_row(profile: Mapping[str, Any], phone: str | None = None) -> dict[str, Any]:
    return {
        "customerId": int(profile.get("alleavesCustomerId") or 0),
        "phone": mask_phone(profile.get("phone") or phone),
        "pointsFromOrders": int(profile.get("pointsFromOrders") or 0),
        "lastOrder": _last_order(profile),
        "tier": profile.get("tier"),
    }


def _rows(
    org_id: str, profiles: Sequence[Mapping[str, Any]], remembered: RememberedResults | None
) -> list[dict[str, Any]]:
    """Rows of the no-account list; a profile holds no phone, so each comes (masked) from the
    customer's latest kept sync result when there is one."""
    ids = [int(p.get("alleavesCustomerId") or 0) for p in profiles]
    phones: dict[int, str | None] = {}
    if remembered is not None:
        for start in range(0, len(ids), 1000):
            kept = remembered.recall(org_id, ids[start : start + 1000])
            phones.update({cid: result.phone for cid, result in kept.items()})
    return [no_account_row(p, phones.get(cid)) for p, cid in zip(profiles, ids, strict=True)]


def _no_account_stream(
    org_id: str, store: DashboardStore, after: tuple[int, ...] | None, batch: int
) -> Iterator[dict[str, Any]]:
    """The org's customers without an Alpine IQ account by Alleaves id, after ``after``: an
    ordered query read in growing batches."""
    equals = {"loyaltyStatus": NO_ACCOUNT}
    order = (("alleavesCustomerId", False),)
    start: tuple[Any, ...] | None = after
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
    cursor: PageCursor | None = None,
    page_size: int = PAGE_SIZE,
    remembered: RememberedResults | None = None,
) -> dict[str, Any]:
    """One page of the customers without an Alpine IQ account (prompt them to create one);
    the total is an aggregation count."""
    after = cursor.after if cursor is not None else None
    with ThreadPoolExecutor(max_workers=2) as pool:
        total = pool.submit(store.count_matching, org_id, {"loyaltyStatus": NO_ACCOUNT})
        found = list(
            itertools.islice(_no_account_stream(org_id, store, after, page_size + 1), page_size + 1)
        )
        counted = total.result()
    more = len(found) > page_size
    found = found[:page_size]
    last = (int(found[-1].get("alleavesCustomerId") or 0),) if more else None
    return {
        "orgId": org_id,
        "total": counted,
        **page_links(cursor, NO_ACCOUNT_SORT, last),
        "pageSize": page_size,
        "pages": max((counted + page_size - 1) // page_size, 1),
        "items": _rows(org_id, found, remembered),
    }


def no_account_rows(
    org_id: str, store: DashboardStore, remembered: RememberedResults | None = None
) -> Iterator[dict[str, Any]]:
    """Every customer without an Alpine IQ account, by Alleaves id (the CSV), read in
    batches."""
    stream = _no_account_stream(org_id, store, None, STREAM_BATCH)
    while chunk := list(itertools.islice(stream, STREAM_BATCH)):
        yield from _rows(org_id, chunk, remembered)


def csv_chunks(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    """Rows as CSV, a header first, in chunks of ``CSV_CHUNK_ROWS`` rows (streamed); a cell
    that a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for count, row in enumerate(rows, 1):
        writer.writerow([_cell(row.get(column)) for column in columns])
        if count % CSV_CHUNK_ROWS == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@") and not _is_number(text):
        text = "'" + text
    return text


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as CSV, a header first (see ``csv_chunks``)."""
    return "".join(csv_chunks(rows, columns))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- A customer -------------------------------------------------------------------------------


def customer_page(
    org: OrgSettings,
    customer_id: int,
    store: DashboardStore,
    *,
    last_verified: str | None,
) -> dict[str, Any]:
    """The seed's customer panel: points and where they come from, Alpine IQ, discrepancy,
    tier, when last changed and verified, and the review. NotFound without a profile."""
    profile = store.get_profile(org.org_id, customer_id)
    if profile is None:
        raise NotFound(f"customer {customer_id}")
    tz = ZoneInfo(org.timezone)
    rate = org.points_per_dollar
    ledger = profile.get("loyaltyOrders")
    orders = []
    if isinstance(ledger, Mapping):
        for order_id, spend in sorted(ledger.items(), key=lambda item: str(item[0])):
            amount = Decimal(str(spend))
            orders.append(
                {
                    "orderId": order_id,
                    "eligibleSpend": str(amount),
                    "points": floor_points(amount * rate),
                }
            )
    review = effective_review(profile, store.get_review(org.org_id, customer_id))
    latest = store.list_history(org.org_id, customer_id, limit=1)
    adjustment = latest[0].get("adjustment") if latest else None
    return {
        "orgId": org.org_id,
        "customerId": customer_id,
        "points": profile.get("points"),
        "pointsFromOrders": profile.get("pointsFromOrders"),
        "pointsFromAlpine": profile.get("pointsFromAlpine"),
        "alpineUserId": profile.get("alpineUserId"),
        "tier": profile.get("tier"),
        "tierSource": profile.get("tierSource"),
        "loyaltyStatus": profile.get("loyaltyStatus"),
        "discrepancy": profile.get("loyaltyDiscrepancy"),
        "ordersProcessed": profile.get("ordersProcessed"),
        "totalSpent": profile.get("totalSpent"),
        "equity": profile.get("equityStatus") is True,
        "orders": orders,
        "lastChanged": local_time(profile.get("pointsLastCalculated"), tz),
        "lastRunId": profile.get("lastLoyaltySyncRunId"),
        "lastVerified": last_verified,
        "review": {k: review.get(k) for k in ("state", "outcome", "comment")},
        "autoAdjust": org.auto_adjust,
        # What autoAdjust recorded at the last change (``from``, ``to``, source), if anything.
        "adjustment": dict(adjustment) if isinstance(adjustment, Mapping) else None,
    }


def last_verified(org: OrgSettings, store: DashboardStore) -> str | None:
    """When the org's last completed run started: the last time every profile was checked."""
    tz = ZoneInfo(org.timezone)
    for run in store.list_org_runs(org.org_id, limit=RECENT_RUNS):
        if run.get("status") == "completed" and not run.get("dryRun"):
            return local_time(run.get("startedAt"), tz)
    return None


def history(org: OrgSettings, customer_id: int, store: DashboardStore) -> dict[str, Any]:
    """The customer's loyalty history: one entry per sync that changed the profile."""
    if store.get_profile(org.org_id, customer_id) is None:
        raise NotFound(f"customer {customer_id}")
    tz = ZoneInfo(org.timezone)
    entries = [
        {
            "at": local_time(entry.get("at"), tz),
            "runId": entry.get("runId"),
            "before": dict(entry.get("before") or {}),
            "after": dict(entry.get("after") or {}),
            "adjustment": entry.get("adjustment"),
        }
        for entry in store.list_history(org.org_id, customer_id, limit=HISTORY_LIMIT)
    ]
    return {
        "orgId": org.org_id,
        "customerId": customer_id,
        "entries": entries,
        "audit": store.list_audit(org.org_id, customer_id),
    }


def find_customers(
    org_id: str,
    query: str,
    store: DashboardStore,
    *,
    phone_hash: str | None,
) -> list[dict[str, Any]]:
    """Customers by Alleaves id, by name, or by phone (its ``phoneHash``, the caller hashes)."""
    query = query.strip()
    found: list[dict[str, Any]] = []
    if query.isdigit() and len(query) < 10:
        profile = store.get_profile(org_id, int(query))
        found = [profile] if profile else []
    elif phone_hash is not None:
        found = store.list_profiles(org_id, "phoneHash", [phone_hash], limit=20)
    if not found and query:
        found = _by_name(org_id, query, store)
    return [
        {
            "customerId": int(p.get("alleavesCustomerId") or 0),
            "name": " ".join(str(p[k]) for k in ("firstName", "lastName") if p.get(k)) or None,
            "tier": p.get("tier"),
            "points": p.get("points"),
            "loyaltyStatus": p.get("loyaltyStatus"),
        }
        for p in found
    ]


def _by_name(org_id: str, query: str, store: DashboardStore) -> list[dict[str, Any]]:
    """Profiles whose Markitbot ``firstName``/``lastName`` equal the words given (as typed, or
    capitalised): "Ana Reyes" both, one word either."""
    parts = query.split()
    spellings = {tuple(parts), tuple(part.capitalize() for part in parts)}
    found: dict[Any, dict[str, Any]] = {}
    for words in sorted(spellings):
        if len(words) >= 2:
            first, last = words[0], " ".join(words[1:])
            for p in store.list_profiles(org_id, "lastName", [last], limit=50):
                if p.get("firstName") == first:
                    found[p.get("alleavesCustomerId")] = p
        else:
            for field in ("lastName", "firstName"):
                for p in store.list_profiles(org_id, field, list(words), limit=20):
                    found[p.get("alleavesCustomerId")] = p
    return list(found.values())[:20]


def sync_result(outcome: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a Sync Now shows once its task ends (the phone and inputs left out)."""
    if outcome is None:
        return {"state": "PENDING", "done": False}
    state = str(outcome.get("state", "PENDING"))
    result = outcome.get("result")
    done = state in ("SUCCESS", "FAILURE", "REVOKED")
    shown: dict[str, Any] = {"state": state, "done": done}
    if isinstance(result, Mapping) and state == "SUCCESS":
        shown["sync"] = result.get("status")
        if result.get("reason"):
            shown["reason"] = result.get("reason")
        displayed = result.get("displayed")
        if isinstance(displayed, Mapping):
            shown.update(
                points=displayed.get("points"),
                tier=displayed.get("tier"),
                tierSource=displayed.get("tierSource"),
            )
        rec = result.get("reconciliation")
        if isinstance(rec, Mapping):
            shown.update(loyaltyStatus=rec.get("status"), discrepancy=rec.get("discrepancy"))
        if isinstance(result.get("adjustment"), Mapping):
            shown["adjustment"] = dict(result["adjustment"])
    elif state == "FAILURE":
        shown["error"] = "the sync failed"
    return shown


# --- Manual runs ------------------------------------------------------------------------------

RUN_KINDS = {"full": (False, None), "incremental": (False, "last"), "dry": (True, None)}


def trigger_run(org_id: str, kind: str, *, runs: RunTriggers, new_run_id: str) -> tuple[str, bool]:
    """Start a run of ``kind`` (full, incremental, dry), or, while the org has one going, name
    that one instead: (run id, whether it was started now)."""
    dry_run, since = RUN_KINDS[kind]
    going = runs.running_run(org_id)
    if going is not None:
        return going, False
    runs.start_run(org_id, new_run_id, dry_run=dry_run, since=since)
    return new_run_id, True
