"""The API's edge (``api.edge``): untrusted ``Host`` headers refused before anything else, the
headers every answer carries, the public URL the app reads once, and who the client is."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from pydantic import ValidationError

from loyalty_worker.api.edge import (
    HSTS,
    UNKNOWN_CLIENT,
    TrustedHosts,
    client_address,
    host_name,
    relative_location,
)
from loyalty_worker.api.settings import ApiSettings, ProxyNetwork
from loyalty_worker.domain.access import Role
from loyalty_worker.domain.run import RunStatus
from tests.fake_people import member
from tests.unit.test_api import ADMIN_TOKEN, ORG1_TOKEN, Api, assemble_api, auth, build_api

PUBLIC = "https://loyalty.example.com"
EVIL = "evil.example"
# Every answer but a static file's carries these (``edge.ANSWER_HEADERS``).
COMMON = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name in (
        "LOYALTY_API_TOKENS",
        "LOYALTY_API_WEBHOOK_SECRETS",
        "LOYALTY_API_TRUSTED_HOSTS",
        "LOYALTY_API_TRUSTED_PROXIES",
    ):
        monkeypatch.delenv(name, raising=False)
    with build_api() as built:
        yield built


def raw_call(api: Api, headers: list[tuple[bytes, bytes]], path: str = "/healthz") -> int:
    """``GET path`` straight to the ASGI app with exactly ``headers``; the answer's status."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    asyncio.run(asyncio.wait_for(api.client.app(scope, receive, send), 10))
    return status


# --- Host: refused before anything else ---------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/",
        "/dashboard",
        "/dashboard/sign-in",
        "/api/loyalty/runs/org-1-run-1",
        "/healthz",
        "/metrics",
        "/dashboard/static/dashboard.css",
        "/no-such-route/",
    ],
)
def test_an_untrusted_host_is_refused_with_400_and_no_redirect_names_it(
    api: Api, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    answer = api.client.get(
        path, headers={"host": EVIL, **auth(ORG1_TOKEN)}, follow_redirects=False
    )
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert EVIL not in answer.text
    assert all(EVIL not in value for value in answer.headers.values())
    if path.startswith("/dashboard"):
        assert answer.headers["content-type"].startswith("text/html")
        assert "Unknown host" in answer.text
    else:
        assert answer.json() == {"detail": "This server does not answer to that host name."}
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert "refused: Host 'evil.example' is not a trusted host" in caplog.text


def test_a_refused_host_reaches_no_route(api: Api) -> None:
    answer = api.client.post(
        "/api/loyalty/sync", json={"orgId": "org-1"}, headers={"host": EVIL, **auth(ORG1_TOKEN)}
    )
    assert answer.status_code == 400
    assert api.enqueuer.org_runs == []


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8000", "localhost:8000", "[::1]:8000"])
def test_a_trusted_host_passes_its_port_aside(api: Api, host: str) -> None:
    answer = api.client.get("/healthz", headers={"host": host})
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_the_slash_redirect_stays_on_the_address_the_browser_used(api: Api) -> None:
    # Built from the Host header by the framework: made relative, so a reverse proxy that
    # forwards ``Host: 127.0.0.1:8000`` never sends a user there.
    answer = api.client.get(
        "/dashboard/", headers={"host": "127.0.0.1:8000"}, follow_redirects=False
    )
    assert answer.status_code == 307
    assert answer.headers["location"] == "/dashboard"
    query = api.client.get("/dashboard/?x=1", follow_redirects=False)
    assert query.headers["location"] == "/dashboard?x=1"


@pytest.mark.parametrize(
    ("location", "relative"),
    [
        ("http://127.0.0.1:8000/dashboard", "/dashboard"),
        ("HTTP://127.0.0.1:8000/dashboard?x=1", "/dashboard?x=1"),
        ("http://127.0.0.1:8000", "/"),
        ("http://127.0.0.1:8000?x=1", "/?x=1"),
        ("/dashboard", "/dashboard"),
        # Not the request's own origin: left as it is.
        ("http://127.0.0.1:80001/x", "http://127.0.0.1:80001/x"),
        ("https://127.0.0.1:8000/x", "https://127.0.0.1:8000/x"),
        ("http://127.0.0.1:8000.evil.example/x", "http://127.0.0.1:8000.evil.example/x"),
        # The rest would read as another host: kept absolute.
        ("http://127.0.0.1:8000//evil.example", "http://127.0.0.1:8000//evil.example"),
        ("http://127.0.0.1:8000/\\evil.example", "http://127.0.0.1:8000/\\evil.example"),
    ],
)
def test_only_a_location_on_the_requests_own_origin_is_made_relative(
    location: str, relative: str
) -> None:
    assert relative_location(location, "http://127.0.0.1:8000") == relative


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:80@evil.example",  # read as http://127.0.0.1:80@evil.example/ by a URL parser
        "127.0.0.1:abc",
        "127.0.0.1:8000:1",
        "127.0.0.1/evil.example",
        "localhost#.evil.example",
        "[::1",
        "[evil.example]",
        "::1",
        "",
    ],
)
def test_a_malformed_host_header_is_refused(api: Api, host: str) -> None:
    assert raw_call(api, [(b"host", host.encode())]) == 400


