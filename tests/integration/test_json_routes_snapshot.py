"""Every JSON route answers as it did: the same calls over the demo's data, the same answers.

``tests/snapshots/demo_firestore.json`` holds the Firestore documents a demo left (two full runs
of ``loyalty-worker demo --exit --customers 150`` on 2026-12-04: profiles with their history, the
orgs' settings, the run summaries). They are loaded into the emulator, the API is built over the
real Firestore stores, and a fixed sequence of calls (every JSON route; the review changes in
between, so the lists after them show their effect) is answered on a fixed clock. The answers
must equal ``tests/snapshots/json_routes.json``: a restructuring that changes what any route
answers fails here. ``LOYALTY_UPDATE_SNAPSHOT=1`` writes the answers instead (only when an
answer is meant to change; the diff is then the change to review).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from google.cloud import firestore

from loyalty_worker.adapters.dashboard_store import FirestoreDashboardStore
from loyalty_worker.adapters.firestore import FirestoreProfileStore
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.api.app import ApiServices, DashboardServices, create_app
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.sandbox.data import generate_dataset
from tests.fakes import FakeAlpine, RecordingEnqueuer, RecordingRunTriggers, StaticTaskOutcomes

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "The anyio.abc.BlockingPortal alias", DeprecationWarning)
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

SNAPSHOTS = Path(__file__).parent.parent / "snapshots"
DOCUMENTS = SNAPSHOTS / "demo_firestore.json"
ANSWERS = SNAPSHOTS / "json_routes.json"
# The demo's dataset: its customers, seed and day (Alpine IQ's contacts for the look-up).
DEMO_CUSTOMERS, DEMO_SEED, DEMO_DAY = 150, 1, date(2026, 12, 4)
TOKEN = "snapshot-caller-Wq4Rt8Yp2Lk6"
PHONE_KEY = b"snapshot-phone-key-Zx3Cv5Bn7"
NOW = 1_796_500_000.0  # 2026-12-05 19:06 UTC: a day after the demo's runs
ORG = "/api/loyalty/orgs/org-1"
BASE = "http://127.0.0.1"


def _decoded(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$datetime"}:
            return datetime.fromisoformat(value["$datetime"])
        return {key: _decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    return value


def load_documents(client: firestore.Client) -> None:
    documents: dict[str, Any] = json.loads(DOCUMENTS.read_text())
    batch = client.batch()
    for count, (path, document) in enumerate(sorted(documents.items()), 1):
        batch.set(client.document(path), _decoded(document))
        if count % 400 == 0:
            batch.commit()
            batch = client.batch()
    batch.commit()


@pytest.fixture
def api(firestore_client: firestore.Client) -> Iterator[TestClient]:
    load_documents(firestore_client)
    dataset = generate_dataset(DEMO_CUSTOMERS, DEMO_SEED, as_of=DEMO_DAY)
    contacts = dataset["orgs"][0]["alpineContacts"]
    redis = fakeredis.FakeRedis()
    tracker = RunTracker(redis)
    run_ids = iter(f"org-1-snapshot-run-{n}" for n in range(1, 100))
    services = ApiServices(
        store=FirestoreProfileStore(firestore_client),
        tracker=tracker,
        enqueuer=RecordingEnqueuer(),
        redis=redis,
        alpine_for=lambda org: FakeAlpine.from_contacts(contacts),
        phone_key=PHONE_KEY,
        clock=lambda: NOW,
        new_run_id=lambda org_id: next(run_ids),
    )
    tasks = StaticTaskOutcomes()
    tasks.outcomes["task-1"] = {
        "state": "SUCCESS",
        "result": {
            "orgId": "org-1",
            "status": "synced",
            "displayed": {"points": 70, "tier": "bronze", "tierSource": "alpine_iq"},
            "reconciliation": {"status": "alpine_higher", "discrepancy": 14},
        },
    }
    dashboard = DashboardServices(
        store=FirestoreDashboardStore(firestore_client),
        tasks=tasks,
        triggers=RecordingRunTriggers(),
        nightly_hour=2,
        clock=lambda: NOW,
    )
    settings = ApiSettings(tokens={TOKEN: ["*"]})
    # A host the app trusts by default (``api.edge``).
    with TestClient(create_app(services, settings, dashboard), base_url=BASE) as client:
        yield client


# Families whose values are times (the look-up's, an org's first sight): shown without them.
_TIMED = re.compile(
    r"^(loyalty_lookup_duration_seconds\S*|loyalty_\w+_timestamp_seconds\S*) \S+$", re.M
)


def _steady_metrics(text: str) -> str:
    return _TIMED.sub(r"\1 <time>", text)


class Recorder:
    """Makes the calls and keeps each answer: status, and the body as JSON or text."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.answers: list[dict[str, Any]] = []

    def call(self, method: str, url: str, body: Any = None) -> Any:
        answer = self.client.request(
            method, url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        kind = answer.headers.get("content-type", "")
        shown = answer.json() if kind.startswith("application/json") else answer.text
        if url == "/metrics":
            shown = _steady_metrics(shown)
        self.answers.append(
            {"call": f"{method} {url}", "status": answer.status_code, "body": shown}
        )
        return shown

    def pages(self, url: str) -> None:
        """A list read page by page to its end along ``next``, then one step back."""
        page = self.call("GET", url)
        separator = "&" if "?" in url else "?"
        last = None
        while page.get("next"):
            last = page
            page = self.call("GET", f"{url}{separator}cursor={page['next']}")
        if last is not None and page.get("prev"):
            self.call("GET", f"{url}{separator}cursor={page['prev']}")


def ids_of(page: Any) -> list[int]:
    return [int(item["customerId"]) for item in page["items"]]


def script(r: Recorder, documents: firestore.Client) -> None:
    """The calls, in order: reads, review changes, the reads again, syncs that change reviewed
    customers (written as a sync writes them) and the reads that settle their reviews, actions."""
    overview = r.call("GET", f"{ORG}/overview")
    r.call("GET", f"{ORG}/trends")
    for row in overview["runs"]:
        r.call("GET", f"{ORG}/runs/{row['runId']}")
        r.call("GET", f"/api/loyalty/runs/{row['runId']}")
    r.call("GET", f"{ORG}/runs/org-1-unknown-run")
    first = r.call("GET", f"{ORG}/discrepancies")
    for query in (
        "status=alpine_higher",
        "status=calculated_higher",
        "tier=silver",
        "tier=bronze&status=alpine_higher",
        "sort=age",
        "state=all",
        "state=all&sort=age&tier=bronze",
    ):
        r.call("GET", f"{ORG}/discrepancies?{query}")
    r.pages(f"{ORG}/discrepancies?pageSize=7")
    r.pages(f"{ORG}/discrepancies?pageSize=6&sort=age&state=all")
    r.call("GET", f"{ORG}/discrepancies.csv")
    r.call("GET", f"{ORG}/discrepancies.csv?status=calculated_higher&sort=age")

    a, b, c, d = ids_of(first)[:4]
    review = f"{ORG}/discrepancies/{{}}/review"
    r.call("POST", review.format(a), {"to": "acknowledged"})
    r.call("POST", review.format(b), {"to": "resolved", "outcome": "fixed", "comment": "ok"})
    r.call("POST", review.format(c), {"to": "resolved", "outcome": "expected"})
    r.call("POST", review.format(c), {"to": "resolved", "outcome": "expected", "comment": "x"})
    r.call("POST", review.format(a), {"to": "open"})
    r.call("POST", review.format(d), {"to": "acknowledged"})
    r.call("POST", review.format(d), {"to": "acknowledged"})
    r.call("POST", review.format(999999999), {"to": "acknowledged"})
    # Bulk: one audit entry each, all or none (b is resolved: nothing acknowledged); undo: the
    # latest change only (a's first change is not its latest any more).
    e, f = ids_of(first)[4:6]
    bulk, undo = f"{ORG}/discrepancies/bulk-review", f"{ORG}/discrepancies/undo"
    resolve = {"to": "resolved", "outcome": "no_action", "comment": "within tolerance"}
    r.call("POST", bulk, {"customerIds": [e, f], **resolve})
    r.call("POST", bulk, {"customerIds": [e, b], "to": "acknowledged"})
    r.call("POST", undo, {"changes": [{"customerId": f, "entryId": "000001"}]})
    r.call("POST", undo, {"changes": [{"customerId": a, "entryId": "000001"}]})
    for state in ("open", "acknowledged", "resolved", "all"):
        r.call("GET", f"{ORG}/discrepancies?state={state}")
    r.call("GET", f"{ORG}/discrepancies.csv?state=resolved")

    # A later sync finds d's gap changed (its acknowledgement no longer holds) and a's sources
    # agreeing (its open review resolves itself as matched): the lists read next settle both.
    profile = "customers/org-1_{}"
    changed = documents.document(profile.format(d)).get().to_dict() or {}
    documents.document(profile.format(d)).update(
        {"loyaltyDiscrepancy": int(changed["loyaltyDiscrepancy"]) + 10}
    )
    documents.document(profile.format(a)).update(
        {"loyaltyStatus": "matched", "loyaltyReconciled": True, "loyaltyDiscrepancy": 0}
    )
    for state in ("acknowledged", "open", "resolved", "all"):
        r.call("GET", f"{ORG}/discrepancies?state={state}")
    for customer_id in (a, d):
        r.call("GET", f"{ORG}/customers/{customer_id}/history")
    r.pages(f"{ORG}/customers/{a}/history?pageSize=1")  # the audit, an entry a page

    r.pages(f"{ORG}/no-account?pageSize=10")
    r.call("GET", f"{ORG}/no-account.csv")

    no_account = r.call("GET", f"{ORG}/no-account")
    shown = [a, b, c, d, ids_of(no_account)[0], 1005166, 1005175]
    for customer_id in shown:
        r.call("GET", f"{ORG}/customers/{customer_id}")
        r.call("GET", f"{ORG}/customers/{customer_id}/history")
    r.call("GET", f"{ORG}/customers/999999999")
    for query in ("1005166", "Amelia Allen", "amelia allen", "Reyes", "luca", "3102165475", "zz"):
        r.call("GET", f"{ORG}/customers?q={query}")

    r.call("POST", f"{ORG}/customers/{a}/sync")
    r.call("GET", f"{ORG}/tasks/task-1")
    r.call("GET", f"{ORG}/tasks/task-unknown")
    for kind in ("full", "incremental", "dry"):
        r.call("POST", f"{ORG}/runs", {"kind": kind})
    r.call("POST", "/api/loyalty/sync", {"orgId": "org-2"})
    r.call("GET", "/api/loyalty/orgs/org-2/overview")
    r.call("GET", "/api/loyalty/orgs/org-9/overview")
    for phone in ("(310) 216-5475", "4155576373", "555"):
        r.call("GET", f"/api/loyalty/points?orgId=org-1&phone={phone}")
    r.call("GET", "/healthz")
    r.call("GET", "/metrics")


def test_every_json_route_answers_as_the_snapshot_says(
    api: TestClient, firestore_client: firestore.Client
) -> None:
    recorder = Recorder(api)
    script(recorder, firestore_client)
    answers = recorder.answers
    if os.environ.get("LOYALTY_UPDATE_SNAPSHOT") == "1":
        ANSWERS.write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")
    expected = json.loads(ANSWERS.read_text())
    assert [a["call"] for a in answers] == [e["call"] for e in expected]
    for answer, wanted in zip(answers, expected, strict=True):
        assert answer == wanted, answer["call"]
