"""Alerts for people, and where they go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Alert:
    """A message for people: a title, a short text, named sections of lines, and links (a
    label and a path under the dashboard's public URL, the first the alert's own link)."""

    title: str
    summary: str
    sections: Sequence[tuple[str, Sequence[str]]] = field(default=())
    severity: str = "info"  # info | warning | error
    links: Sequence[tuple[str, str]] = field(default=())


class Notifier(Protocol):
    """Where alerts go (Discord)."""

    def send(self, alert: Alert) -> None:
        """Deliver one alert; raises TransientError/PermanentError when it cannot."""
        ...
