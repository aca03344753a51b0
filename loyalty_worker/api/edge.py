"""The API's edge toward the network: the host names it answers to, what every answer carries,
and who the client is.

``EdgeMiddleware`` runs before every layer of the app but the request log (``app``):

1. **Host.** A request whose ``Host`` header is not one trusted host name (its port, if any, a
   number, and not part of the check) gets 400 before anything else runs, so that no redirect,
   link or cookie is ever built from a name the client chose: JSON ``{"detail"}``, or a short
   page under ``/dashboard``. Trusted (``TrustedHosts``): ``LOYALTY_API_TRUSTED_HOSTS``, always
   with the host of ``LOYALTY_PUBLIC_URL``; when that list is empty, the public URL's host with
   ``localhost``, ``127.0.0.1`` and ``::1``.
2. **Redirects.** A ``Location`` naming the request's own origin (FastAPI's redirect of
   ``/dashboard/`` to ``/dashboard``) is made relative: the browser stays at the address it
   used, whatever ``Host`` a reverse proxy forwarded.
3. **Headers**, on every answer: ``X-Content-Type-Options: nosniff``; ``Referrer-Policy:
   same-origin`` and ``X-Frame-Options: DENY`` unless the answer set its own; ``Cache-Control:
   no-store`` unless the answer set its own, and never added to the dashboard's static files
   (``/dashboard/static``); ``Strict-Transport-Security`` when the public URL is https. The
   pages add their ``Content-Security-Policy`` (``dashboard_pages``).

``client_address`` says who the client is: the connection's peer, or, when the peer is a trusted
proxy (``LOYALTY_API_TRUSTED_PROXIES``), the address the proxies' ``X-Forwarded-For`` says they
served. Nothing else in the API reads ``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress
import logging
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty_worker.api.settings import HOST_NAME, WILDCARD, ProxyNetwork, trusted_host

__all__ = [
    "ANSWER_HEADERS",
    "HSTS",
    "LOOPBACK_HOSTS",
    "UNKNOWN_CLIENT",
    "EdgeMiddleware",
    "TrustedHosts",
    "client_address",
    "host_name",
    "relative_location",
]

log = logging.getLogger(__name__)

# Trusted besides the public URL's host when LOYALTY_API_TRUSTED_HOSTS is empty.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# Set on every answer that has none of its own (Cache-Control: see STATIC).
ANSWER_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
# With an https public URL: browsers come back over https only, for a year.
HSTS = "max-age=31536000; includeSubDomains"
# The dashboard's stylesheet and script (``app``): cacheable, as StaticFiles answers them.
STATIC = "/dashboard/static/"
PAGES = "/dashboard"
# What ``client_address`` says of a connection without a peer address (a Unix socket).
UNKNOWN_CLIENT = "unknown"
# The longest Host header value logged when it is refused.
_LOGGED_HOST = 100

_REFUSED = "This server does not answer to that host name."
_REFUSED_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Unknown host</title>"
    f"<h1>Unknown host</h1><p>{_REFUSED} Use the dashboard's own address.</p></html>"
)


@dataclass(frozen=True, slots=True)
class TrustedHosts:
    """The host names the API answers to: exact names and addresses, and the domains of
    ``*.example.com`` entries (any name under the domain, not the domain itself)."""

    names: frozenset[str]
    domains: tuple[str, ...] = ()

    @classmethod
    def of(cls, configured: Iterable[str], public_url: str) -> TrustedHosts:
        """``configured`` (``LOYALTY_API_TRUSTED_HOSTS``) with the public URL's host; empty, the
        public URL's host and loopback's."""
        public = urllib.parse.urlsplit(public_url).hostname or ""
        entries = [trusted_host(entry) for entry in configured] or list(LOOPBACK_HOSTS)
        entries.append(trusted_host(public))
        domains = tuple(e.removeprefix("*") for e in entries if e.startswith(WILDCARD))
        names = frozenset(e for e in entries if not e.startswith(WILDCARD))
        return cls(names=names, domains=domains)

    def allows(self, host: str) -> bool:
        """Whether ``host`` (as ``host_name`` gives it) is trusted."""
        return host in self.names or any(host.endswith(domain) for domain in self.domains)


def host_name(header: str) -> str | None:
    """The host a ``Host`` header names, in lower case, its port dropped (an IPv6 address
    without brackets, as written shortest); None when the header is not a host name or address
    with an optional numeric port."""
    value = header.strip().lower()
    if value.startswith("["):
        host, bracket, port = value[1:].partition("]")
        if not bracket:
            return None
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            return None
        host = str(address)
    else:
        host, colon, port = value.partition(":")
        port = colon + port
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            if not HOST_NAME.match(host):
                return None
    if port and not (port.startswith(":") and port[1:].isdigit() and len(port) <= 6):
        return None
    return host


class EdgeMiddleware:
    """ASGI middleware: refuses untrusted ``Host`` headers; sets the answers' common headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: TrustedHosts,
        https: bool,
        trusted_proxies: Sequence[ProxyNetwork] = (),
    ) -> None:
        """``https``: the public URL is https (every answer gets HSTS). ``trusted_proxies``
        only name the client of a refused request in its log line."""
        self._app = app
        self._hosts = hosts
        self._https = https
        self._proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        given = Headers(scope=scope).getlist("host")
        host = host_name(given[0]) if len(given) == 1 else None
        if host is None or not self._hosts.allows(host):
            log.warning(
                "%s %s: refused: Host %r is not a trusted host (client %s)",
                scope["method"],
                scope["path"],
                ", ".join(given)[:_LOGGED_HOST],
                client_address(scope, self._proxies),
            )
            await _refusal(scope["path"])(scope, receive, self._marking(send))
            return
        static = scope["path"].startswith(STATIC)
        origin = f"{scope.get('scheme', 'http')}://{given[0]}".lower()
        await self._app(scope, receive, self._marking(send, origin, static=static))

    def _marking(self, send: Send, origin: str = "", *, static: bool = False) -> Send:
        """``send`` with the common headers added to the answer (no Cache-Control on a static
        file's), a Location under ``origin`` made relative."""

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ANSWER_HEADERS.items():
                    if name not in headers and not (static and name == "Cache-Control"):
                        headers[name] = value
                if self._https and "Strict-Transport-Security" not in headers:
                    headers["Strict-Transport-Security"] = HSTS
                location = headers.get("location")
                if location is not None and origin:
                    relative = relative_location(location, origin)
                    if relative != location:
                        headers["Location"] = relative
            await send(message)

        return marked


