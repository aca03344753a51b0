"""Alerts over the real stack: a dry run posts nothing to the sandbox's Discord, a full run posts
one alert whose links start with ``LOYALTY_PUBLIC_URL``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.pipeline import PHONE_HASH_KEY, Stack, running_stack

pytestmark = pytest.mark.integration

PUBLIC = "https://loyalty.example.test"


@pytest.fixture(scope="module")
def stack(firestore_emulator: str, test_redis_url: str) -> Iterator[Stack]:
    """60 generated customers (seed 11), one worker whose alerts link under ``PUBLIC``."""
    with running_stack(
        firestore_emulator,
        "--customers",
        "60",
        "--seed",
        "11",
        worker_env={"LOYALTY_PHONE_HASH_KEY": PHONE_HASH_KEY, "LOYALTY_PUBLIC_URL": PUBLIC},
        redis_url=test_redis_url,
        concurrency=4,
    ) as running:
        yield running


def test_a_dry_run_posts_nothing_and_a_full_run_one_alert_linking_to_its_page(
    stack: Stack,
) -> None:
    before = len(stack.messages())
    dry = stack.run("org-1", dry_run=True)
    assert dry.status == "completed", dry
    assert dry.summary is not None and dry.summary["dryRun"] is True
    assert "alert" not in dry.summary
    # Nothing was written yet, so every customer would change: listed, largest change first.
    preview = dry.summary["previewChanges"]
    assert dry.summary["previewChangeCount"] == dry.summary["listed"] == 60
    changes = [abs(e["pointsAfter"] - (e["pointsBefore"] or 0)) for e in preview]
    assert changes == sorted(changes, reverse=True) and changes[0] > 0
    assert len(stack.messages()) == before  # the summary is written after any alert

    full = stack.run("org-1")
    assert full.status == "completed", full
    assert full.summary is not None and full.summary["alert"] == {"sent": True}
    posted = stack.messages()[before:]
    assert len(posted) == 1
    embed = posted[0]["payload"]["embeds"][0]
    run_id = full.summary["runId"]
    assert embed["url"] == f"{PUBLIC}/dashboard/orgs/org-1/runs/{run_id}"
    links = embed["fields"][0]
    assert links["name"] == "Links"
    assert f"({PUBLIC}/dashboard/orgs/org-1/runs/{run_id})" in links["value"]
    assert f"({PUBLIC}/dashboard/orgs/org-1/discrepancies)" in links["value"]
