"""The sandbox's per-org request counts: each request under the org the imitated API names."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from loyalty_worker.cli import main
from loyalty_worker.sandbox.data import generate_dataset
from loyalty_worker.sandbox.data.records import OrgRecord
from loyalty_worker.sandbox.faults import Faults
from loyalty_worker.sandbox.org_calls import Credentials, OrgCalls
from loyalty_worker.sandbox.server import create_app


def _login(org: OrgRecord) -> dict[str, Any]:
    return {key: org["alleaves"][key] for key in ("username", "password", "pin")}


def _phone(org: OrgRecord) -> str:
    return next(contact["phone"] for contact in org["alpineContacts"])


async def _exercise(faults: Faults) -> list[dict[str, dict[str, int]]]:
    """Requests of two orgs and two strangers; the counts after them, after a fault, after a
    reset."""
    dataset = generate_dataset(12, 4, orgs=2)
    first, second = dataset["orgs"]
    app = create_app(dataset, faults)
    app.add_middleware(OrgCalls, credentials=Credentials(dataset))
    transport = httpx.ASGITransport(app=app)
    seen = []
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        for org, pages in ((first, 3), (second, 1)):
            login = await client.post("/alleaves/auth", json=_login(org))
            assert login.status_code == 200
            bearer = {"Authorization": f"Bearer {login.json()['token']}"}
            for page in range(1, pages + 1):
                search = await client.post(
                    "/alleaves/customer/search", json={"page": page}, headers=bearer
                )
                assert search.status_code == 200
        key = {"X-APIKEY": second["alpine"]["apiKey"]}
        lookup = await client.get(f"/alpine/v2/loyalty/lookup/{_phone(second)}", headers=key)
        assert lookup.status_code == 200
        await client.get(f"/alpine/v2/loyalty/lookup/{_phone(second)}", headers={"X-APIKEY": "x"})
        await client.post("/alleaves/auth", json={"username": "nobody"})
        await client.post("/alleaves/customer/search", json={"page": 1})
        forged = {"Authorization": "Bearer a.b.c"}
        await client.post("/alleaves/customer/search", json={"page": 1}, headers=forged)
        await client.get("/sandbox/stats")  # control routes are nobody's
        seen.append((await client.get("/sandbox/stats/orgs")).json())
        await client.post("/sandbox/faults", json={"error_rate": 1.0})
        await client.get(f"/alpine/v2/loyalty/lookup/{_phone(second)}", headers=key)
        seen.append((await client.get("/sandbox/stats/orgs")).json())
        await client.post("/sandbox/stats/reset")
        seen.append((await client.get("/sandbox/stats/orgs")).json())
    return seen


def test_requests_count_under_the_org_they_name() -> None:
    counted, after_fault, after_reset = asyncio.run(_exercise(Faults()))
    # Strangers: an unknown login, no token, a token naming no org, an unknown API key.
    assert counted == {
        "?": {"alleaves": 3, "alpine": 1},
        "org-1": {"alleaves": 4, "alpine": 0},
        "org-2": {"alleaves": 2, "alpine": 1},
    }
    # A request a fault answers (here a 5xx) counts as /sandbox/stats counts it.
    assert after_fault["org-2"] == {"alleaves": 2, "alpine": 2}
    assert after_reset == {}


async def _status(app: Starlette, path: str) -> int:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        return (await client.get(path)).status_code


def test_the_sandbox_command_counts_by_org_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Starlette] = []
    monkeypatch.setattr("loyalty_worker.sandbox.server.serve", lambda app, **_: served.append(app))
    assert main(["sandbox", "--customers", "5", "--count-calls-by-org"]) == 0
    assert main(["sandbox", "--customers", "5"]) == 0
    counting, plain = served
    assert asyncio.run(_status(counting, "/sandbox/stats/orgs")) == 200
    assert asyncio.run(_status(plain, "/sandbox/stats/orgs")) == 404
