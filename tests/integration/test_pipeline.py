"""The main job on real parts: a Celery worker process, Redis, the sandbox, the emulator."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from loyalty_worker.progress import watch_run
from tests.fixtures.pipeline import WEBHOOK_TOKEN, Stack, wait_for
from tests.reference import LOYALTY_KEYS, expected_profiles

pytestmark = pytest.mark.integration


def check_profiles(stack: Stack, org_id: str, org: dict[str, Any] | None = None) -> int:
    """Every profile equals what the rules give for ``org`` (default: the seeded dataset)."""
    org = org or stack.org(org_id)
    expected = expected_profiles(org)
    seeded = {p["customerId"]: p for p in org["profiles"]}
    codes = {c["id_customer"]: c.get("alpine_user_code") for c in org["customers"]}
    for cid, want in expected.items():
        got = stack.profile(org_id, cid)
        assert got is not None, f"customer {cid} has no profile"
        assert {k: got.get(k) for k in LOYALTY_KEYS} == want, f"customer {cid}"
        assert got["orgId"] == org_id
        assert got["alleavesCustomerId"] == cid
        assert got.get("alpineUserId") == (codes[cid] or None)
        assert got.get("pointsLastCalculated") is not None
        for name, value in seeded.get(cid, {}).items():  # Markitbot's own fields untouched
            if name != "customerId":
                assert got[name] == value, f"customer {cid}: {name} clobbered"
    return len(expected)


def test_full_run_writes_the_rules_profiles_and_one_alert(stack: Stack) -> None:
    org = stack.org("org-1")
    before = len(stack.messages())
    progress = stack.run("org-1")
    summary = progress.summary
    assert progress.status == "completed", progress
    assert summary is not None
    assert summary["listed"] == len(org["customers"]) == 300
    assert summary["synced"] + summary["unchanged"] + summary["failed"] == summary["listed"]
    assert summary["failed"] == 0
    assert check_profiles(stack, "org-1") == 300
    # the cases the dataset must contain really were synced
    assert summary["reconciliation"]["no_alpine_account"] > 0
    customers_with_orders = {o.get("id_customer") for o in org["orders"]}
    assert any(c["id_customer"] not in customers_with_orders for c in org["customers"])
    assert len(stack.messages()) == before + 1
    assert stack.firestore.collection("loyalty_sync_runs").document(summary["runId"]).get().exists


def test_second_run_rewrites_nothing(stack: Stack) -> None:
    progress = stack.run("org-1")
    assert progress.summary is not None
    assert progress.summary["unchanged"] == progress.summary["listed"] == 300


def test_concurrent_trigger_starts_no_second_batch(stack: Stack) -> None:
    before = len(stack.messages())
    run_ids = [f"race-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for run_id in run_ids:
        stack.celery.send_task("loyalty.sync_org", args=["org-2"], kwargs={"run_id": run_id})
    ended = [watch_run(stack.tracker, run_id, timeout_s=120) for run_id in run_ids]
    assert sorted(p.status for p in ended) == ["completed", "duplicate"], ended
    duplicate = next(p for p in ended if p.status == "duplicate")
    assert duplicate.summary is None
    assert "already has run" in (duplicate.error or "")
    wait_for(lambda: len(stack.messages()) == before + 1)
    assert stack.tracker.lock_holder("org-2") is None


def test_single_customer_by_task_name_only(stack: Stack) -> None:
    org = stack.org("org-2")
    cid = org["customers"][0]["id_customer"]
    stack.firestore.collection("customers").document(f"org-2_{cid}").update({"points": -1})
    result = stack.celery.send_task("loyalty.sync_customer", args=["org-2", cid]).get(timeout=60)
    assert result["status"] == "synced"
    profile = stack.profile("org-2", cid)
    assert profile is not None
    assert profile["points"] == expected_profiles(org)[cid]["points"]


def test_incremental_runs_give_the_full_rules_after_orders_change(stack: Stack) -> None:
    org = stack.org("org-1")
    a, b, c = (cust["id_customer"] for cust in org["customers"][:3])
    template = copy.deepcopy(org["orders"][0])
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def order(order_id: int, customer: int, status: str, subtotal: str) -> dict[str, Any]:
        return {
            **template,
            "id_order": order_id,
            "id_customer": customer,
            "status": status,
            "subtotal": subtotal,
            "discount": None,
            "date_created": now,
            "date_updated": now,
        }

    stack.sandbox.upsert_orders(
        "org-1", [order(9_000_002, b, "pending", "20"), order(9_000_003, c, "completed", "70")]
    )
    first = stack.run("org-1", since="last").summary
    assert first is not None and first["ordersSince"] != "all"
    assert first["synced"] == 1  # c; b's order is still pending
    # customers without recent orders whose Alpine IQ answer the listing gives (no US phone, or
    # no contact: the documented listing carries no balance, so the others take a look-up) are
    # carried as their last sync left them: profiles not re-read
    assert first["carried"] > 0
    check_profiles(stack, "org-1", stack.sandbox.dataset()["orgs"][0])

    stack.sandbox.upsert_orders(
        "org-1",
        [
            order(9_000_001, a, "completed", "55.25"),  # added
            order(9_000_002, b, "completed", "20"),  # completed
            order(9_000_003, c, "voided", "70"),  # voided
        ],
    )
    stack.sandbox.reset_stats()
    second = stack.run("org-1", since="last").summary
    assert second is not None and second["synced"] == 3
    check_profiles(stack, "org-1", stack.sandbox.dataset()["orgs"][0])
    incremental_calls = stack.sandbox.stats()["alleaves"]["requests"]

    stack.sandbox.reset_stats()
    full = stack.run("org-1").summary
    assert full is not None and full["unchanged"] == full["listed"]  # nothing left to fix
    assert incremental_calls < stack.sandbox.stats()["alleaves"]["requests"]


def test_single_customer_sync_reads_only_recent_orders(stack: Stack) -> None:
    org = stack.sandbox.dataset()["orgs"][0]
    cid = org["customers"][5]["id_customer"]
    stack.firestore.collection("customers").document(f"org-1_{cid}").update({"points": -1})
    stack.sandbox.reset_stats()
    result = stack.celery.send_task("loyalty.sync_customer", args=["org-1", cid]).get(timeout=60)
    assert result["status"] == "synced"
    profile = stack.profile("org-1", cid)
    assert profile is not None
    assert profile["points"] == expected_profiles(org)[cid]["points"]
    # the ledger spares the history: a few recent windows, not years of order pages
    assert stack.sandbox.stats()["alleaves"]["requests"] < 20


def test_worker_logs_hold_no_secret_and_no_phone(stack: Stack) -> None:
    """Runs last in this module: the worker's log holds every run above."""
    output = stack.workers[0].output()
    task_lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line.get("run_id") and line.get("outcome") for line in task_lines)
    forbidden = {WEBHOOK_TOKEN, "eyJ"}
    for org in stack.dataset["orgs"]:
        forbidden |= {org["alleaves"]["password"], org["alpine"]["apiKey"]}
        for customer in org["customers"]:
            digits = re.sub(r"\D", "", customer.get("phone") or "")
            if len(digits) >= 10:
                forbidden.add(digits[-10:])
            if customer.get("phone") and len(customer["phone"]) >= 10:
                forbidden.add(customer["phone"])
    leaked = sorted(secret for secret in forbidden if secret in output)
    assert leaked == []


