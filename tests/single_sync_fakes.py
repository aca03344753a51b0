"""An in-memory ``ports.SyncSlots`` for tests of single-customer syncs, on a manual clock."""

from __future__ import annotations

from collections.abc import Callable


class InMemorySyncSlots:
    """Per-org slots that expire by ``clock`` (seconds); records every refusal."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0) -> None:
        self._clock = clock
        self.held: dict[str, dict[str, float]] = {}
        self.refused: list[str] = []

    def acquire(self, org_id: str, holder: str, *, limit: int, ttl_s: float) -> bool:
        now = self._clock()
        slots = {h: until for h, until in self.held.get(org_id, {}).items() if until > now}
        if holder in slots or len(slots) < limit:
            slots[holder] = now + ttl_s
            self.held[org_id] = slots
            return True
        self.held[org_id] = slots
        self.refused.append(org_id)
        return False

    def release(self, org_id: str, holder: str) -> None:
        self.held.get(org_id, {}).pop(holder, None)
