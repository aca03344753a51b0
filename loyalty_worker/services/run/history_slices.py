"""A plan's order history read by several worker processes, not by its planner alone.

The history is most of a plan's work (a large org's is hundreds of thousands of orders, each
page fetched, decoded and parsed) and every customer needs all of it, so no chunk can be sent
before it is read. The planner cuts it into ``count`` slices, slice k holding every
``count``-th date window from the k-th (so that busy seasons and quiet ones spread over all of
them), and sends each but the first as a ``loyalty.read_orders`` task: any idle worker
thread, in any process, takes one. Each slice is read by whoever claims it
(``ports.OrderSlices``), the planner included: it reads the first, then, side by side, every
slice nobody has claimed, then waits for the ones being read elsewhere. A reader keeps its
claim alive while it reads and leaves the orders (compressed) for the planner; a reader that
dies lets its claim lapse, and the planner reads that slice itself. So the history is always
read, once per slice in the ordinary case, and a second process shares the reading instead of
idling until the first chunk is sent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from loyalty_worker.errors import LoyaltyError
from loyalty_worker.log_context import ContextThreadPool, carried
from loyalty_worker.ports.run import OrderSlices
from loyalty_worker.services.sync.deadline import Deadline, check
from loyalty_worker.services.sync.order_history import OrderHistory
from loyalty_worker.services.sync.paging import HistoryWindow

log = logging.getLogger(__name__)

# A reader's claim lapses this long after its last renewal (renewed a third of it apart): a
# reader that died holds its slice no longer than this.
CLAIM_TTL_S = 30.0
# How often the planner looks for slices read elsewhere.
POLL_S = 0.05


@dataclass(frozen=True)
class HistorySlice:
    """Slice ``index`` of ``count`` of a run's history of [start, end]: what a
    ``loyalty.read_orders`` message carries."""

    org_id: str
    run_id: str
    start: date
    end: date
    index: int = 0
    count: int = 1

    @property
    def key(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}:{self.index}/{self.count}"


# Reads a slice's orders in this process, calling its second argument before each page (it
# raises ``ClaimLost`` once the reader's claim has lapsed).
SliceReader = Callable[[HistorySlice, Callable[[], None]], OrderHistory]


class ClaimLost(Exception):
    """A reader's claim lapsed while it read (Redis out of reach for longer than the claim's
    TTL): another reader may have the slice."""


class _Claim:
    """A held claim, renewed every third of its TTL by a thread of its own (however long one
    page takes) until released; ``check``, called before each page, raises once it is lost."""

    def __init__(self, slices: OrderSlices, part: HistorySlice, holder: str) -> None:
        self._slices, self._part, self._holder = slices, part, holder
        self._done = threading.Event()
        self._lost = False
        self._thread = threading.Thread(
            target=carried(self._renew_until_done), name="order-slice-claim", daemon=True
        )
        self._thread.start()

    def _renew_until_done(self) -> None:
        part = self._part
        while not self._done.wait(CLAIM_TTL_S / 3):
            try:
                held = self._slices.renew(part.run_id, part.key, self._holder, ttl_s=CLAIM_TTL_S)
            except LoyaltyError as exc:  # Redis away: the next renewal tries again
                log.warning(
                    "run %s: orders of %s: claim not renewed: %s", part.run_id, part.key, exc
                )
                continue
            if not held:
                self._lost = True
                return

    def check(self) -> None:
        if self._lost:
            raise ClaimLost(self._part.key)

    def release(self) -> None:
        self._done.set()
        part = self._part
        try:
            self._slices.release(part.run_id, part.key, self._holder)
        except LoyaltyError as exc:  # it lapses by itself
            log.warning("run %s: orders of %s: claim not released: %s", part.run_id, part.key, exc)


def read_slice(
    part: HistorySlice,
    read: SliceReader,
    slices: OrderSlices,
    *,
    keep_s: float,
    holder: str | None = None,
) -> bool:
    """Read one slice for its planner (a ``loyalty.read_orders`` task): claim it, read it,
    leave its orders for ``keep_s``. False when it was claimed already, or its orders are in.

    A failure (an API error, a lost claim) releases the claim and is logged, not raised: the
    planner then reads the slice itself, and its own error, if any, fails the plan as usual.
    """
    holder = holder or uuid.uuid4().hex
    if not slices.claim(part.run_id, part.key, holder, ttl_s=CLAIM_TTL_S):
        return False
    claim = _Claim(slices, part, holder)
    try:
        history = read(part, claim.check)
        slices.put(part.run_id, part.key, history.to_bytes(), ttl_s=keep_s)
    except (LoyaltyError, ClaimLost) as exc:
        log.warning(
            "run %s: orders of %s not read here (%s): its planner reads them",
            part.run_id,
            part.key,
            exc,
        )
        return False
    finally:
        claim.release()
    return True


@dataclass(frozen=True)
class SlicedHistory:
    """A run's history read in ``count`` slices by whichever processes take them (the plan's
    ``HistoryReader``): ``send`` hands each slice but the first to any worker, ``read`` reads
    one here, ``slices`` is where they meet; the wait for the others' slices polls every
    ``POLL_S`` (with ``sleep``) until ``deadline``."""

    org_id: str
    run_id: str
    count: int
    read: SliceReader
    slices: OrderSlices
    send: Callable[[HistorySlice], None]
    deadline: Deadline | None = None
    sleep: Callable[[float], None] = time.sleep

    def __call__(self, window: HistoryWindow) -> OrderHistory:
        """The org's orders of ``window``, gathered from every slice.

        The planner reads the first slice while the others are taken; then, side by side, every
        slice nobody has claimed (busy workers, or a reader that died), so that alone it reads
        the history as widely as one reader would; then it waits for the rest.
        """
        run_id, slices = self.run_id, self.slices
        parts = [
            HistorySlice(self.org_id, run_id, window.start, window.end, index, self.count)
            for index in range(self.count)
        ]
        for part in parts[1:]:
            self.send(part)
        holder = uuid.uuid4().hex
        gathered = _Gathered()
        try:
            _read_here({0: parts[0]}, gathered, self.read, slices, holder)
            while len(gathered.done) < len(parts):
                waiting = [i for i in range(len(parts)) if i not in gathered.done]
                free: dict[int, HistorySlice] = {}
                for index in waiting:
                    kept = slices.get(run_id, parts[index].key)
                    if kept is None:
                        free[index] = parts[index]
                    else:
                        gathered.add(index, OrderHistory.from_bytes(kept))
                if not _read_here(free, gathered, self.read, slices, holder) and free:
                    check(self.deadline, "orders read by other workers")
                    self.sleep(POLL_S)
        finally:
            _forget(slices, run_id, parts)
        gathered.history.finish()
        return gathered.history


class _Gathered:
    """The slices gathered so far, merged as each comes in: a slice's orders are held apart
    only until then (eight slices held whole until the end would hold the history twice)."""

    def __init__(self) -> None:
        self.history = OrderHistory()
        self.done: set[int] = set()

    def add(self, index: int, part: OrderHistory) -> None:
        self.history.merge(part)
        self.done.add(index)


def _read_here(
    parts: Mapping[int, HistorySlice],
    gathered: _Gathered,
    read: SliceReader,
    slices: OrderSlices,
    holder: str,
) -> bool:
    """Claim whichever of ``parts`` (by index) nobody holds and read them here, side by side,
    into ``gathered``; whether any was claimed."""
    claims = {
        index: _Claim(slices, part, holder)
        for index, part in parts.items()
        if slices.claim(part.run_id, part.key, holder, ttl_s=CLAIM_TTL_S)
    }
    if not claims:
        return False
    try:
        with ContextThreadPool(max_workers=len(claims)) as pool:
            futures = {
                index: pool.submit(read, parts[index], claim.check)
                for index, claim in claims.items()
            }
            for index, future in futures.items():
                # A claim lost: another reader has the slice now; gathered once it is left.
                with contextlib.suppress(ClaimLost):
                    gathered.add(index, future.result())
    finally:
        for claim in claims.values():
            claim.release()
    return True


def _forget(slices: OrderSlices, run_id: str, parts: Sequence[HistorySlice]) -> None:
    try:
        slices.forget(run_id, [part.key for part in parts])
    except LoyaltyError as exc:  # they expire by themselves
        log.warning("run %s: order slices not dropped: %s", run_id, exc)
