"""Worker processes share each org's rate limit per API: the sandbox never sees it exceeded,
and two orgs' limits are their own (the sandbox limits each credential, as the real APIs do)."""

from __future__ import annotations

import uuid

import pytest

from loyalty_worker.adapters.firestore import SETTINGS
from loyalty_worker.progress import watch_run
from tests.fixtures.pipeline import running_stack

pytestmark = pytest.mark.integration

LIMIT = 40
DATA_APIS = ("alleaves", "alpine")


def test_two_workers_stay_under_the_apis_limit(
    firestore_emulator: str, test_redis_url: str
) -> None:
    with running_stack(
        firestore_emulator,
        "--customers",
        "400",
        "--seed",
        "5",
        "--rate-limit",
        str(LIMIT),
        workers=2,
        redis_url=test_redis_url,
        worker_env={
            "LOYALTY_ALLEAVES_RATE_LIMIT": str(LIMIT),
            "LOYALTY_ALPINE_RATE_LIMIT": str(LIMIT),
            # every customer looked up alone: many Alpine IQ calls from both processes at once
            "LOYALTY_SYNC_CHUNK_SIZE": "5",
        },
    ) as stack:
        stack.sandbox.reset_stats()
        progress = stack.run("org-1", timeout_s=300)
        assert progress.status == "completed"
        assert progress.summary is not None
        assert progress.summary["failed"] == 0
        stats = stack.sandbox.stats()
        for api in DATA_APIS:
            assert stats[api]["rate_limited"] == 0, stats
            assert 0 < stats[api]["max_per_second"] <= LIMIT, stats


ORG_LIMIT = 20


def test_two_orgs_each_get_their_own_limit(firestore_emulator: str, test_redis_url: str) -> None:
    with running_stack(
        firestore_emulator,
        "--customers",
        "300",
        "--seed",
        "6",
        "--rate-limit",
        str(ORG_LIMIT),
        workers=2,
        redis_url=test_redis_url,
        worker_env={
            # Far above the sandbox's limit: the orgs' own settings must be what holds them.
            "LOYALTY_ALLEAVES_RATE_LIMIT": "1000",
            "LOYALTY_ALPINE_RATE_LIMIT": "1000",
            "LOYALTY_SYNC_CHUNK_SIZE": "5",
        },
    ) as stack:
        orgs = ("org-1", "org-2")
        for org_id in orgs:
            stack.firestore.collection(SETTINGS).document(org_id).update(
                {"alleavesRateLimit": ORG_LIMIT, "alpineRateLimit": ORG_LIMIT}
            )
        stack.sandbox.reset_stats()
        runs = {org_id: f"test-{uuid.uuid4().hex[:10]}" for org_id in orgs}
        for org_id, run_id in runs.items():  # both at once: their calls overlap
            stack.celery.send_task("loyalty.sync_org", args=[org_id], kwargs={"run_id": run_id})
        for org_id, run_id in runs.items():
            progress = watch_run(stack.tracker, run_id, timeout_s=300)
            assert progress.status == "completed", org_id
            assert progress.summary is not None
            assert progress.summary["failed"] == 0, org_id
        stats = stack.sandbox.stats()
        for api in DATA_APIS:
            # Each org stayed within its own limit, never refused...
            assert stats[api]["rate_limited"] == 0, stats
            assert 0 < stats[api]["max_per_second_per_credential"] <= ORG_LIMIT, stats
        # ...while together they went past one org's limit: neither waited for the other.
        # (Alleaves: both orgs read their whole order history at once.)
        assert stats["alleaves"]["max_per_second"] > ORG_LIMIT, stats
