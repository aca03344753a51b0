"""Two worker processes share one rate limit per API: the sandbox never sees it exceeded."""

from __future__ import annotations

import pytest

from tests.fixtures.pipeline import running_stack

pytestmark = pytest.mark.integration

LIMIT = 40


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
        for api in ("alleaves", "alpine"):
            assert stats[api]["rate_limited"] == 0, stats
            assert 0 < stats[api]["max_per_second"] <= LIMIT, stats
