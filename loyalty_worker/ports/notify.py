"""Alerts for people, and where they go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Alert:
    """A message for people: a title, a short text, named sections of lines."""

    title: str
    summary: str
    sections: Sequence[tuple[str, Sequence[str]]] = field(default=())
    severity: str = "info"  # info | warning | error


class Notifier(Protocol):
    """Where alerts go (Discord)."""

    def send(self, alert: Alert) -> None:
        """Deliver one alert; raises TransientError/PermanentError when it cannot."""
        ...
