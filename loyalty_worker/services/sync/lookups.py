"""Alpine IQ look-ups made ahead: a chunk's, side by side before its customers are evaluated;
and a plan's, while it reads the order history (``PlanLookups``).

The documented contacts listing carries no balances, so most customers of a chunk need a look-up
by phone: one after another they would hold the chunk's thread for ``chunk size × latency``, and
the last chunks of a run would leave most threads idle. The look-ups go instead to one pool per
worker process, as wide as the worker's concurrency, so a process never has more look-ups in
flight than it has threads; the shared rate limit (the HTTP client's hook) still spaces them.

A look-up that fails here is left to the customer's own sync, which looks the phone up again and
reports what it finds as before (a transient error: retried alone; a permanent one: that customer
fails).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from dataclasses import replace

from loyalty_worker import log_context
from loyalty_worker.domain.models import AlpineProfile
from loyalty_worker.ports.sources import LoyaltyLookup
from loyalty_worker.services.sync.inputs import AlpineAnswer, CustomerWork

log = logging.getLogger(__name__)


def look_up_ahead(
    works: Sequence[CustomerWork], alpine: LoyaltyLookup, pool: Executor | None
) -> list[CustomerWork]:
    """``works`` with Alpine IQ's answer filled in for every customer whose phone needed a
    look-up and got one; the others as they came. Without a pool, nothing is looked up here."""
    ahead = list(works)
    if pool is None:
        return ahead
    pending: list[tuple[int, Future[AlpineProfile | None]]] = []
    for index, work in enumerate(works):
        phone = work.phone_to_look_up()
        if phone is not None:
            pending.append((index, pool.submit(alpine.lookup, phone)))
    for index, future in pending:
        try:
            profile = future.result()
        except Exception as exc:  # any failure: the customer's own sync meets and reports it
            log.debug("look-up ahead failed (%s); the customer's sync tries again", type(exc))
            continue
        ahead[index] = replace(works[index], alpine=AlpineAnswer(profile))
    return ahead


class PlanLookups:
    """Look-ups made while the plan still reads the order history.

    They need only the customer listing and the contacts listing, so they start as soon as both
    are in, on the process's look-up pool, at most ``queued`` handed to it at a time (a large
    org never holds a future per customer). ``stop()`` ends them when the history is in: the
    look-ups not yet started are dropped, and the answers in by the time a customer's work is
    built go with it (``answer``); the others are looked up by the customer's chunk, as before.
    A failed look-up is left to the chunk too.
    """

    def __init__(
        self, alpine: LoyaltyLookup, pool: Executor, phones: Sequence[str], *, queued: int = 64
    ) -> None:
        self._alpine = alpine
        self._pool = pool
        self._phones = phones
        self._slots = threading.Semaphore(queued)
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._answers: dict[str, AlpineProfile | None] = {}
        self._pending: set[Future[None]] = set()
        # Carrying the plan's context: the look-ups it submits carry it on to the pool.
        self._feeder = threading.Thread(
            target=log_context.carried(self._feed), name="plan-lookups", daemon=True
        )
        self._feeder.start()

    def _feed(self) -> None:
        for phone in self._phones:
            self._slots.acquire()
            if self._stopped.is_set():
                return
            with self._lock:
                try:
                    future = self._pool.submit(self._look_up, phone)
                except RuntimeError:  # the pool is shutting down: the chunks look them up
                    return
                self._pending.add(future)
            future.add_done_callback(self._done)

    def _look_up(self, phone: str) -> None:
        try:
            profile = self._alpine.lookup(phone)
        except Exception as exc:  # any failure: the customer's chunk meets and reports it
            log.debug("look-up during the plan failed (%s); its chunk tries again", type(exc))
            return
        with self._lock:
            self._answers[phone] = profile

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        self._slots.release()

    def stop(self) -> int:
        """Start no more look-ups; how many were answered."""
        self._stopped.set()
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.cancel()  # only the ones not started: they release their slot as they go
        self._slots.release()  # a feeder waiting for a slot sees the stop
        self._feeder.join()
        with self._lock:
            return len(self._answers)

    def answer(self, phone: str) -> AlpineAnswer | None:
        """Alpine IQ's answer for ``phone`` if its look-up is in, else None."""
        with self._lock:
            if phone in self._answers:
                return AlpineAnswer(self._answers[phone])
        return None
