"""The nightly schedule: each org's night in its own timezone, across clock changes, once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import fakeredis
import pytest

from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.services.run.nightly import night_of, orgs_due, start_nightly_runs
from tests.fakes import InMemoryProfileStore

LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
KOLKATA = ZoneInfo("Asia/Kolkata")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "due"),
    [
        # An ordinary summer night, 02:00-06:00 PDT (UTC-7): both edges.
        (utc(2026, 6, 10, 8, 59, 59), None),
        (utc(2026, 6, 10, 9, 0), date(2026, 6, 10)),
        (utc(2026, 6, 10, 12, 59, 59), date(2026, 6, 10)),
        (utc(2026, 6, 10, 13, 0), None),
        # Spring forward, 8 March 2026: 02:00 PST becomes 03:00 PDT; the night opens at 03:00
        # PDT (10:00 UTC) and lasts 4 hours.
        (utc(2026, 3, 8, 9, 59), None),  # 01:59 PST
        (utc(2026, 3, 8, 10, 0), date(2026, 3, 8)),  # 03:00 PDT
        (utc(2026, 3, 8, 13, 59), date(2026, 3, 8)),
        (utc(2026, 3, 8, 14, 0), None),
        # Fall back, 1 November 2026: 01:00-02:00 comes twice; 02:00 PST is 10:00 UTC.
        (utc(2026, 11, 1, 8, 30), None),  # 01:30 PDT
        (utc(2026, 11, 1, 9, 30), None),  # 01:30 PST, the repeated hour
        (utc(2026, 11, 1, 10, 0), date(2026, 11, 1)),
        (utc(2026, 11, 1, 13, 59), date(2026, 11, 1)),
        (utc(2026, 11, 1, 14, 0), None),
    ],
)
def test_los_angeles_nights(now: datetime, due: date | None) -> None:
    assert night_of(now, LA, 2, 4) == due


@pytest.mark.parametrize(
    ("now", "due"),
    [
        # Spring forward, 29 March 2026: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
        (utc(2026, 3, 29, 0, 59), None),  # 01:59 CET
        (utc(2026, 3, 29, 1, 0), date(2026, 3, 29)),  # 03:00 CEST
        (utc(2026, 3, 29, 4, 59), date(2026, 3, 29)),
        (utc(2026, 3, 29, 5, 0), None),
        # Fall back, 25 October 2026: 02:00-03:00 comes twice; the night opens at the first
        # 02:00 (CEST, 00:00 UTC) and the repeated hour is the same night.
        (utc(2026, 10, 24, 23, 59), None),
        (utc(2026, 10, 25, 0, 0), date(2026, 10, 25)),  # 02:00 CEST
        (utc(2026, 10, 25, 1, 30), date(2026, 10, 25)),  # 02:30 CET, the repeated hour
        (utc(2026, 10, 25, 3, 59), date(2026, 10, 25)),
        (utc(2026, 10, 25, 4, 0), None),
    ],
)
def test_berlin_nights(now: datetime, due: date | None) -> None:
    assert night_of(now, BERLIN, 2, 4) == due


def test_a_one_hour_window_is_not_skipped_by_spring_forward() -> None:
    # 02:00-03:00 never happens on 8 March 2026 in Los Angeles: the night is 03:00-04:00 PDT.
    assert night_of(utc(2026, 3, 8, 10, 30), LA, 2, 1) == date(2026, 3, 8)
    assert night_of(utc(2026, 3, 8, 11, 0), LA, 2, 1) is None
    # On an ordinary day the same window is 02:00-03:00.
    assert night_of(utc(2026, 3, 9, 9, 0), LA, 2, 1) == date(2026, 3, 9)
    assert night_of(utc(2026, 3, 9, 10, 0), LA, 2, 1) is None


def test_a_window_past_midnight_belongs_to_the_day_it_opened() -> None:
    # 23:00 PDT on 10 June is 06:00 UTC on 11 June; 4 hours later, 03:00 PDT on 11 June.
    assert night_of(utc(2026, 6, 11, 5, 59), LA, 23, 4) is None
    assert night_of(utc(2026, 6, 11, 6, 0), LA, 23, 4) == date(2026, 6, 10)
    assert night_of(utc(2026, 6, 11, 8, 0), LA, 23, 4) == date(2026, 6, 10)  # 01:00 local
    assert night_of(utc(2026, 6, 11, 10, 0), LA, 23, 4) is None


def test_orgs_in_several_zones_at_one_instant() -> None:
    orgs = {"la": LA, "berlin": BERLIN, "nyc": NEW_YORK, "tokyo": TOKYO, "kolkata": KOLKATA}
    # 09:30 UTC: 02:30 in Los Angeles, 05:30 in New York, 11:30 in Berlin, 18:30 in Tokyo.
    assert orgs_due(utc(2026, 6, 10, 9, 30), orgs, 2, 4) == [
        ("la", date(2026, 6, 10)),
        ("nyc", date(2026, 6, 10)),
    ]
    # 18:00 UTC: 02:00 (next day) in Tokyo, 23:30 in Kolkata.
    assert orgs_due(utc(2026, 6, 10, 18, 0), orgs, 2, 4) == [("tokyo", date(2026, 6, 11))]
    # 21:00 UTC: 02:30 (next day) in Kolkata, 06:00 in Tokyo (closed).
    assert orgs_due(utc(2026, 6, 10, 21, 0), orgs, 2, 4) == [("kolkata", date(2026, 6, 11))]


class Starts:
    def __init__(self) -> None:
        self.tracker = RunTracker(fakeredis.FakeRedis())
        self.started: list[str] = []

    def tick(self, store: InMemoryProfileStore, now: datetime) -> list[str]:
        return start_nightly_runs(
            store=store,
            now=now,
            hour=2,
            window_h=4,
            mark=lambda org_id, day: self.tracker.mark_nightly(org_id, day, ttl_s=60),
            start=self.started.append,
        )


def test_each_due_org_starts_once_a_night_and_a_broken_one_is_skipped() -> None:
    store = InMemoryProfileStore()
    store.settings = {
        "la": {"timezone": "America/Los_Angeles"},
        "berlin": {"timezone": "Europe/Berlin"},
        "broken": {"timezone": "Mars/Olympus_Mons"},
        "off": {"timezone": "Europe/Berlin", "disabled": True},
    }
    starts = Starts()
    # Berlin's fall-back night: ticks in the first 02:xx (CEST) and in the repeated one (CET).
    assert starts.tick(store, utc(2026, 10, 25, 0, 30)) == ["berlin"]
    assert starts.tick(store, utc(2026, 10, 25, 1, 30)) == []
    # Los Angeles's night comes later the same UTC day; Berlin's next night the day after.
    assert starts.tick(store, utc(2026, 10, 25, 9, 5)) == ["la"]
    assert starts.tick(store, utc(2026, 10, 26, 1, 5)) == ["berlin"]
    assert starts.started == ["berlin", "la", "berlin"]
