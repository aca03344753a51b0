"""Keep-alive connections shared by many threads, handed out last in, first out.

httpx's own pool (httpcore's) rescans every connection it holds, under one lock, on each request
and on each response closed, and for each idle connection counts the idle ones again: its cost
grows with the square of the connections kept. A worker's task threads and look-up threads keep
about fifty, and the scan was a fifth of the worker's CPU on the per-customer look-up path.

Here each connection is a pool of one of httpcore's, which still opens it, closes it when its
keep-alive expires or the server hangs up, and maps its errors to httpx's. A request takes the
connection its origin used last (or a new one) and gives it back when its response is closed:

- at most ``max_connections`` requests are in flight; the next waits for one to end, up to the
  request's pool timeout (``httpx.PoolTimeout``), as with httpx's pool;
- at most ``max_connections`` idle connections are kept; past that, the least recently used of
  the origin keeping the most is closed.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator

import httpx

Origin = tuple[str, str, int | None]


class ConnectionStack(httpx.BaseTransport):
    """An ``httpx`` transport: one connection per request in flight, reused across threads."""

    def __init__(
        self, *, max_connections: int, keepalive_expiry_s: float = 5.0, verify: bool = True
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._max = max_connections
        self._limits = httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=keepalive_expiry_s
        )
        # One TLS context for every connection: building one reads the CA bundle.
        self._ssl: ssl.SSLContext = httpx.create_ssl_context(verify=verify)
        self._in_flight = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._idle: dict[Origin, list[httpx.HTTPTransport]] = {}
        self._idle_count = 0
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        pool_timeout = request.extensions.get("timeout", {}).get("pool")
        if not self._in_flight.acquire(timeout=pool_timeout):
            raise httpx.PoolTimeout("no connection free within the pool timeout", request=request)
        origin: Origin = (request.url.scheme, request.url.host, request.url.port)
        try:
            connection = self._take(origin)
        except BaseException:
            self._in_flight.release()
            raise
        try:
            response = connection.handle_request(request)
        except BaseException:
            self._give_back(origin, connection)
            raise
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _GiveBackOnClose(
            response.stream, lambda: self._give_back(origin, connection)
        )
        return response

    def close(self) -> None:
        """Closes the idle connections; those in flight are closed as their responses are."""
        with self._lock:
            self._closed = True
            idle = [connection for stack in self._idle.values() for connection in stack]
            self._idle.clear()
            self._idle_count = 0
        for connection in idle:
            connection.close()

    @property
    def max_connections(self) -> int:
        return self._max

    def idle_connections(self) -> int:
        with self._lock:
            return self._idle_count

    def _take(self, origin: Origin) -> httpx.HTTPTransport:
        with self._lock:
            if self._closed:
                raise RuntimeError("the HTTP client is closed")
            stack = self._idle.get(origin)
            if stack:
                self._idle_count -= 1
                return stack.pop()
        return httpx.HTTPTransport(verify=self._ssl, limits=self._limits)

    def _give_back(self, origin: Origin, connection: httpx.HTTPTransport) -> None:
        surplus: httpx.HTTPTransport | None = connection
        with self._lock:
            if not self._closed:
                self._idle.setdefault(origin, []).append(connection)
                self._idle_count += 1
                surplus = None
                if self._idle_count > self._max:
                    fullest = max(self._idle.values(), key=len)
                    surplus = fullest.pop(0)
                    self._idle_count -= 1
        self._in_flight.release()
        if surplus is not None:
            surplus.close()


class _GiveBackOnClose(httpx.SyncByteStream):
    """A response body that gives its connection back once, when it is closed."""

    def __init__(self, stream: httpx.SyncByteStream, give_back: Callable[[], None]) -> None:
        self._stream = stream
        self._give_back: Callable[[], None] | None = give_back

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            give_back, self._give_back = self._give_back, None
            if give_back is not None:
                give_back()