def test_no_host_header_or_two_of_them_is_refused(api: Api) -> None:
    assert raw_call(api, []) == 400
    assert raw_call(api, [(b"host", b"127.0.0.1"), (b"host", b"evil.example")]) == 400
    assert raw_call(api, [(b"host", b"127.0.0.1")]) == 200


def test_configured_hosts_and_wildcards_replace_loopback_but_keep_the_public_host() -> None:
    with build_api(
        public_url=PUBLIC,
        base_url=PUBLIC,
        trusted_hosts=["api.internal", "*.example.org"],
    ) as api:
        for ok in ("loyalty.example.com", "api.internal:8000", "a.example.org", "b.a.example.org"):
            assert api.client.get("/healthz", headers={"host": ok}).status_code == 200, ok
        for refused in ("example.org", "evilexample.org", "127.0.0.1", "localhost", EVIL):
            assert api.client.get("/healthz", headers={"host": refused}).status_code == 400


def test_trusted_hosts_are_read_from_the_environment_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOYALTY_API_TRUSTED_HOSTS", '["Loyalty.Example.com", "[::1]", "*.a.io"]')
    monkeypatch.setenv("LOYALTY_API_TRUSTED_PROXIES", '["10.0.0.1", "10.1.0.0/16", "fd00::/8"]')
    settings = ApiSettings()
    assert settings.trusted_hosts == ("loyalty.example.com", "::1", "*.a.io")
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
    )
    for bad in ("*", "a.io:443", "https://a.io", "a.io/x", "", "a b"):
        with pytest.raises(ValidationError, match="trusted host"):
            ApiSettings(trusted_hosts=[bad])
    for bad_proxy in ("proxy.internal", "10.0.0.0/33", ""):
        with pytest.raises(ValidationError, match="trusted proxy"):
            ApiSettings(trusted_proxies=[bad_proxy])


def test_the_default_trusted_hosts_are_the_public_host_and_loopback() -> None:
    hosts = TrustedHosts.of((), PUBLIC)
    assert hosts.names == {"loyalty.example.com", "localhost", "127.0.0.1", "::1"}
    assert TrustedHosts.of((), "http://127.0.0.1:8000").names == {"localhost", "127.0.0.1", "::1"}


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("Loyalty.Example.com", "loyalty.example.com"),
        ("loyalty.example.com:443", "loyalty.example.com"),
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[0:0::1]", "::1"),
        ("127.0.0.1:", None),  # a colon and no port
        ("a.example:99999999", None),
        ("a..example", None),
        ("a.example\r\nx", None),
    ],
)
def test_host_name_reads_a_host_header(header: str, host: str | None) -> None:
    assert host_name(header) == host


# --- The headers every answer carries -----------------------------------------------------


def assert_common(headers: Any) -> None:
    for name, value in COMMON.items():
        assert headers.get(name) == value, name


