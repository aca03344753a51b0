"""A working in-memory stand-in for the run's kept phones (``ports.RunPhones``).

Kept apart from ``tests/fakes.py`` for now; it joins the other fakes there when they are merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class InMemoryRunPhones:
    """Each run's kept phones in a dict; ``reads`` counts the look-ups a test may check."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[int, str]] = {}
        self.reads = 0

    def keep(self, run_id: str, phones: Mapping[int, str]) -> None:
        self.runs.setdefault(run_id, {}).update(phones)

    def phones(self, run_id: str, customer_ids: Sequence[int]) -> dict[int, str]:
        self.reads += 1
        kept = self.runs.get(run_id, {})
        return {cid: kept[cid] for cid in customer_ids if cid in kept}

    def forget(self, run_id: str) -> None:
        self.runs.pop(run_id, None)
