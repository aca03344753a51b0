"""The worker's HTTP connections, against real HTTP/1.1 servers on loopback: reused across
threads, bounded in flight and idle, given back on every way out, closed with the client."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from loyalty_worker.adapters.connections import ConnectionStack


class Server:
    """A keep-alive server recording which client connection (port) each request came on;
    ``/hold`` answers once ``release`` is set, ``/bye`` closes the connection after answering."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.open_connections: set[int] = set()
        self.held = threading.Semaphore(0)
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server.open_connections.add(self.client_address[1])

            def finish(self) -> None:
                super().finish()
                server.open_connections.discard(self.client_address[1])

            def do_GET(self) -> None:
                server.ports.append(self.client_address[1])
                if self.path == "/hold":
                    server.held.release()
                    server.release.wait(10)
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                if self.path == "/bye":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait_held(self, count: int) -> None:
        for _ in range(count):
            assert self.held.acquire(timeout=5), "a request never reached the server"


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.stop()


@pytest.fixture
def other_server() -> Iterator[Server]:
    running = Server()
    yield running
    running.stop()


def client(max_connections: int, *, pool_timeout_s: float = 5.0) -> httpx.Client:
    return httpx.Client(
        transport=ConnectionStack(max_connections=max_connections),
        timeout=httpx.Timeout(5.0, pool=pool_timeout_s),
    )


def in_threads(count: int, http: httpx.Client, url: str) -> list[threading.Thread]:
    threads = [threading.Thread(target=http.get, args=(url,)) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def held_together(count: int, http: httpx.Client, server: Server) -> None:
    """``count`` calls in flight at once (each on a connection of its own), then answered."""
    threads = in_threads(count, http, f"{server.url}/hold")
    server.wait_held(count)
    server.release.set()
    for thread in threads:
        thread.join()


def wait_until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached")


def test_calls_one_after_another_from_many_threads_share_one_connection(server: Server) -> None:
    with client(8) as http:
        for _ in range(5):
            threads = in_threads(1, http, f"{server.url}/")
            for thread in threads:
                thread.join()
        assert len(server.ports) == 5
        assert len(set(server.ports)) == 1


def test_calls_in_flight_each_have_a_connection_and_leave_it_for_the_next(
    server: Server,
) -> None:
    with client(8) as http:
        held_together(3, http, server)
        opened = set(server.ports)
        assert len(opened) == 3
        transport = http._transport
        assert isinstance(transport, ConnectionStack)
        assert transport.idle_connections() == 3
        for _ in range(3):
            assert http.get(f"{server.url}/").status_code == 200
        assert set(server.ports) == opened  # no new connection


def test_no_more_calls_in_flight_than_the_limit(server: Server) -> None:
    with client(2, pool_timeout_s=0.3) as http:
        threads = in_threads(2, http, f"{server.url}/hold")
        server.wait_held(2)
        with pytest.raises(httpx.PoolTimeout):
            http.get(f"{server.url}/")
        server.release.set()
        for thread in threads:
            thread.join()
        assert http.get(f"{server.url}/").status_code == 200
        assert len(set(server.ports)) == 2


def test_idle_connections_past_the_limit_are_closed(server: Server, other_server: Server) -> None:
    with client(2) as http:
        held_together(2, http, server)
        wait_until(lambda: len(server.open_connections) == 2)

        assert http.get(f"{other_server.url}/").status_code == 200
        transport = http._transport
        assert isinstance(transport, ConnectionStack)
        assert transport.idle_connections() == 2
        wait_until(lambda: len(server.open_connections) == 1)  # one of the first origin's closed
        assert len(other_server.open_connections) == 1


def test_a_failed_call_gives_its_slot_back(server: Server) -> None:
    with socket_nobody_listens_on() as dead_url, client(1, pool_timeout_s=1.0) as http:
        with pytest.raises(httpx.ConnectError):
            http.get(dead_url)
        assert http.get(f"{server.url}/").status_code == 200


def test_a_response_never_read_gives_its_slot_back_when_closed(server: Server) -> None:
    with client(1, pool_timeout_s=1.0) as http:
        with http.stream("GET", f"{server.url}/"):
            pass  # closed unread
        assert http.get(f"{server.url}/").status_code == 200


def test_a_connection_the_server_closed_is_replaced(server: Server) -> None:
    with client(4) as http:
        assert http.get(f"{server.url}/bye").status_code == 200
        wait_until(lambda: not server.open_connections)
        assert http.get(f"{server.url}/").status_code == 200
        assert len(set(server.ports)) == 2


def test_closing_the_client_closes_its_idle_connections(server: Server) -> None:
    http = client(4)
    held_together(3, http, server)
    assert len(server.open_connections) == 3
    http.close()
    wait_until(lambda: not server.open_connections)
    with pytest.raises(RuntimeError, match="closed"):
        http.get(f"{server.url}/")


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConnectionStack(max_connections=0)


@contextlib.contextmanager
def socket_nobody_listens_on() -> Iterator[str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
