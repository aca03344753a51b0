"""Alerts for people: a Discord webhook, or the console when no webhook is configured.

Discord refuses a whole message that breaks any of its size limits, and a batch alert can list
thousands of customers; so lists are cut to fit, and every cut says how much it left out.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO, TypedDict

import httpx

from loyalty_worker.adapters.http import Call, RetryPolicy, retry_after_header, send
from loyalty_worker.ports.notify import Alert

SERVICE = "discord"

# Discord's documented limits for a webhook message and its embed.
MAX_CONTENT = 2000
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_EMBED_TOTAL = 6000
# Kept free in the embed for the field that says how many sections were left out.
_OMITTED_NOTE_ROOM = 100
# A field narrower than this would say nothing but "… and N more": leave it out instead.
_MIN_FIELD_VALUE = 40
_ELLIPSIS = "…"

COLORS = {"info": 0x3498DB, "warning": 0xF1C40F, "error": 0xE74C3C}


class DiscordNotifier:
    """Posts each alert as one webhook message with one embed."""

    def __init__(self, http: httpx.Client, *, webhook_url: str, retry: RetryPolicy) -> None:
        # The URL carries the webhook's token: it goes on the wire and nowhere else.
        self._http = http
        self._webhook_url = webhook_url
        self._retry = retry

    def send(self, alert: Alert) -> None:
        """Deliver the alert; 429s wait as long as Discord's body asks, within the retry budget."""
        send(
            self._http,
            Call("POST", self._webhook_url, label="POST webhook", json_body=build_message(alert)),
            service=SERVICE,
            policy=self._retry,
            retry_after=discord_retry_after,
        )


class ConsoleNotifier:
    """Writes alerts in full to a stream (stderr), for runs without a Discord webhook."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, alert: Alert) -> None:
        """One block of text per alert: title, summary, then each section's lines."""
        lines = [f"[{alert.severity.upper()}] {alert.title}", alert.summary]
        for name, items in alert.sections:
            lines.append(f"{name}:")
            lines.extend(f"  {item}" for item in items)
        stream = self._stream or sys.stderr
        stream.write("\n".join(lines) + "\n")
        stream.flush()


class EmbedField(TypedDict):
    name: str
    value: str
    inline: bool


class Embed(TypedDict):
    title: str
    description: str
    color: int
    fields: list[EmbedField]
    timestamp: str


class WebhookMessage(TypedDict):
    """A Discord webhook's body: the text a notification shows, and one embed."""

    content: str
    embeds: list[Embed]


def build_message(alert: Alert) -> WebhookMessage:
    """The webhook body, every Discord limit respected, cuts announced with "… and N more"."""
    title = clip(alert.title or "Alert", MAX_TITLE)
    description = clip(alert.summary, MAX_DESCRIPTION)
    used = len(title) + len(description)
    sections = list(alert.sections)
    fields: list[EmbedField] = []
    for index, (name, lines) in enumerate(sections):
        is_last = index == len(sections) - 1
        if len(fields) >= MAX_FIELDS - (0 if is_last else 1):
            break
        field_name = clip(name or "-", MAX_FIELD_NAME)
        room = MAX_EMBED_TOTAL - _OMITTED_NOTE_ROOM - used - len(field_name)
        if min(room, MAX_FIELD_VALUE) < _MIN_FIELD_VALUE:
            break
        value = cut_lines(lines, min(room, MAX_FIELD_VALUE))
        fields.append({"name": field_name, "value": value, "inline": False})
        used += len(field_name) + len(value)
    omitted = len(sections) - len(fields)
    if omitted:
        fields.append(
            {"name": "More", "value": f"{_ELLIPSIS} and {omitted} more sections", "inline": False}
        )
    embed: Embed = {
        "title": title,
        "description": description,
        "color": COLORS.get(alert.severity, COLORS["info"]),
        "fields": fields,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    return {"content": clip(alert.title, MAX_CONTENT), "embeds": [embed]}


def cut_lines(lines: Sequence[str], limit: int) -> str:
    """As many whole lines as fit in ``limit`` characters, then "… and N more" for the rest."""
    if not lines:
        return "(none)"
    # Clip single lines so that even the first one fits beside the widest possible tail.
    widest_tail = len(f"\n{_ELLIPSIS} and {len(lines)} more")
    pieces = [clip(line, limit - widest_tail) for line in lines]
    joined = "\n".join(pieces)
    if len(joined) <= limit:
        return joined
    kept: list[str] = []
    length = 0
    for piece in pieces:
        tail = len(f"\n{_ELLIPSIS} and {len(pieces) - len(kept) - 1} more")
        added = len(piece) + (1 if kept else 0)
        if length + added + tail > limit:
            break
        kept.append(piece)
        length += added
    return "\n".join([*kept, f"{_ELLIPSIS} and {len(pieces) - len(kept)} more"])


def clip(text: str, limit: int) -> str:
    """Text cut to ``limit`` characters, the cut marked by an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + _ELLIPSIS


def discord_retry_after(response: httpx.Response) -> float | None:
    """Discord says how long to wait in the 429 body (``retry_after``), else in the header."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        value = body.get("retry_after")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return retry_after_header(response)
