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

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loyalty_worker.errors import LoyaltyError
from loyalty_worker.ports.notify import Notifier
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.ports.run import RunLedger
from loyalty_worker.services.run.closing import summarize_batch
from loyalty_worker.services.run.opening import FINAL
from loyalty_worker.services.run.summary import SummaryBuilder, summary_alert

log = logging.getLogger(__name__)

PROGRESS_STAMPS = (
    "startedAt",
    "listedAt",
    "lastResultAt",
    "lastBeatAt",
    "plannerBeatAt",
    "recoveredAt",
)
# Payloads a chunk holds, as they were kept.
Payloads = list[dict[str, Any]]


@dataclass(frozen=True)
class Recovery:
    """How the watchdog hands lost work back (``tasks`` publishes it) and when it may."""

    replan: Callable[[str, str, bool, str | None], None]  # org, run, dry run, since
    resend: Callable[[str, str, bool, str, Payloads], None]  # org, run, dry run, key, payloads
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
    watched = Watched()
    queued: int | None = None
    for run in store.list_running_runs():
        run_id = run["runId"]
        meta = ledger.meta(run_id)
        if meta.get("status") in FINAL and "summary" in meta:
            # Finished, but its summary never reached Firestore: write it now.
            store.write_run_summary(run_id, json.loads(meta["summary"]))
            continue
        if "orgId" not in meta:  # gone from Redis (a late result may have left a bare record)
            outcome = _lost_run(run, store=store, notifier_for=notifier_for, r=recovery, now=now)
            if outcome is not None:
                getattr(watched, outcome).append(run_id)
            continue
        idle = now - max(float(meta[k]) for k in PROGRESS_STAMPS if k in meta)
        if idle < recovery.idle_s:
            continue
        if idle < stall_s:
            if queued is None:
                queued = recovery.queued()
            if queued:
                # Work waits in the broker: nothing is lost yet. The run keeps its org.
                ledger.acquire_lock(meta["orgId"], run_id, recovery.lock_ttl_s)
                continue
        missing = _recover(run_id, meta, idle, ledger=ledger, r=recovery, now=now, stall_s=stall_s)
        if missing is None:
            watched.recovered.append(run_id)
        elif _close(run_id, meta, missing, ledger=ledger, store=store, notifier_for=notifier_for):
            watched.closed.append(run_id)
    return watched


def _recover(
    run_id: str,
    meta: Mapping[str, str],
    idle: float,
    *,
    ledger: RunLedger,
    r: Recovery,
    now: float,
    stall_s: float,
) -> Sequence[int] | None:
    """Send an idle run's lost work again (None); or, when the run must be closed, the
    customers still missing (maybe none: its summary was lost)."""
    org_id = meta["orgId"]
    if meta.get("fired") == "1":
        return ()  # every result is in; its summary was lost: write it
    used = int(meta.get("recoveries", 0))
    lost = lost_work(run_id, ledger) if "dispatchedAt" in meta else {}
    missing = sorted({int(p["customer"][0]) for payloads in lost.values() for p in payloads})
    if used >= r.attempts or idle >= stall_s:
        return missing
    dry_run = meta.get("dryRun") == "1"
    if "dispatchedAt" in meta and lost:
        for key, payloads in lost.items():
            r.resend(org_id, run_id, dry_run, key, payloads)
        what = f"{len(missing)} customers sent again"
    else:
        # Planning never finished (or left customers without work): plan again, resumed.
        r.replan(org_id, run_id, dry_run, _since(meta.get("since")))
        what = "planning sent again"
    ledger.acquire_lock(org_id, run_id, r.lock_ttl_s)
    ledger.update(run_id, recoveries=used + 1, recoveredAt=now, **{f"recovery{used + 1}": what})
    log.warning("run %s: idle for %.0f s: %s (recovery %d)", run_id, idle, what, used + 1)
    return None


def lost_work(run_id: str, ledger: RunLedger) -> dict[str, Payloads]:
    """The kept chunks' payloads of the customers that have no result, by chunk key."""
    lost: dict[str, Payloads] = {}
    for key, payloads in ledger.kept_chunks(run_id).items():
        held = ledger.has_results(run_id, [str(p["customer"][0]) for p in payloads])
        missing = [p for p, has in zip(payloads, held, strict=True) if not has]
        if missing:
            lost[key] = missing
    return lost


def _close(
    run_id: str,
    meta: Mapping[str, str],
    missing: Sequence[int],
    *,
    ledger: RunLedger,
    store: ProfileStore,
    notifier_for: Callable[[str], Notifier],
) -> bool:
    """Write the summary of a run that cannot go on (once: the same flags as completion);
    ``completed`` when every result is in, else ``incomplete``."""
    complete = meta.get("fired") == "1"
    if not (
        ledger.claim_summary(run_id)
        or (complete and ledger.claim_summary(run_id, flag="watchdogFired"))
    ):
        return False
    status = "completed" if complete else "incomplete"
    log.warning("run %s: closing it as %s", run_id, status)
    summarize_batch(
        run_id=run_id,
        ledger=ledger,
        store=store,
        notifier=notifier_for(meta["orgId"]),
        status=status,
        missing_ids=missing,
    )
    return True


def _lost_run(
    run: dict[str, Any],
    *,
    store: ProfileStore,
    notifier_for: Callable[[str], Notifier],
    r: Recovery,
    now: float,
) -> str | None:
    """Redis no longer knows the run (restarted without persistence): plan it again while
    attempts remain (counted in its Firestore record), then report what is known."""
    run_id, org_id = run["runId"], run["orgId"]
    last = max(float(run.get(k, 0.0)) for k in ("startedAt", "recoveredAt"))
    if now - last < r.idle_s:
        return None
    used = int(run.get("recoveries", 0))
    if used < r.attempts:
        log.warning("run %s: its state is gone from Redis: planning it again", run_id)
        store.write_run_summary(run_id, {"recoveries": used + 1, "recoveredAt": now})
        r.replan(
            org_id,
            run_id,
            bool(run.get("dryRun", False)),
            _since(run.get("since")),
        )
        return "recovered"
    log.error("run %s: its state is gone from Redis: closing it as incomplete", run_id)
    builder = SummaryBuilder(
        run_id=run_id,
        org_id=org_id,
        listed=int(run.get("listed", 0)),
        dry_run=bool(run.get("dryRun", False)),
    )
    summary = builder.build(
        started_at=float(run.get("startedAt", now)), finished_at=now, status="incomplete"
    )
    summary["error"] = (
        "the run's state was lost from Redis (restarted?); profiles already written stand, "
        "the rest are unknown: run the org again"
    )
    try:
        notifier_for(org_id).send(summary_alert(summary))
        summary["alert"] = {"sent": True}
    except LoyaltyError as exc:
        summary["alert"] = {"sent": False, "error": str(exc)}
    store.write_run_summary(run_id, summary)
    return "closed"


def _since(value: str | None) -> str | None:
    """The ``since`` a run was started with, as ``sync_org`` takes it (``full``: None)."""
    return None if value in (None, "full") else value
