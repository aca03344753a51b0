"""How the dashboard writes values for people: phones masked, stamps in the org's zone, the next
nightly run, and the geometry of its server-drawn bar charts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from loyalty_worker.domain.phone import mask_phone as mask_domain_phone


def mask_phone(phone: str | None) -> str:
    """A phone as people may see it: its last four digits only (``***-***-1234``)."""
    if phone is None or phone == "":
        return "—"
    return phone if phone.startswith("***-***-") else mask_domain_phone(phone)


def stamp(value: object) -> datetime | None:
    """A stored stamp (a datetime, or ISO text) as an aware datetime; None for anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def local_time(epoch: object, tz: ZoneInfo) -> str | None:
    """An epoch-seconds (or datetime) stamp in the org's zone, to the minute; text that is no
    stamp as it is."""
    if isinstance(epoch, int | float) and not isinstance(epoch, bool):
        moment = datetime.fromtimestamp(float(epoch), UTC) if epoch else None
    elif isinstance(epoch, str) and epoch and stamp(epoch) is None:
        return epoch
    else:
        moment = stamp(epoch)
    return None if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def local_day(value: str | None, tz: ZoneInfo) -> str | None:
    """An ISO stamp's day and time in the org's zone (``2026-12-01 10:22 PST``); None when
    there is none or it is unreadable."""
    moment = stamp(value)
    return None if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def relative_time(moment: datetime, now: datetime) -> str:
    """How long before ``now`` ``moment`` was, as people say it: ``just now`` (under a
    minute, or ahead of ``now`` by a clock's skew), ``5 minutes ago``, ``2 hours ago``,
    ``3 days ago``."""
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    minutes = int(seconds // 60)
    if minutes < 60:
        return _plural(minutes, "minute") + " ago"
    hours = minutes // 60
    if hours < 24:
        return _plural(hours, "hour") + " ago"
    return _plural(hours // 24, "day") + " ago"


def next_nightly(now: datetime, tz: ZoneInfo, hour: int) -> datetime:
    """The next ``hour``:00 in ``tz`` after ``now``: when the org's nightly run opens."""
    local = now.astimezone(tz)
    for days in range(3):
        day = local.date() + timedelta(days=days)
        opens = datetime.combine(day, time(hour), tzinfo=tz)
        if opens.astimezone(UTC) > now:
            return opens
    return datetime.combine(local.date() + timedelta(days=1), time(hour), tzinfo=tz)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart, where the template draws it."""

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


# The codes the pages show, in words (a code missing here reads as itself, its underscores
# spaced and its first letter capitalised). A review's outcome has its own words, read in
# sentences (``review_changes.outcome_words``).
WORDS = {
    # What people did (the activity on the People page).
    "run.full": "Started a full run",
    "run.incremental": "Started an incremental run",
    "run.dry": "Started a dry run",
    "sync_now": "Sync Now",
    "people.grant": "Granted a role",
    "people.revoke": "Revoked a role",
    "people.end_sessions": "Ended sessions",
    # reconciliation
    "matched": "Matched",
    "within_tolerance": "Within tolerance",
    "alpine_higher": "Alpine IQ higher",
    "calculated_higher": "Orders higher",
    "no_alpine_account": "No Alpine IQ account",
    # sources
    "alpine_iq": "Alpine IQ",
    "alpine": "Alpine IQ",
    "calculated": "Orders",
}


def in_words(code: object) -> str:
    """A status, outcome, state or reason code as people read it (``alpine_higher`` → "Alpine IQ
    higher"); nothing for None."""
    if code is None or code == "":
        return ""
    text = str(code)
    return WORDS.get(text, text.replace("_", " ").capitalize())


def number(value: object, *, signed: bool = False) -> str:
    """A count or a points figure with thousands separators (``12,345``; ``+1,200`` signed);
    None as an em dash, anything else that is no number as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:+,.2f}" if signed else f"{value:,.2f}"
    return f"{int(value):+,}" if signed else f"{int(value):,}"


def show_phone(phone: object) -> str:
    """Ten digits as people read them, ``(707) 708-6718``; anything else as it is."""
    text = "" if phone is None else str(phone)
    if len(text) == 10 and text.isdigit():
        return f"({text[:3]}) {text[3:6]}-{text[6:]}"
    return text