def _sync_partial(stack: Stack, org_id: str, *selection: str) -> str:
    """``loyalty-worker sync`` as an operator runs it, against the stack; the run's id."""
    done = subprocess.run(
        [sys.executable, "-m", "loyalty_worker.cli", "sync", "--org", org_id, *selection],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "partial" in done.stdout  # the printed summary says so
    found = re.search(r"^\s+run\s+(\S+)$", done.stdout, re.MULTILINE)
    assert found, done.stdout
    return found.group(1)


def test_partial_runs_sync_only_their_customers_and_say_so(stack: Stack) -> None:
    org_id = "org-2"
    org = stack.org(org_id)
    listed = [int(c["id_customer"]) for c in org["customers"]]
    profiles = stack.firestore.collection("customers")
    # Profiles already there are marked (points -1): a run that rewrites one changes it.
    kept = {cid: stack.profile(org_id, cid) for cid in listed}
    for cid, document in kept.items():
        if document is not None:
            profiles.document(f"{org_id}_{cid}").update({"points": -1})
    since_before = stack.tracker.last_success(org_id)
    alerts_before = len(stack.messages())
    named = [listed[-1], listed[len(listed) // 2], listed[7]]
    try:
        first = _sync_partial(stack, org_id, "--limit", "10")
        chosen = _sync_partial(stack, org_id, "--customers", ",".join(map(str, named)))
        summaries = stack.firestore.collection("loyalty_sync_runs")
        for run_id, count, scope in ((first, 10, "first 10"), (chosen, 3, "3 customers")):
            summary = summaries.document(run_id).get().to_dict()
            assert summary is not None
            assert (summary["status"], summary["listed"]) == ("completed", count), summary
            assert (summary["partial"], summary["scope"]) == (True, scope)
            assert summary["synced"] + summary["unchanged"] + summary["failed"] == count
        assert {r.customer_id for r in stack.tracker.iter_results(first)} == set(listed[:10])
        assert {r.customer_id for r in stack.tracker.iter_results(chosen)} == set(named)
        selected = set(listed[:10]) | set(named)
        expected = expected_profiles(org)
        for cid in listed:
            got = stack.profile(org_id, cid)
            if cid in selected:
                assert got is not None and got["points"] == expected[cid]["points"], cid
            else:
                assert got is None or got["points"] == -1, f"customer {cid} was written"
        # Never the org's last full run; each alert says partial.
        assert stack.tracker.last_success(org_id) == since_before
        wait_for(lambda: len(stack.messages()) >= alerts_before + 2)
        posted = [m["payload"]["content"] for m in stack.messages()[alerts_before:]]
        assert posted == [
            "Partial loyalty sync (first 10) completed: org-2",
            "Partial loyalty sync (3 customers) completed: org-2",
        ]
    finally:
        for cid, document in kept.items():
            if document is not None:
                profiles.document(f"{org_id}_{cid}").set(document)