def test_a_json_answer_is_never_cached_nor_sniffed(api: Api) -> None:
    health = api.client.get("/healthz")
    assert health.headers["content-type"] == "application/json"
    assert_common(health.headers)
    api.post("/api/loyalty/sync", {"orgId": "org-1"})
    run = api.get("/api/loyalty/runs/org-1-run-1")
    assert run.json()["status"] == RunStatus.QUEUED
    assert_common(run.headers)
    assert "strict-transport-security" not in run.headers  # the public URL is http


def test_refusals_and_errors_carry_them_too(api: Api) -> None:
    assert_common(api.get("/api/loyalty/runs/org-1-run-1", token=None).headers)  # 401 (guard)
    assert_common(api.get("/api/loyalty/runs/nope").headers)  # 404
    assert_common(api.client.get("/api/loyalty/points").headers)  # 401


def test_a_csv_answer_is_never_cached_nor_sniffed(api: Api) -> None:
    answer = api.get("/api/loyalty/orgs/org-1/discrepancies.csv", token=ADMIN_TOKEN)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert_common(answer.headers)


def test_a_page_and_a_redirect_are_never_cached_and_keep_the_page_policy(api: Api) -> None:
    page = api.client.get("/dashboard/sign-in")
    assert page.status_code == 200
    assert_common(page.headers)
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    stranger = api.client.get("/dashboard/orgs/org-1", follow_redirects=False)
    assert stranger.status_code == 303
    assert_common(stranger.headers)


def test_static_files_may_be_cached_but_not_sniffed(api: Api) -> None:
    answer = api.client.get("/dashboard/static/dashboard.css")
    assert answer.status_code == 200
    assert "no-store" not in answer.headers.get("cache-control", "")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "etag" in answer.headers


def test_hsts_only_when_the_public_url_is_https() -> None:
    with build_api(public_url=PUBLIC, base_url=PUBLIC) as api:
        answer = api.client.get("/healthz")
        assert answer.headers["strict-transport-security"] == HSTS
        assert_common(answer.headers)
        static = api.client.get("/dashboard/static/dashboard.css")
        assert static.headers["strict-transport-security"] == HSTS
        assert api.client.app.state.api.https  # type: ignore[attr-defined]
    with build_api(
        public_url="http://loyalty.example.com", base_url="http://loyalty.example.com"
    ) as api:
        assert "strict-transport-security" not in api.client.get("/healthz").headers
        assert not api.client.app.state.api.https  # type: ignore[attr-defined]


# --- The public URL, read once ------------------------------------------------------------


def test_the_app_keeps_its_public_url_as_scheme_and_host() -> None:
    app = assemble_api(public_url=PUBLIC + "/").client.app
    assert app.state.api.public_url == PUBLIC  # type: ignore[attr-defined]
    default = assemble_api().client.app
    assert default.state.api.public_url == "http://127.0.0.1:8000"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    ["loyalty.example.com", "ftp://loyalty.example.com", PUBLIC + "/dashboard", PUBLIC + "?a"],
)
def test_an_app_refuses_a_public_url_that_is_no_base_url(url: str) -> None:
    with pytest.raises(ValueError, match="must"):
        assemble_api(public_url=url)


def test_the_run_page_links_under_the_apps_public_url() -> None:
    with build_api(public_url=PUBLIC, base_url=PUBLIC) as api:
        api.store.run_summaries["org-1-run-7"] = {
            "orgId": "org-1",
            "status": "completed",
            "startedAt": 1_799_990_000.0,
        }
        people = api.client.app.state.dashboard  # type: ignore[attr-defined]
        account = people.accounts.add("ana@example.com")
        people.members.put_member(member("org-1", account, Role.VIEWER))
        form = api.client.get("/dashboard/sign-in")
        csrf = re.search(r'name="csrf" value="([A-Za-z0-9_-]+)"', form.text)
        assert csrf is not None
        signed = api.client.post(
            "/dashboard/sign-in",
            data={"idToken": people.accounts.token_for(account), "csrf": csrf.group(1)},
            follow_redirects=False,
        )
        assert signed.status_code == 303, signed.text
        page = api.client.get("/dashboard/orgs/org-1/runs/org-1-run-7")
        assert page.status_code == 200, page.text
        assert f'href="{PUBLIC}/dashboard/orgs/org-1/runs/org-1-run-7"' in page.text


