"""A real Prometheus (Debian's) scraping a real API and worker with the project's scrape
configuration: after a run, PromQL answers the run's customers and its task durations, and every
metric the alert rules read is in the scrape."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from loyalty_worker import devstack
from tests.fixtures import prometheus
from tests.fixtures.pipeline import Stack, running_stack, wait_for

pytestmark = pytest.mark.integration


@dataclass
class Scraped:
    stack: Stack
    prometheus: str  # base URL of its HTTP API

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": promql})
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def targets(self) -> list[tuple[str, str, str]]:
        """Each target's job, health and last scrape error (what a failure shows)."""
        response = httpx.get(f"{self.prometheus}/api/v1/targets")
        return [
            (t["labels"]["job"], t["health"], t["lastError"])
            for t in response.json()["data"]["activeTargets"]
        ]

    def names(self) -> set[str]:
        response = httpx.get(f"{self.prometheus}/api/v1/label/__name__/values")
        assert response.status_code == 200, response.text
        return set(response.json()["data"])


def rule_metric_names() -> set[str]:
    """Every metric the alert rules read (their recorded series left out)."""
    rules = [
        rule
        for group in yaml.safe_load(prometheus.RULES.read_text())["groups"]
        for rule in group["rules"]
    ]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    read = {name for rule in rules for name in re.findall(r"\bloyalty_\w+", str(rule["expr"]))}
    return read - recorded


@pytest.fixture(scope="module")
def scraped(firestore_emulator: str, test_redis_url: str) -> Iterator[Scraped]:
    worker_port = devstack.free_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_stack(
            firestore_emulator,
            "--customers",
            "60",
            "--seed",
            "5",
            worker_env=prometheus.worker_env(worker_port),
            redis_url=test_redis_url,
        ) as stack,
        prometheus.prometheus_scraping(stack, worker_port, Path(tmp)) as url,
    ):
        yield Scraped(stack, url)


@pytest.fixture(scope="module")
def after_a_run(scraped: Scraped) -> Scraped:
    progress = scraped.stack.run("org-1")
    assert progress.status == "completed", progress
    return scraped


def test_both_targets_are_up(scraped: Scraped) -> None:
    def up() -> list[dict[str, Any]] | None:
        result = scraped.query("up == 1")
        return result if len(result) == 2 else None

    jobs = {series["metric"]["job"] for series in wait_for(up, timeout_s=90, poll_s=1)}
    assert jobs == {"loyalty-api", "loyalty-worker"}


def test_promql_answers_the_runs_customers_and_its_task_durations(after_a_run: Scraped) -> None:
    listed = len(after_a_run.stack.org("org-1")["customers"])

    def customers() -> list[dict[str, Any]] | None:
        query = 'loyalty_last_run_customers{org="org-1",outcome="listed"}'
        return after_a_run.query(query) or None

    assert float(wait_for(customers, timeout_s=90, poll_s=1)[0]["value"][1]) == listed
    status = after_a_run.query('loyalty_last_run_status{org="org-1",status="completed"}')
    assert float(status[0]["value"][1]) == 1

    def chunks() -> list[dict[str, Any]] | None:
        query = 'loyalty_task_duration_seconds_count{task="loyalty.sync_chunk",outcome="success"}'
        return after_a_run.query(f"{query} > 0") or None

    assert wait_for(chunks, timeout_s=90, poll_s=1)
    upstream = after_a_run.query('sum(loyalty_upstream_requests_total{api="alleaves"})')
    assert float(upstream[0]["value"][1]) > 0


def test_every_metric_the_rules_read_is_scraped(after_a_run: Scraped) -> None:
    wanted = rule_metric_names()
    assert "loyalty_next_run_due_timestamp_seconds" in wanted

    missing: list[set[str]] = []

    def all_scraped() -> bool:
        missing.append(wanted - after_a_run.names())
        return not missing[-1]

    try:
        wait_for(all_scraped, timeout_s=90, poll_s=1)
    except AssertionError:
        pytest.fail(f"not in the scrape: {sorted(missing[-1])}; {after_a_run.targets()}")
