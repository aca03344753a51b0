"""Recover runs that lost work, and close the ones that cannot be recovered (Beat, every
``redispatch_s`` / 2).

Every run is registered in Firestore (``loyalty_sync_runs/{runId}``, status ``running``) right
after it takes its org's lock, so a run is found whatever dies next. A run is alive while any of
its tasks beats (``services.run.heartbeat``), a result comes in or its work waits in the broker's
queues. One that has been idle for ``redispatch_s`` has lost work, whoever lost it (a killed
worker, a message lost between BRPOP and the unacked set, a restarted Redis), and gets it back:

- planning never finished: its planner is sent again, and continues the same run;
- customers are missing: the kept chunks' customers without a result are sent again;
- all results are in but the summary never came: the summary is written here;
- Redis lost the run: its planner is sent again, and the run is planned anew (profiles already
  written are settled in the plan, unchanged).

Each recovery is counted and recorded (``recoveries``, ``recovery{n}``); after
``recovery_attempts`` of them, or with no progress at all for ``stall_s``, the run is closed as
``incomplete``, naming the customers still missing, with one alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from loyalty_worker.domain.run import RunRecord, RunStatus, RunSummaryDocument
from loyalty_worker.errors import LoyaltyError
from loyalty_worker.ports.notify import Notifier
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.run import RunLedger, WorkPayload
from loyalty_worker.services.run.closing import summarize_batch
from loyalty_worker.services.run.summary import SummaryBuilder, summary_alert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovery:
    """How the watchdog hands lost work back (``tasks`` publishes it) and when it may."""

    # org, run, dry run, since, a partial run's selection
    replan: Callable[[str, str, bool, str | None, str | None], None]
    # org, run, dry run, chunk key, the chunk's payloads
    resend: Callable[[str, str, bool, str, list[WorkPayload]], None]
    queued: Callable[[], int]  # task messages waiting in the broker's queues
    idle_s: float = 60.0
    attempts: int = 3
    lock_ttl_s: int = 180


@dataclass
class Watched:
    """What one pass did: runs recovered (work sent again) and runs closed."""

    recovered: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {"recovered": self.recovered, "closed": self.closed}


def watch_runs(
    *,
    store: ProfileStore,
    ledger: RunLedger,
    notifier_for: Callable[[str], Notifier],
    recovery: Recovery,
    now: float,
    stall_s: float,
) -> Watched:
    """One pass over the running runs: recover the idle ones, close the lost causes."""
    watch = _Pass(store, ledger, notifier_for, recovery, now, stall_s)
    for run in store.list_running_runs():
        watch.look_at(run)
    return watch.watched


@dataclass
class _Pass:
    """One pass of the watchdog, at ``now``, and what it did."""

    store: ProfileStore
    ledger: RunLedger
    notifier_for: Callable[[str], Notifier]
    r: Recovery
    now: float
    stall_s: float
    watched: Watched = field(default_factory=Watched)
    queued: int | None = None  # the broker's queues, counted once per pass when needed

    def look_at(self, run: RunSummaryDocument) -> None:
        """Recover or close one run Firestore still has as running, if it must be."""
        run_id = run["runId"]
        record = self.ledger.run_record(run_id)
        if record.status.closed and record.summary is not None:
            # Finished, but its summary never reached Firestore: write it now.
            self.store.write_run_summary(run_id, record.summary)
            return
        org_id = record.org_id
        if org_id is None:  # gone from Redis (a late result may have left a bare record)
            outcome = self._lost_run(run)
            if outcome is not None:
                getattr(self.watched, outcome).append(run_id)
            return
        last = record.last_progress_at
        idle = 0.0 if last is None else self.now - last
        if idle < self.r.idle_s:
            return
        if idle < self.stall_s:
            if self.queued is None:
                self.queued = self.r.queued()
            if self.queued:
                # Work waits in the broker: nothing is lost yet. The run keeps its org.
                self.ledger.acquire_lock(org_id, run_id, self.r.lock_ttl_s)
                return
        missing = self._recover(record, org_id, idle)
        if missing is None:
            self.watched.recovered.append(run_id)
        elif self._close(record, org_id, missing):
            self.watched.closed.append(run_id)

    def _recover(self, record: RunRecord, org_id: str, idle: float) -> Sequence[int] | None:
        """Send an idle run's lost work again (None); or, when the run must be closed, the
        customers still missing (maybe none: its summary was lost)."""
        run_id, r = record.run_id, self.r
        if record.fired:
            return ()  # every result is in; its summary was lost: write it
        used = record.recoveries
        dispatched = record.dispatched_at is not None
        lost = lost_work(run_id, self.ledger) if dispatched else {}
        missing = sorted({int(p["customer"][0]) for payloads in lost.values() for p in payloads})
        if used >= r.attempts or idle >= self.stall_s:
            return missing
        if dispatched and lost:
            for key, payloads in lost.items():
                r.resend(org_id, run_id, record.dry_run, key, payloads)
            what = f"{len(missing)} customers sent again"
        else:
            # Planning never finished (or left customers without work): plan again, resumed.
            r.replan(org_id, run_id, record.dry_run, _since(record.since), record.selection)
            what = "planning sent again"
        self.ledger.acquire_lock(org_id, run_id, r.lock_ttl_s)
        self.ledger.update(
            run_id, recoveries=used + 1, recoveredAt=self.now, **{f"recovery{used + 1}": what}
        )
        log.warning("run %s: idle for %.0f s: %s (recovery %d)", run_id, idle, what, used + 1)
        return None

    def _close(self, record: RunRecord, org_id: str, missing: Sequence[int]) -> bool:
        """Write the summary of a run that cannot go on (once: the same flags as completion);
        ``completed`` when every result is in, else ``incomplete``."""
        run_id, ledger = record.run_id, self.ledger
        if not (
            ledger.claim_summary(run_id)
            or (record.fired and ledger.claim_summary(run_id, flag="watchdogFired"))
        ):
            return False
        status = RunStatus.COMPLETED if record.fired else RunStatus.INCOMPLETE
        log.warning("run %s: closing it as %s", run_id, status.value)
        summarize_batch(
            run_id=run_id,
            ledger=ledger,
            store=self.store,
            notifier=self.notifier_for(org_id),
            status=status,
            missing_ids=missing,
        )
        return True

    def _lost_run(self, run: RunSummaryDocument) -> str | None:
        """Redis no longer knows the run (restarted without persistence): plan it again while
        attempts remain (counted in its Firestore record), then report what is known."""
        run_id, org_id, r = run["runId"], run["orgId"], self.r
        last = max(float(run.get("startedAt", 0.0)), float(run.get("recoveredAt", 0.0)))
        if self.now - last < r.idle_s:
            return None
        used = int(run.get("recoveries", 0))
        dry_run = bool(run.get("dryRun", False))
        if used < r.attempts:
            log.warning("run %s: its state is gone from Redis: planning it again", run_id)
            self.store.write_run_summary(run_id, {"recoveries": used + 1, "recoveredAt": self.now})
            r.replan(org_id, run_id, dry_run, _since(run.get("since")), run.get("selection"))
            return "recovered"
        log.error("run %s: its state is gone from Redis: closing it as incomplete", run_id)
        builder = SummaryBuilder(
            run_id=run_id, org_id=org_id, listed=int(run.get("listed", 0)), dry_run=dry_run
        )
        summary = builder.build(
            started_at=float(run.get("startedAt", self.now)),
            finished_at=self.now,
            status=RunStatus.INCOMPLETE,
        )
        if run.get("partial"):
            summary["partial"] = True
            summary["scope"] = run.get("scope", "")
        summary["error"] = (
            "the run's state was lost from Redis (restarted?); profiles already written stand, "
            "the rest are unknown: run the org again"
        )
        if not dry_run:  # a dry run is a preview: nobody is alerted
            try:
                self.notifier_for(org_id).send(summary_alert(summary))
                summary["alert"] = {"sent": True}
            except LoyaltyError as exc:
                summary["alert"] = {"sent": False, "error": str(exc)}
        self.store.write_run_summary(run_id, summary)
        return "closed"


def lost_work(run_id: str, ledger: RunLedger) -> dict[str, list[WorkPayload]]:
    """The kept chunks' payloads of the customers that have no result, by chunk key."""
    lost: dict[str, list[WorkPayload]] = {}
    for key, payloads in ledger.kept_chunks(run_id).items():
        held = ledger.has_results(run_id, [str(p["customer"][0]) for p in payloads])
        missing = [p for p, has in zip(payloads, held, strict=True) if not has]
        if missing:
            lost[key] = missing
    return lost


def _since(value: str | None) -> str | None:
    """The ``since`` a run was started with, as ``sync_org`` takes it (``full``: None)."""
    return None if value in (None, "full") else value
