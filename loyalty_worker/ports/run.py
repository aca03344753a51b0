"""A run's shared state (Redis): its ledger, slices, phones, slots and progress."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Required, TypedDict

from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.domain.results import SyncResult
from loyalty_worker.domain.run import (
    AlertOutcome,
    PlanReport,
    RunRecord,
    RunStatus,
    RunSummaryDocument,
)


class WorkPayload(TypedDict, total=False):
    """One customer's work in a task message, compact JSON (``CustomerWork.to_payload``): rows
    of plain values, amounts as text, the phone masked."""

    customer: Required[list[Any]]  # [id, masked phone, Alpine IQ user code]
    orders: Required[
        list[list[Any]]
    ]  # [id, status, subtotal, discount, refunded(, created)], as text
    malformed: list[str]  # ids of the customer's orders that cannot be trusted
    alpine: list[Any] | None  # [points, tier, last visit, contact id]; None: no account
    profile: ProfileDocument | None  # its PROFILE_FIELDS, when the run read it
    phoneHash: str  # ``PhoneHash.to_text``
    phoneKept: bool  # its phone is kept beside the message (``RunPhones``)


class RunRecords(Protocol):
    """A run's record in the Redis run state, as a trigger opens it before any worker has it
    and the run's tasks set its fields."""

    def start(self, run_id: str, org_id: str, **meta: str | int | float) -> None:
        """Open the run's record."""
        ...

    def update(self, run_id: str, **fields: str | int | float) -> None:
        """Set fields of the run's record."""
        ...


class RememberedResults(Protocol):
    """Each customer's latest kept sync result (the incremental memo, Redis): its phone is
    already masked, which is how the dashboard shows a phone Markitbot's profile lacks."""

    def recall(self, org_id: str, customer_ids: Sequence[int]) -> dict[int, SyncResult]:
        """The latest kept result of each of ``customer_ids`` that has one."""
        ...


class RunLock(Protocol):
    """The org's run lock: one run of an org at a time, kept while its tasks beat."""

    def acquire_lock(self, org_id: str, run_id: str, ttl_s: int) -> str | None:
        """Take the org's run lock for ``ttl_s`` (its holder refreshes it); the holder's run
        id when another run has it."""
        ...

    def release_lock(self, org_id: str, run_id: str) -> None:
        """Release the org's lock if ``run_id`` still holds it."""
        ...

    def beat(
        self, run_id: str, org_id: str, *, lock_ttl_s: int, planner: str | None = None
    ) -> bool:
        """A task of the run is alive: stamp ``lastBeatAt`` (``plannerBeatAt`` too for the
        planner whose token holds the planning) and keep the org's lock for it; False once
        the run is closed."""
        ...


class RunResults(Protocol):
    """A run's planner claim, its results counted to completion, and its close."""

    def claim_planner(self, run_id: str, *, holder: str, stale_s: float) -> str:
        """``claimed`` for exactly one planner at a time, by its token ``holder``
        (``planAttempts`` counts them, ``planStartedAt`` stamps the claim), ``busy`` while
        another planner beat within ``stale_s`` (a planner's own beats never count),
        ``planned`` once its work is all sent (``dispatchedAt``), ``ended`` once it is
        closed."""
        ...

    def set_listed(self, run_id: str, listed: int) -> bool:
        """How many results complete the run; True when all are in already."""
        ...

    def record(self, run_id: str, results: Mapping[str, SyncResult]) -> bool:
        """Store results by customer key (a key stored again replaces its result, counted once,
        except that a failure never replaces a success); True for exactly the one caller whose
        results complete the run; nothing once it is closed."""
        ...

    def has_results(self, run_id: str, keys: Sequence[str]) -> list[bool]:
        """For each customer key, whether the run holds its result."""
        ...

    def iter_results(self, run_id: str) -> Iterator[SyncResult]:
        """Every stored result, equal to what was recorded."""
        ...

    def run_record(self, run_id: str) -> RunRecord:
        """The run's record; one without ``org_id`` when the run state does not know it."""
        ...

    def note_plan(self, run_id: str, report: PlanReport) -> None:
        """Keep what the run's plan read, for its summary."""
        ...

    def keep_alert(self, run_id: str, alert: AlertOutcome) -> None:
        """Keep what became of the run's one alert: a summary tried again reports it instead
        of alerting twice."""
        ...

    def claim_summary(self, run_id: str, flag: str = "fired") -> bool:
        """True for exactly one caller (per ``flag``): the one that may write the summary."""
        ...

    def finish(self, run_id: str, status: RunStatus, summary: RunSummaryDocument) -> None:
        """Close the run with its summary."""
        ...


class KeptChunks(Protocol):
    """A run's chunks kept until their results are in: what the watchdog sends again."""

    def keep_chunk(self, run_id: str, key: str, payloads: Sequence[WorkPayload]) -> None:
        """Keep a chunk's payloads until its results are in (what a re-send sends)."""
        ...

    def drop_chunk(self, run_id: str, key: str) -> None:
        """Forget a chunk whose results are all in."""
        ...

    def kept_chunks(self, run_id: str) -> dict[str, list[WorkPayload]]:
        """Every kept chunk's payloads by chunk key; none once the run is closed."""
        ...

    def kept_chunk(self, run_id: str, key: str) -> list[WorkPayload] | None:
        """One kept chunk's payloads; None once its results are in or the run is closed."""
        ...


