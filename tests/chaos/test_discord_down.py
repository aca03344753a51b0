"""The Discord webhook answers 503 to every call for the whole run.

A Discord outage does not fail the run: the alert is tried within the HTTP retry policy
(``LOYALTY_HTTP_MAX_ATTEMPTS`` attempts), then given up, and the summary records it
(``alert.sent`` false, with the error). Every customer is synced all the same, and Discord
received no post.
"""

from __future__ import annotations

import pytest

from tests.chaos.helpers import check_run, report, trigger, wait_final
from tests.fixtures.pipeline import running_stack

pytestmark = pytest.mark.chaos

MAX_ATTEMPTS = 3


def test_a_discord_outage_leaves_the_run_completed_and_the_failed_alert_recorded(
    firestore_emulator: str, test_redis_url: str
) -> None:
    with running_stack(
        firestore_emulator,
        *("--customers", "200", "--seed", "61", "--orgs", "1"),
        redis_url=test_redis_url,
        worker_env={"LOYALTY_HTTP_MAX_ATTEMPTS": str(MAX_ATTEMPTS)},
    ) as stack:
        stack.sandbox.set_faults(discord_status=503)
        run_id, _ = trigger(stack, "org-1")
        wait_final(stack, run_id, timeout_s=180)

        outcome = check_run(stack, run_id, allowed_failures=(), alert_sent=False)
        assert outcome.synced + outcome.unchanged == outcome.listed == 200
        assert "503" in outcome.summary["alert"]["error"], outcome.summary["alert"]
        discord = stack.sandbox.stats()["discord"]
        assert discord["server_errors"] == discord["requests"], discord
        assert 1 <= discord["requests"] <= MAX_ATTEMPTS, discord
        report(
            "6 Discord down",
            outcome,
            webhook_attempts=discord["requests"],
        )
