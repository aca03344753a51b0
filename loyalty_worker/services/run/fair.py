"""Fair share across orgs: the runs going share the workers' batch threads chunk by chunk.

A run's planner does not put its chunks on the broker's queue directly: it keeps each chunk (as
it always has, for the watchdog) and puts its key in the run's line (``FairShare.offer``).
Chunks go to the broker's batch queue to the run that has had the least service so far (its
chunks released, weighted), runs of equal service in turn, only as many as keep that queue
``depth`` deep (``ChunkTurns.release``). Whatever takes a run's message off the queue releases
the next ones: a chunk task as it starts (and again as it ends), a run's customer sent alone as
it starts, a planner as it offers, the watchdog on every pass. So a small
org's run started during a big one's waits behind at most ``depth`` chunks of the big one's, then
has the workers until it has caught up; a lone run still has every batch thread of every
worker.

Nothing here can lose a customer: a chunk released but never sent (its releaser died) is still
kept, without results, and the watchdog sends it again once its run is idle, as it does for any
lost message; a chunk sent twice has its results recorded once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from loyalty_worker.errors import LoyaltyError
from loyalty_worker.ports.run import ChunkRef, FairShare, KeptChunks, WorkPayload

log = logging.getLogger(__name__)

# org, run, dry run, chunk key, the chunk's payloads
SendChunk = Callable[[str, str, bool, str, list[WorkPayload]], None]


@dataclass(frozen=True)
class ChunkTurns:
    """The runs' chunks taking turns for the batch queue."""

    fair: FairShare
    chunks: KeptChunks
    send: SendChunk
    depth: int

    def offer(self, chunk: ChunkRef, *, weight: float) -> None:
        """A run's kept chunk joins its line; whatever's turn it is goes to the queue."""
        self.fair.offer([chunk], weight=weight)
        self.release()

    def release(self) -> int:
        """Send the chunks whose turn it is, as many as fill the batch queue to its depth; how
        many were sent. A chunk no longer kept (its results are in, its run closed) is passed
        over. A send that fails puts the chunk back at the head of its run's line."""
        sent = 0
        while released := self.fair.release(self.depth):
            sent_now = 0
            for index, chunk in enumerate(released):
                payloads = self.chunks.kept_chunk(chunk.run_id, chunk.key)
                if payloads is None:
                    continue
                try:
                    self.send(chunk.org_id, chunk.run_id, chunk.dry_run, chunk.key, payloads)
                except LoyaltyError:
                    self._give_back(released[index:])
                    raise
                sent_now += 1
            sent += sent_now
            if sent_now == len(released):
                break
        return sent

    def release_quietly(self) -> None:
        """``release``, its failure logged: for callers whose own work must go on (a chunk
        task); the next release, or the watchdog's, sends what this one could not."""
        try:
            self.release()
        except LoyaltyError as exc:
            log.warning("chunks waiting their turn stay waiting: %s", exc)

    def _give_back(self, chunks: list[ChunkRef]) -> None:
        """Chunks released but not sent, back at the head of their runs' lines, in order."""
        for run_id in dict.fromkeys(chunk.run_id for chunk in chunks):
            self.fair.offer([chunk for chunk in chunks if chunk.run_id == run_id], front=True)
