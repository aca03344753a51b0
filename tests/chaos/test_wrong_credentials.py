"""The org's Alleaves credentials are wrong (its password was changed in Alleaves).

The run stops while it plans, before it enqueues any customer: Alleaves answers the login with
401, which is never retried, so the run ends ``failed`` with one summary and one alert naming
the cause, rather than a thousand customers each failing on their own. No profile is written.
"""

from __future__ import annotations

import json

import pytest

from tests.chaos.helpers import check_run, posts_for, report, trigger, wait_final
from tests.fixtures.pipeline import running_stack

pytestmark = pytest.mark.chaos


def test_wrong_alleaves_credentials_stop_the_run_with_one_clear_alert(
    firestore_emulator: str, test_redis_url: str
) -> None:
    with running_stack(
        firestore_emulator,
        *("--customers", "1000", "--seed", "81", "--orgs", "1"),
        redis_url=test_redis_url,
    ) as stack:
        settings = stack.firestore.collection("loyalty_settings").document("org-1")
        settings.update({"alleaves.password": "not-the-password"})
        run_id, _ = trigger(stack, "org-1")
        progress = wait_final(stack, run_id, timeout_s=120)

        assert progress.status == "failed", progress
        outcome = check_run(stack, run_id, status="failed")
        assert outcome.listed == outcome.failed == 0
        assert outcome.summary["error"].startswith("alleaves_auth:"), outcome.summary
        [post] = posts_for(stack, run_id)
        text = json.dumps(post["payload"])
        assert "Loyalty sync failed" in text and "not authorised (401)" in text, text
        alleaves = stack.sandbox.stats()["alleaves"]
        assert alleaves["logins"] == 0, alleaves
        assert alleaves["requests"] < 1000, alleaves  # no call per customer
        report(
            "8 wrong Alleaves credentials",
            outcome,
            status=outcome.summary["status"],
            alleaves_requests=alleaves["requests"],
        )
