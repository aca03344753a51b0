"""What a run is asked for, what it reads and writes through, and how it hands work on: the
values every step of a run (open, plan, dispatch, close) and every customer's job share."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import date
from typing import Protocol, TypedDict

from loyalty_worker.domain.selection import CustomerSelection
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.contacts import ContactWriter
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.run import OrderSlices, RunLedger, SyncSlots
from loyalty_worker.ports.sources import CustomerSource, LoyaltyLookup
from loyalty_worker.services.run.history_slices import HistorySlice
from loyalty_worker.services.sync.inputs import CustomerWork
from loyalty_worker.services.sync.retries import Retries

# Planning reads thousands of pages: a burst of 429s or 5xx beyond the clients' own retries
# starts it again after a pause, a bounded number of times.
PLAN_RETRIES = Retries(3, first_s=2.0)


@dataclass(frozen=True)
class BatchOptions:
    """How this worker runs a batch (its settings): the history read and how widely, the
    chunks, the budgets and the limits."""

    history_start: date
    window_days: int
    parallelism: int
    lock_ttl_s: int
    chunk_size: int
    plan_retries: Retries = PLAN_RETRIES
    # A full run's look-ups start while the history is read, on ``RunPorts.lookups``.
    plan_lookups: bool = True
    # An incremental run re-reads orders created this many days before its ``since``: orders
    # change (complete, void, refund) for a while after they are created.
    overlap_days: int = 14
    # The key of each profile's ``phoneHash`` (None: profiles' hashes are left as they are).
    phone_key: bytes | None = None
    # A customer synced on its own: the customer listing is read at most this many pages deep
    # to find them; at most this many of an org's such syncs run at once, each slot freed
    # after ``single_sync_slot_ttl_s`` should its worker die.
    customer_page_limit: int = 200
    single_sync_concurrency: int = 2
    single_sync_slot_ttl_s: float = 900.0
    # Time budgets (``services.sync.deadline``): a customer task starts no new customer or page
    # after ``task_budget_s``; the plan reads no new page after ``plan_budget_s``. No listing
    # is read past ``max_pages`` pages.
    task_budget_s: float = 120.0
    plan_budget_s: float = 1200.0
    max_pages: int = 5000
    # A planner that has not beat for this long is taken over by the next one sent.
    planner_stale_s: float = 60.0
    # The plan's order history is cut into this many slices (every n-th date window), read by
    # whichever worker processes take them (``services.run.history_slices``; 1: the planner reads
    # it alone).
    plan_slices: int = 1


@dataclass(frozen=True)
class RunRequest:
    """What a run was asked for: which org, under which run id, dry or not, since when, and
    which customers (all, or a partial run's selection)."""

    org_id: str
    run_id: str
    dry_run: bool = False
    # Incremental: only the orders created since this day (less the overlap) are read.
    since: date | None = None
    # This planner's token: it claims the planning with it, and its own beats never make the
    # run look planned by another.
    planner: str = ""
    # A partial run: only these of the listed customers (None: every one, a full run).
    selection: CustomerSelection | None = None


class OrgAdapters(Protocol):
    """The org's settings and the clients its run reads (bootstrap's ``OrgClients`` is one)."""

    @property
    def settings(self) -> OrgSettings: ...

    @property
    def alleaves(self) -> CustomerSource: ...

    @property
    def alpine(self) -> LoyaltyLookup: ...


@dataclass(frozen=True)
class RunPorts:
    """What a run's services read and write through (the worker process's clients)."""

    org_for: Callable[[str], OrgAdapters]  # raises LoyaltyError for an org it cannot serve
    store: ProfileStore
    ledger: RunLedger
    options: BatchOptions
    # The cap on an org's concurrent single-customer syncs (None: no cap).
    single_syncs: SyncSlots | None = None
    # Where a chunk's Alpine IQ look-ups run side by side (None: one after another, in the
    # chunk's own thread).
    lookups: Executor | None = None
    # Where the readers of a plan's history slices leave their orders (None: the planner
    # reads the history alone).
    slices: OrderSlices | None = None
    # Where the listed customers' contact details are kept (None: they are not).
    contacts: ContactWriter | None = None


@dataclass(frozen=True)
class RunDispatch:
    """How a run hands work on: a chunk of customers to sync; the run, to be summarised (with
    its status)."""

    enqueue: Callable[[list[CustomerWork]], None]
    summarize: Callable[[str], None]
    # A slice of the plan's order history, for any worker to read (None: nobody else reads).
    read_orders: Callable[[HistorySlice], None] | None = None


class BatchStartAnswer(TypedDict):
    """``loyalty.sync_org``'s answer, as JSON."""

    runId: str
    started: bool
    listed: int
    message: str


@dataclass(frozen=True)
class BatchStart:
    """What starting a run came to: the run (for a duplicate, the org's run that holds the
    lock), whether it started, the customers it listed, and why not."""

    run_id: str
    started: bool
    listed: int = 0
    message: str = ""

    def to_dict(self) -> BatchStartAnswer:
        """The answer of ``loyalty.sync_org``."""
        return {
            "runId": self.run_id,
            "started": self.started,
            "listed": self.listed,
            "message": self.message,
        }


@dataclass(frozen=True)
class Batch:
    """A run this planner has opened: what was asked, the org's clients, the process's ports,
    and where its work goes."""

    request: RunRequest
    org: OrgAdapters
    ports: RunPorts
    dispatch: RunDispatch
