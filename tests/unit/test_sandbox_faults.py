"""The sandbox's fault gate in process: its rate limit counts per credential, and a credential
read from the body leaves the body to the API."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from loyalty_worker.sandbox.faults import ALPINE, ApiStats, FaultGate, Faults, FaultState

with warnings.catch_warnings():
    # Starlette's test client names an anyio alias that anyio 4.16 deprecates (at import only).
    warnings.filterwarnings("ignore", "The anyio.abc.BlockingPortal alias", DeprecationWarning)
    from starlette.testclient import TestClient


async def echo(request: Request) -> Response:
    return JSONResponse({"body": (await request.body()).decode()})


async def credential_in_body(request: Request) -> str:
    """The body's first word, as a login names itself in its body."""
    return (await request.body()).decode().partition(" ")[0]


@pytest.fixture
def state() -> FaultState:
    return FaultState(Faults(rate_limit=2), clock=lambda: 1_000.5)  # one second throughout


@pytest.fixture
def client(state: FaultState) -> Iterator[TestClient]:
    app = Router([Route("/echo", echo, methods=["POST"])])
    gate = FaultGate(app, api=ALPINE, state=state, credential=credential_in_body)
    with TestClient(gate) as test_client:
        yield test_client


def statuses(client: TestClient, body: str, times: int) -> list[int]:
    return [client.post("/echo", content=body).status_code for _ in range(times)]


def test_each_credential_gets_the_whole_limit_in_a_second(
    client: TestClient, state: FaultState
) -> None:
    assert statuses(client, "org-1 page", 3) == [200, 200, 429]
    assert statuses(client, "org-2 page", 3) == [200, 200, 429]  # org-1's spent limit is not its
    assert statuses(client, "org-1 again", 1) == [429]
    stats = state.stats_json()[ALPINE]
    assert stats["requests"] == 7
    assert stats["rate_limited"] == 3
    assert stats["max_per_second"] == 7  # every credential together
    assert stats["max_per_second_per_credential"] == 4  # org-1's, what the limit counts


def test_a_credential_read_from_the_body_leaves_the_body_to_the_api(client: TestClient) -> None:
    response = client.post("/echo", content="org-1 the whole body")
    assert response.json() == {"body": "org-1 the whole body"}
    assert response.headers["X-Sandbox-Second"] == "1000"


def test_a_new_second_starts_every_credential_afresh() -> None:
    stats = ApiStats()
    assert [stats.arrive(10.1, "a")[1] for _ in range(3)] == [1, 2, 3]
    assert stats.arrive(10.9, "b") == (10, 1)
    assert stats.arrive(11.0, "a") == (11, 1)
    assert stats.arrive(11.2, "b") == (11, 1)
    snapshot = stats.as_json()
    assert (snapshot["max_per_second"], snapshot["max_per_second_per_credential"]) == (4, 3)
