"""The ids every log line of a task or a request carries: run, org, task, customer.

Set once where the work begins, a Celery task (``celery_app``, from the task's arguments) or an
HTTP request (the API's middleware), and enriched where an id becomes known
(``bind(run_id=...)`` where a route starts a run, ``bound(customer_id=...)`` around one
customer of a chunk). ``logs`` puts it on every record its handlers see, whatever logger wrote
it: ours, Celery's own, httpx's, redis's.

The context lives in a ``ContextVar``, so each thread and each asyncio task has its own. Its
value is a *scope*: ``begin`` opens one (a task, a request) and ``end`` closes it; ``bind`` adds
to the scope in place, so that everything sharing it sees the addition (FastAPI runs a route
in a thread-pool copy of the request's context, and the request's closing line still carries
the run id the route bound); ``bound`` opens a nested scope for a block and restores the outer
one after it.

A new thread starts with no context. A task's helper threads carry the task's context when they
run through ``carried`` (``ContextThreadPool`` for an executor); whatever they bind stays in
their own scope, and a pool thread keeps nothing once its call returns. Threads that serve the
whole process, such as the run heartbeat, carry none: their lines name their run in the message.

Only ids go in: the fields are fixed (``FIELDS``), so a phone or a name has no field to go to;
and an id that looks like a phone number (an org id a caller made up) is masked as it would be in
a message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Final, ParamSpec, TypeVar

from loyalty_worker.domain.phone import mask_phones_in

FIELDS: Final = ("run_id", "org_id", "task_id", "task_name", "customer_id")

# What a field may be given as; None leaves the field out (an id not known here).
Value = str | int | None

P = ParamSpec("P")
R = TypeVar("R")

_EMPTY: Mapping[str, str] = MappingProxyType({})


class _Scope:
    """One task's or request's context; ``fields`` is replaced, never changed in place, so a
    record holding the mapping keeps what it was logged with."""

    __slots__ = ("fields",)

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = fields


_current: ContextVar[_Scope | None] = ContextVar("loyalty_log_context", default=None)


def current() -> Mapping[str, str]:
    """The context of the code running now (empty outside any task or request)."""
    scope = _current.get()
    return _EMPTY if scope is None else scope.fields


def _checked(values: Mapping[str, Value]) -> dict[str, str]:
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise TypeError(f"not a log context field: {', '.join(unknown)}")
    return {name: mask_phones_in(str(value)) for name, value in values.items() if value is not None}


def begin(**values: Value) -> Token[_Scope | None]:
    """Open a fresh scope holding only ``values`` (a task or a request starts); ``end`` with
    the token closes it."""
    return _current.set(_Scope(_checked(values)))


def end(token: Token[_Scope | None]) -> None:
    """Close the scope ``begin`` opened: the context before it is back."""
    _current.reset(token)


def bind(**values: Value) -> None:
    """Add ``values`` to the current scope: the rest of the task or request carries them.
    Outside any task or request (a service called by a script, a test) there is no line to
    join and nothing is kept: a thread is never left holding ids that are no longer its own."""
    added = _checked(values)
    scope = _current.get()
    if scope is not None:
        scope.fields = {**scope.fields, **added}


@contextmanager
def bound(**values: Value) -> Iterator[None]:
    """The current context plus ``values`` while the block runs, as it was after."""
    token = _current.set(_Scope({**current(), **_checked(values)}))
    try:
        yield
    finally:
        _current.reset(token)


def carried(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, run with the context of the code calling ``carried`` (in whichever thread it
    ends up), in a scope of its own that is closed when it returns."""
    fields = current()

    @functools.wraps(fn)
    def in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _current.set(_Scope(fields))
        try:
            return fn(*args, **kwargs)
        finally:
            _current.reset(token)

    return in_context


class ContextThreadPool(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose calls log with the context of the code that submitted
    them (``map`` goes through ``submit`` too)."""

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        return super().submit(carried(fn), *args, **kwargs)