# --- client_address -----------------------------------------------------------------------


def scope_from(peer: str | None, *forwarded: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {
        "type": "http",
        "headers": headers,
        "client": None if peer is None else (peer, 50000),
    }


def networks(*entries: str) -> tuple[ProxyNetwork, ...]:
    return ApiSettings(trusted_proxies=list(entries)).trusted_proxies


PROXIES = networks("10.0.0.0/8", "192.0.2.7", "fd00::/8")


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() -> None:
    assert client_address(scope_from("203.0.113.5"), ()) == "203.0.113.5"
    assert client_address(scope_from("203.0.113.5", "198.51.100.1"), ()) == "203.0.113.5"
    assert client_address(scope_from("10.0.0.2", "198.51.100.1"), ()) == "10.0.0.2"


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    spoofed = scope_from("203.0.113.5", "10.0.0.1, 198.51.100.1")
    assert client_address(spoofed, PROXIES) == "203.0.113.5"


def test_behind_a_trusted_proxy_the_client_is_the_address_it_forwards() -> None:
    assert client_address(scope_from("10.0.0.2", "198.51.100.1"), PROXIES) == "198.51.100.1"
    assert client_address(scope_from("192.0.2.7", " 198.51.100.1 "), PROXIES) == "198.51.100.1"
    # No header: the proxy itself.
    assert client_address(scope_from("10.0.0.2"), PROXIES) == "10.0.0.2"


def test_a_chain_is_walked_from_the_right_past_trusted_proxies_only() -> None:
    # The client wrote "1.1.1.1" itself; the first proxy appended what it saw, 198.51.100.1.
    chain = scope_from("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.0.0.9")
    assert client_address(chain, PROXIES) == "198.51.100.1"
    # Two headers are one list, in order.
    split = scope_from("10.0.0.2", "1.1.1.1, 198.51.100.1", "10.0.0.9")
    assert client_address(split, PROXIES) == "198.51.100.1"
    # Every hop a proxy: the leftmost, still an address a proxy wrote.
    assert client_address(scope_from("10.0.0.2", "10.0.0.3, 10.0.0.4"), PROXIES) == "10.0.0.3"


def test_ipv6_peers_and_entries() -> None:
    assert client_address(scope_from("fd00::1", "2001:db8::7"), PROXIES) == "2001:db8::7"
    assert client_address(scope_from("2001:db8::9", "198.51.100.1"), PROXIES) == "2001:db8::9"
    # An IPv4-mapped peer is its IPv4 address, trusted as such.
    assert client_address(scope_from("::ffff:10.0.0.2", "198.51.100.1"), PROXIES) == "198.51.100.1"
    assert client_address(scope_from("fd00::1", "2001:DB8:0::7"), PROXIES) == "2001:db8::7"


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("evil<script>", "10.0.0.2"),
        ("198.51.100.1, not-an-ip", "10.0.0.2"),
        ("198.51.100.1, 10.0.0.9, unknown", "10.0.0.2"),
        ("not-an-ip, 10.0.0.9", "10.0.0.9"),  # the walk stops at the last trusted hop
        ("198.51.100.1:4711", "10.0.0.2"),  # a port: not an address
        ("198.51.100.1,", "10.0.0.2"),  # an empty entry
        ("", "10.0.0.2"),
    ],
)
def test_a_malformed_entry_stops_the_walk_at_the_last_trusted_hop(
    forwarded: str, client: str
) -> None:
    assert client_address(scope_from("10.0.0.2", forwarded), PROXIES) == client


def test_a_peer_without_an_address() -> None:
    assert client_address(scope_from(None, "198.51.100.1"), PROXIES) == UNKNOWN_CLIENT
    assert client_address(scope_from("testclient", "198.51.100.1"), PROXIES) == "testclient"
