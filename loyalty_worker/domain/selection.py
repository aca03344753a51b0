"""A partial run's customers: the first N listed, N drawn at random (replayable by its seed), or
named ids.

A rollout starts small ("test with 10 customers", "batch sync 100"): such a run is a real run of
the org, planned as every run is, whose plan keeps only the selected customers. It is never the
org's last full run. The selection travels in the planner's message as text (``encode``):
customer ids only, never phones.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

SelectionKind = Literal["first", "sample", "ids"]


class _Listed(Protocol):
    @property
    def customer_id(self) -> int: ...


ListedT = TypeVar("ListedT", bound=_Listed)


@dataclass(frozen=True, slots=True)
class CustomerSelection:
    """Which of the listed customers a partial run syncs."""

    kind: SelectionKind
    count: int = 0  # first / sample: how many
    seed: int = 0  # sample: the draw's seed
    ids: tuple[int, ...] = ()  # ids: the customers named

    @classmethod
    def first(cls, count: int) -> CustomerSelection:
        """The first ``count`` customers in the listing's order."""
        return cls("first", count=_positive(count))

    @classmethod
    def sample(cls, count: int, seed: int) -> CustomerSelection:
        """``count`` customers drawn at random with ``seed``: the same seed and listing draw
        the same customers."""
        return cls("sample", count=_positive(count), seed=seed)

    @classmethod
    def of(cls, ids: Sequence[int]) -> CustomerSelection:
        """The customers named (duplicates dropped, order kept)."""
        unique = tuple(dict.fromkeys(ids))
        if not unique:
            raise ValueError("no customer ids")
        return cls("ids", ids=unique)

    @property
    def scope(self) -> str:
        """What the run covered, in words for its summary and alert."""
        if self.kind == "first":
            return f"first {self.count}"
        if self.kind == "sample":
            return f"sample of {self.count} (seed {self.seed})"
        return f"{len(self.ids)} customer{'s' if len(self.ids) != 1 else ''}"

    def encode(self) -> str:
        """As the planner's message and the run's record carry it (``decode`` reads it back)."""
        if self.kind == "first":
            return f"first:{self.count}"
        if self.kind == "sample":
            return f"sample:{self.count}:{self.seed}"
        return "ids:" + ",".join(str(cid) for cid in self.ids)

    @classmethod
    def decode(cls, text: str) -> CustomerSelection:
        """A selection from ``encode``'s text; ValueError for anything else."""
        kind, _, rest = text.partition(":")
        if kind == "first":
            return cls.first(int(rest))
        if kind == "sample":
            count, _, seed = rest.partition(":")
            return cls.sample(int(count), int(seed))
        if kind == "ids":
            return cls.of([int(part) for part in rest.split(",") if part])
        raise ValueError(f"not a customer selection: {text!r}")

    def pick(self, customers: Sequence[ListedT]) -> list[ListedT]:
        """The selected customers among those listed, in the listing's order.

        A sample is drawn from the ids sorted, so that a replay with the seed picks the same
        customers whatever order the listing's pages came in."""
        if self.kind == "first":
            return list(customers[: self.count])
        if self.kind == "sample":
            ids = sorted(c.customer_id for c in customers)
            chosen = set(random.Random(self.seed).sample(ids, min(self.count, len(ids))))
        else:
            chosen = set(self.ids)
        return [c for c in customers if c.customer_id in chosen]

    def unlisted(self, customers: Sequence[ListedT]) -> list[int]:
        """Named customers the listing does not hold (none for a count)."""
        listed = {c.customer_id for c in customers}
        return [cid for cid in self.ids if cid not in listed]


def _positive(count: int) -> int:
    if count < 1:
        raise ValueError(f"a selection of {count} customers")
    return count


def selection_fields(selection: CustomerSelection) -> dict[str, str]:
    """A partial run's fields in its record: the selection (to plan it again the same way)
    and its scope in words."""
    return {"selection": selection.encode(), "scope": selection.scope}
