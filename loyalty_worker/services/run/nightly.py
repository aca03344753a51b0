"""The nightly schedule: which orgs start their run now, each in its own timezone's night.

Beat ticks every few minutes. An org is due while its local time is within ``window_h`` hours
of ``hour``:00 on its local day. A night whose ``hour``:00 a clock change skips (spring
forward) opens at the first instant after the gap; a night whose hours repeat (fall back) is
still one night: the per-day marker (``RunTracker.mark_nightly``) starts its run once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from loyalty_worker.errors import LoyaltyError
from loyalty_worker.ports.profiles import ProfileStore

log = logging.getLogger(__name__)


def orgs_due(
    now: datetime, orgs: Mapping[str, ZoneInfo], hour: int, window_h: int
) -> list[tuple[str, date]]:
    """The orgs whose nightly window holds ``now`` (an aware datetime), each with the local day
    that window belongs to (the day of its start marker), in the order of ``orgs``."""
    due = []
    for org_id, tz in orgs.items():
        day = night_of(now, tz, hour, window_h)
        if day is not None:
            due.append((org_id, day))
    return due


def night_of(now: datetime, tz: ZoneInfo, hour: int, window_h: int) -> date | None:
    """The local day whose nightly window holds ``now`` in ``tz``; None outside every window.

    A window opens at ``hour``:00 local time (resolved like a wall clock: a time skipped by
    spring forward lands just after the gap; an ambiguous one is its first occurrence) and
    stays open ``window_h`` elapsed hours, perhaps past midnight: yesterday's window counts too.
    """
    today = now.astimezone(tz).date()
    for day in (today, today - timedelta(days=1)):
        opens = datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)
        if opens <= now < opens + timedelta(hours=window_h):
            return day
    return None


def start_nightly_runs(
    *,
    store: ProfileStore,
    now: datetime,
    hour: int,
    window_h: int,
    mark: Callable[[str, date], bool],
    start: Callable[[str], None],
) -> list[str]:
    """Start each due org's run once per local night; returns the orgs started.

    ``mark`` sets the org's marker for a local day and says whether it was new (a second Beat,
    or a late tick, then starts nothing more). An org whose settings cannot be read is skipped.
    """
    zones: dict[str, ZoneInfo] = {}
    for org_id in store.list_org_ids():
        try:
            zones[org_id] = ZoneInfo(store.get_org_settings(org_id).timezone)
        except LoyaltyError as exc:
            log.error("nightly: org %s skipped: %s", org_id, exc)
    started = []
    for org_id, day in orgs_due(now, zones, hour, window_h):
        if mark(org_id, day):
            start(org_id)
            started.append(org_id)
    return started