class ResultMemo(RememberedResults, Protocol):
    """Each customer's latest result kept across runs (the incremental memo), and the
    org's last fully successful run."""

    def remember(self, results: Sequence[SyncResult]) -> None:
        """Keep each customer's latest successful result with its inputs (per org); a failure
        forgets it, a dry run leaves it alone."""
        ...

    def mark_success(self, org_id: str, started_at: float) -> None:
        """Remember when the org's last fully successful run started."""
        ...


class RunLedger(RunRecords, RunLock, RunResults, KeptChunks, ResultMemo, Protocol):
    """A batch run's shared state (Redis), every role of it: ``adapters.run_state.RunTracker``
    is one, a service that needs one role takes that role."""


@dataclass(frozen=True)
class ChunkRef:
    """A run's kept chunk, by the key the run keeps it under, and what its message names."""

    org_id: str
    run_id: str
    dry_run: bool
    key: str


class FairShare(Protocol):
    """The runs' chunks waiting their turn for the broker's batch queue, released to the run
    that has had the least (weighted) service, runs of equal service in turn
    (``services.run.fair``)."""

    def offer(
        self, chunks: Sequence[ChunkRef], *, weight: float = 1.0, front: bool = False
    ) -> None:
        """Put chunks of one run in its line (``front``: back at its head, in order)."""
        ...

    def release(self, depth: int) -> list[ChunkRef]:
        """The chunks whose turn it is, as many as fill the batch queue to ``depth``."""
        ...

    def waiting(self) -> int:
        """Chunks waiting their turn, over every run."""
        ...


class OrderSlices(Protocol):
    """Slices of a run's order history (date ranges) shared by the processes that read them
    (Redis): a slice is claimed by one reader, kept alive while it reads, and its orders left
    for the planner that gathers them. Errors are transient (``TransientError``)."""

    def claim(self, run_id: str, key: str, holder: str, *, ttl_s: float) -> bool:
        """Take the slice for ``holder`` unless another holds it or its orders are in."""
        ...

    def renew(self, run_id: str, key: str, holder: str, *, ttl_s: float) -> bool:
        """Keep ``holder``'s claim for ``ttl_s`` more; False when it holds it no more."""
        ...

    def release(self, run_id: str, key: str, holder: str) -> None:
        """Give ``holder``'s claim back (nothing when it holds none)."""
        ...

    def claimed(self, run_id: str, key: str) -> bool:
        """Whether a reader holds the slice now."""
        ...

    def put(self, run_id: str, key: str, orders: bytes, *, ttl_s: float) -> None:
        """Leave the slice's orders (encoded) for the planner, for ``ttl_s`` at most."""
        ...

    def get(self, run_id: str, key: str) -> bytes | None:
        """The slice's orders, once a reader left them."""
        ...

    def forget(self, run_id: str, keys: Sequence[str]) -> None:
        """Drop the slices' orders and claims (gathered)."""
        ...


class RunPhones(Protocol):
    """The phones a run's tasks must look up in Alpine IQ, kept out of their messages (Redis,
    for a bounded time)."""

    def keep(self, run_id: str, phones: Mapping[int, str]) -> None:
        """Keep these customers' 10-digit phones for the run's tasks and their retries."""
        ...

    def phones(self, run_id: str, customer_ids: Sequence[int]) -> dict[int, str]:
        """The kept phones of those of ``customer_ids`` that have one."""
        ...

    def forget(self, run_id: str) -> None:
        """Drop the run's phones: its summary is written, no task of it needs them."""


class SyncSlots(Protocol):
    """Slots for an org's single-customer syncs, shared by every worker (Redis): each such sync
    pages Alleaves on its own, so only so many of an org's run at once."""

    def acquire(self, org_id: str, holder: str, *, limit: int, ttl_s: float) -> bool:
        """Take a slot for ``holder`` when the org has fewer than ``limit`` held; a slot whose
        holder never released it frees itself after ``ttl_s``."""
        ...

    def release(self, org_id: str, holder: str) -> None:
        """Give ``holder``'s slot back (nothing when it holds none)."""
        ...


class RunProgress(Protocol):
    """A run's live state as the run state (Redis) reports it."""

    @property
    def org_id(self) -> str | None: ...

    @property
    def status(self) -> str: ...

    @property
    def listed(self) -> int | None: ...

    @property
    def done(self) -> int: ...

    @property
    def failed(self) -> int: ...

    @property
    def summary(self) -> RunSummaryDocument | None: ...

    @property
    def error(self) -> str | None: ...

    @property
    def kind(self) -> str:
        """What kind of run, in words (``domain.run.run_kind``)."""
        ...


class RunProgressSource(Protocol):
    """Live runs (Redis), which forget a run some time after it closed."""

    def progress(self, run_id: str) -> RunProgress:
        """The run's state; ``org_id`` None when the run is unknown (or forgotten)."""
        ...


class RunSummaries(Protocol):
    """Closed runs' summaries (``loyalty_sync_runs/{runId}``)."""

    def get_run_summary(self, run_id: str) -> RunSummaryDocument | None:
        """A run's summary document, or None."""
        ...
