"""The profiles a plan reads itself, where it can settle customers with them: all at once for an
incremental run (``read_profiles``, then ``ProfilesRead``), a few blocks ahead of the work it
sends for a full run (``ProfileFeed``). Reads are chunked, a few side by side, and a chunk that
times out is read again (``PROFILE_READS``)."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from loyalty_worker.domain.models import Customer
from loyalty_worker.domain.profile import ProfileDocument
from loyalty_worker.errors import TransientError
from loyalty_worker.log_context import ContextThreadPool
from loyalty_worker.ports.profiles import ProfileStore
from loyalty_worker.services.sync.inputs import PROFILE_FIELDS
from loyalty_worker.services.sync.retries import Retries

log = logging.getLogger(__name__)

PROFILE_CHUNK = 300
PROFILE_READ_PARALLELISM = 8
PROFILE_READ_ATTEMPTS = 4
PROFILE_READS = Retries(PROFILE_READ_ATTEMPTS, first_s=2.0)
# Blocks of profiles a full run reads ahead of the work it sends.
PROFILE_READ_AHEAD = 8


@dataclass(frozen=True, slots=True)
class ProfilesRead:
    """An incremental run's profiles of the customers it syncs, read before any work is sent
    (a customer without a profile is left out)."""

    by_customer: Mapping[int, ProfileDocument]


def _read_chunk(
    store: ProfileStore,
    org_id: str,
    ids: Sequence[int],
    sleep: Callable[[float], None],
) -> dict[int, ProfileDocument]:
    """One chunk of profiles, read again after a transient failure (``PROFILE_READS``): one
    slow answer among hundreds must not fail a plan."""
    return PROFILE_READS.call(
        lambda: store.get_profiles(org_id, ids, PROFILE_FIELDS),
        what=f"org {org_id}: profile read",
        sleep=sleep,
    )


def read_profiles(
    store: ProfileStore,
    org_id: str,
    ids: Sequence[int],
    *,
    parallelism: int,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[int, ProfileDocument]:
    """The existing profiles of ``ids``, read in parallel chunks.

    At most ``PROFILE_READ_PARALLELISM`` reads at once (a wider fan-out only queues at
    Firestore), each chunk read again after a transient failure (``_read_chunk``).
    """
    chunks = [ids[i : i + PROFILE_CHUNK] for i in range(0, len(ids), PROFILE_CHUNK)]
    profiles: dict[int, ProfileDocument] = {}
    with ContextThreadPool(max_workers=min(parallelism, PROFILE_READ_PARALLELISM)) as pool:
        for found in pool.map(lambda chunk: _read_chunk(store, org_id, chunk, sleep), chunks):
            profiles.update(found)
    return profiles


class ProfileFeed:
    """A full run's profiles, in blocks of ``PROFILE_CHUNK`` customers in listing order, read
    ``PROFILE_READ_AHEAD`` blocks ahead of the consumer (``PROFILE_READ_PARALLELISM`` at once).

    Reading starts at once, beside the order history; the run then holds a few thousand
    profiles at a time instead of all of them (100,000 synced profiles with their order ledgers
    are over 100 MB). A block whose read keeps failing comes as None, so that its customers'
    tasks read their own profiles.
    """

    def __init__(
        self,
        store: ProfileStore,
        org_id: str,
        customers: Sequence[Customer],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._read = lambda ids: _read_chunk(store, org_id, ids, sleep)
        self._org_id = org_id
        self._blocks = deque(
            customers[i : i + PROFILE_CHUNK] for i in range(0, len(customers), PROFILE_CHUNK)
        )
        self._pool = ContextThreadPool(max_workers=PROFILE_READ_PARALLELISM)
        self._pending: deque[tuple[Sequence[Customer], Future[dict[int, ProfileDocument]]]]
        self._pending = deque()
        for _ in range(PROFILE_READ_AHEAD):
            self._read_next()

    def _read_next(self) -> None:
        if self._blocks:
            block = self._blocks.popleft()
            ids = [c.customer_id for c in block]
            self._pending.append((block, self._pool.submit(self._read, ids)))

    def __iter__(self) -> Iterator[tuple[Sequence[Customer], dict[int, ProfileDocument] | None]]:
        try:
            while self._pending:
                block, future = self._pending.popleft()
                self._read_next()
                try:
                    profiles: dict[int, ProfileDocument] | None = future.result()
                except TransientError as exc:
                    log.warning(
                        "org %s: %d profiles unread (%s): their tasks read them",
                        self._org_id,
                        len(block),
                        exc,
                    )
                    profiles = None
                yield block, profiles
        finally:
            self.close()

    def close(self) -> None:
        self._blocks.clear()
        self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
