"""What an org's generators share: its random stream, the span of its history, and the deck.

Every value of an org is drawn from the org's own ``random.Random``, in a fixed order: that is what
makes the same arguments give the same JSON. A draw added, removed or moved changes every record
drawn after it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

HISTORY_DAYS = 3 * 365
# Share of the orders that fall in the last RECENT_DAYS, so that recent windows are never empty.
RECENT_SHARE = 0.2
RECENT_DAYS = 45

_Case = TypeVar("_Case")


@dataclass(frozen=True, slots=True)
class Draws:
    """One org's random stream and the moment its history ends (midnight UTC of ``asOf``)."""

    rng: random.Random
    anchor: datetime

    def moment(self) -> datetime:
        """When an order was placed: mostly any time in the history, some of them recently."""
        days = RECENT_DAYS if self.rng.random() < RECENT_SHARE else HISTORY_DAYS
        seconds = self.rng.randint(1, days * 86_400)
        return self.anchor - timedelta(seconds=seconds, milliseconds=self.rng.randint(0, 999))


def deal(rng: random.Random, count: int, weights: Mapping[_Case, float]) -> list[_Case]:
    """``count`` cases in the given proportions, shuffled; each case at least once if room allows.

    Drawing each case independently would leave rare cases out of small datasets.
    """
    total = sum(weights.values())
    deck = [case for case, weight in weights.items() for _ in range(int(weight / total * count))]
    rare = [case for case, weight in weights.items() if int(weight / total * count) == 0]
    deck.extend(rare[: max(0, count - len(deck))])
    cases, shares = list(weights), list(weights.values())
    deck.extend(rng.choices(cases, weights=shares, k=count - len(deck)))
    rng.shuffle(deck)
    return deck


def random_hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def timestamp(moment: datetime) -> str:
    """Alleaves style: ISO-8601 UTC with milliseconds and ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
