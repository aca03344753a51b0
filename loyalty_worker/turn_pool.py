"""A worker process's look-up threads, shared by the runs going in turn rather than first come.

Every chunk of a run hands its customers' Alpine IQ look-ups to one pool per process, and so
does a plan (``services.sync.lookups``). A first-come queue would make a small org's look-ups
wait behind every look-up that a big org's chunks queued before them (a hundred per chunk, a
dozen chunks per process): the small run would get the workers only as the big run's chunks
drain. ``TurnPool`` keeps one queue per run instead, and its threads take the next call of the
run they have served least (runs served alike in turn), as the chunks are released
(``adapters.fair_share``): a run that starts late has the threads from its first look-up until
it has had as many as the others.

The run is the one the submitting task works on (``log_context``: every task opens its context
from its arguments); calls submitted outside any run share one queue. A call runs with the
context of the code that submitted it (``log_context.carried``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from loyalty_worker.log_context import carried, current

P = ParamSpec("P")
R = TypeVar("R")

_Call = tuple[Future[Any], Callable[[], Any]]

# The runs whose calls served are remembered, the most recent: far more than run at once.
_SERVED_KEPT = 256


class TurnPool(Executor):
    """``max_workers`` threads serving one queue per run, the least served run first."""

    def __init__(self, max_workers: int, *, thread_name_prefix: str = "turn") -> None:
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._queues: OrderedDict[str, deque[_Call]] = OrderedDict()
        self._served: OrderedDict[str, int] = OrderedDict()  # calls taken, by run
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Queue ``fn(*args, **kwargs)`` in the queue of the submitting task's run."""
        call = carried(fn)
        future: Future[R] = Future()
        key = current().get("run_id", "")
        with self._ready:
            if self._closed:
                raise RuntimeError("cannot submit to a pool that was shut down")
            self._queues.setdefault(key, deque()).append((future, lambda: call(*args, **kwargs)))
            if not self._threads:  # all at once, at the first call: none sits idle for long
                for _ in range(self._max_workers):
                    self._start_thread()
            self._ready.notify()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new calls; the queued ones still run (or are cancelled with ``cancel_futures``)."""
        with self._ready:
            self._closed = True
            if cancel_futures:
                for queue in self._queues.values():
                    for future, _ in queue:
                        future.cancel()
                self._queues.clear()
            self._ready.notify_all()
            threads = list(self._threads)
        if wait:
            for thread in threads:
                thread.join()

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._serve, name=f"{self._prefix}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _next(self) -> _Call | None:
        """The next call of the least served run with calls waiting (of equals, the one served
        longest ago; it then goes last), waiting for one; None once shut down with nothing left."""
        with self._ready:
            while not self._queues:
                if self._closed:
                    return None
                self._ready.wait()
            key = min(self._queues, key=lambda run: self._served.get(run, 0))
            queue = self._queues[key]
            call = queue.popleft()
            if queue:
                self._queues.move_to_end(key)
            else:
                del self._queues[key]
            self._served[key] = self._served.pop(key, 0) + 1
            if len(self._served) > _SERVED_KEPT:
                self._served.popitem(last=False)
            return call

    def _serve(self) -> None:
        while (item := self._next()) is not None:
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = call()
            except BaseException as exc:  # the caller's to see, as with ThreadPoolExecutor
                future.set_exception(exc)
            else:
                future.set_result(result)
