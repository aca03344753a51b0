"""Alerts for people: a Discord webhook, or the console when no webhook is configured.

Discord refuses a whole message that breaks any of its size limits, and a batch alert can list
thousands of customers; so lists are cut to fit, and every cut says how much it left out. An
alert's links (its run's page, the org's discrepancy queue) go under the dashboard's public URL
(``LOYALTY_PUBLIC_URL``): the embed's own link is the first, and a "Links" field, placed before
any section so that no cut drops it, names them all.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NotRequired, TextIO, TypedDict

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
# Discord's limit for a URL in an embed (its ``url``), and the links' field's name.
MAX_URL = 2048
LINKS_FIELD = "Links"
# A field narrower than this would say nothing but "… and N more": leave it out instead.
_MIN_FIELD_VALUE = 40
_ELLIPSIS = "…"

# Where the alerts' links point when no public URL is given (``Settings.public_url``'s default).
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"

COLORS = {"info": 0x3498DB, "warning": 0xF1C40F, "error": 0xE74C3C}


class DiscordNotifier:
    """Posts each alert as one webhook message with one embed."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        webhook_url: str,
        retry: RetryPolicy,
        public_url: str = DEFAULT_PUBLIC_URL,
    ) -> None:
        # The URL carries the webhook's token: it goes on the wire and nowhere else.
        self._http = http
        self._webhook_url = webhook_url
        self._retry = retry
        self._public_url = public_url

    def send(self, alert: Alert) -> None:
        """Deliver the alert; 429s wait as long as Discord's body asks, within the retry budget."""
        send(
            self._http,
            Call(
                "POST",
                self._webhook_url,
                label="POST webhook",
                json_body=build_message(alert, public_url=self._public_url),
            ),
            service=SERVICE,
            policy=self._retry,
            retry_after=discord_retry_after,
        )


class ConsoleNotifier:
    """Writes alerts in full to a stream (stderr), for runs without a Discord webhook."""

    def __init__(
        self, stream: TextIO | None = None, *, public_url: str = DEFAULT_PUBLIC_URL
    ) -> None:
        self._stream = stream
        self._public_url = public_url

    def send(self, alert: Alert) -> None:
        """One block of text per alert: title, summary, its links, then each section's lines."""
        lines = [f"[{alert.severity.upper()}] {alert.title}", alert.summary]
        lines.extend(f"{label}: {url}" for label, url in absolute_links(alert, self._public_url))
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
    url: NotRequired[str]  # where the title links: the run's page
    description: str
    color: int
    fields: list[EmbedField]
    timestamp: str


class WebhookMessage(TypedDict):
    """A Discord webhook's body: the text a notification shows, and one embed."""

    content: str
    embeds: list[Embed]


def absolute_links(alert: Alert, public_url: str) -> list[tuple[str, str]]:
    """The alert's links as full URLs under ``public_url`` (a path given whole is kept)."""
    base = public_url.rstrip("/")
    return [
        (label, path if "://" in path else f"{base}/{path.lstrip('/')}")
        for label, path in alert.links
    ]


def build_message(alert: Alert, *, public_url: str = DEFAULT_PUBLIC_URL) -> WebhookMessage:
    """The webhook body, every Discord limit respected, cuts announced with "… and N more";
    the alert's links under ``public_url``."""
    title = clip(alert.title or "Alert", MAX_TITLE)
    description = clip(alert.summary, MAX_DESCRIPTION)
    used = len(title) + len(description)
    sections = list(alert.sections)
    fields: list[EmbedField] = []
    links = [
        (label, url) for label, url in absolute_links(alert, public_url) if len(url) <= MAX_URL
    ]
    if links:
        value = cut_lines([f"[{clip(label, 100)}]({url})" for label, url in links], MAX_FIELD_VALUE)
        fields.append({"name": LINKS_FIELD, "value": value, "inline": False})
        used += len(LINKS_FIELD) + len(value)
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
    if links:
        embed["url"] = links[0][1]  # the title links to the run's page
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
