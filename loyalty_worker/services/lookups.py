"""A chunk's Alpine IQ look-ups, made side by side before its customers are evaluated.

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
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from dataclasses import replace

from loyalty_worker.domain.models import AlpineProfile
from loyalty_worker.ports import LoyaltyLookup
from loyalty_worker.services.customer_inputs import AlpineAnswer, CustomerWork

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