def relative_location(location: str, origin: str) -> str:
    """``location`` without ``origin`` (``scheme://host[:port]``, lower case) when it starts
    with it; kept whole otherwise, and when the rest would read as another host
    (``//evil.example``)."""
    if not location.lower().startswith(origin):
        return location
    rest = location[len(origin) :]
    if rest == "" or rest[0] in "?#":
        return "/" + rest
    if rest[0] != "/" or rest[1:2] in ("/", "\\"):
        return location
    return rest


def _refusal(path: str) -> Response:
    if path == PAGES or path.startswith(PAGES + "/"):
        page = HTMLResponse(_REFUSED_PAGE, status_code=400)
        page.headers["Content-Security-Policy"] = "default-src 'none'"
        return page
    return JSONResponse({"detail": _REFUSED}, status_code=400)


def client_address(scope: Scope, trusted_proxies: Sequence[ProxyNetwork]) -> str:
    """The client's address: the connection's peer; when the peer is a trusted proxy, the
    rightmost ``X-Forwarded-For`` entry that is not one itself (the proxies append, so what is
    left of a trusted hop's entry is only what that hop was told). An entry that is not an IP
    address stops the walk: the last trusted hop is the client then, never the client's
    string. Addresses as ``ipaddress`` writes them (an IPv4-mapped IPv6 one as IPv4); a peer
    that is no address (a test client's name) as it is; ``UNKNOWN_CLIENT`` without one."""
    peer = scope.get("client")
    if not peer:
        return UNKNOWN_CLIENT
    found = _address(str(peer[0]))
    if found is None:
        return str(peer[0])
    if not _trusted(found, trusted_proxies):
        return str(found)
    for entry in reversed(_forwarded_for(scope)):
        hop = _address(entry)
        if hop is None:
            break
        found = hop
        if not _trusted(hop, trusted_proxies):
            break
    return str(found)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[ProxyNetwork]) -> bool:
    return any(address in network for network in proxies)


def _forwarded_for(scope: Scope) -> list[str]:
    """Every ``X-Forwarded-For`` entry, the headers' in the order they came."""
    values = Headers(scope=scope).getlist("x-forwarded-for")
    return [entry for value in values for entry in value.split(",")]
