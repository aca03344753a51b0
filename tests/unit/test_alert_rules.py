"""The alert rules and the Prometheus and Alertmanager configurations in deploy/prometheus/.

Debian's ``promtool`` runs the rules' unit tests (rules_test.yml) and checks the rules and
prometheus.yml; ``amtool`` (prometheus-alertmanager) checks alertmanager.yml and its routes.
``make test`` installs both where missing (``make prometheus``), so a missing binary fails these
tests rather than skipping them. Read from the files themselves:

- every alert has a case in rules_test.yml where it fires and one where it stays silent;
- every alert carries a severity, a summary, a description and a runbook_url naming a heading of
  docs/runbook.md;
- the rules read only the metrics loyalty_worker exports (``EXPORTED`` below), compare with
  thresholds that the thresholds group defines, and name no label beyond the bounded ones, so
  no message can carry a customer id or a phone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loyalty_worker import names
from tests.unit.test_docs import anchors

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "prometheus"
RULES = DEPLOY / "rules.yml"
RULES_TEST = DEPLOY / "rules_test.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
THRESHOLDS_GROUP = "loyalty-thresholds"

# The names loyalty_worker exports, by kind: the worker processes' (job="loyalty-worker") and
# the API's GET /metrics (job="loyalty-api"). The rules may read these and ``up``, nothing else.
EXPORTED: dict[str, str] = {
    # worker processes
    "loyalty_task_duration_seconds": "histogram",
    "loyalty_queue_messages": "gauge",
    "loyalty_queue_oldest_age_seconds": "gauge",
    "loyalty_fair_waiting_chunks": "gauge",
    "loyalty_upstream_requests_total": "counter",
    "loyalty_upstream_request_duration_seconds": "histogram",
    "loyalty_rate_limit_wait_seconds_total": "counter",
    "loyalty_retries_total": "counter",
    "loyalty_firestore_operations_total": "counter",
    "loyalty_firestore_operation_duration_seconds": "histogram",
    "loyalty_run_in_progress": "gauge",
    "loyalty_run_customers": "gauge",
    # the API
    "loyalty_recent_runs": "gauge",
    "loyalty_last_run_status": "gauge",
    "loyalty_last_run_duration_seconds": "gauge",
    "loyalty_last_run_customers": "gauge",
    "loyalty_last_run_failed": "gauge",
    "loyalty_last_run_synced_ratio": "gauge",
    "loyalty_last_run_discrepancy_rate": "gauge",
    "loyalty_last_completed_run_end_timestamp_seconds": "gauge",
    "loyalty_next_run_due_timestamp_seconds": "gauge",
    "loyalty_customers_by_tier": "gauge",
    "loyalty_customers_by_status": "gauge",
    "loyalty_lookup_duration_seconds": "histogram",
}
# Every label a rule may group, join or template by: none grows with customers.
BOUNDED_LABELS = {
    "org",
    "status",
    "outcome",
    "reason",
    "tier",
    "state",
    "queue",
    "task",
    "api",
    "route",
    "op",
    "kind",
    "le",
    "job",
    "instance",
    "threshold",
}
SEVERITIES = {"critical", "warning"}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")

STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
MATCHERS = re.compile(r"\{[^}]*\}")
RANGE = re.compile(r"\[[^\]]*\]")
NUMBER = re.compile(r"(?<![\w:])\d[\w.]*")  # 0.9, 1e3, an offset's 5m
LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
TEMPLATE_LABEL = re.compile(r"\$labels\.(\w+)")
THRESHOLD_REF = re.compile(r'loyalty_alert_threshold\{threshold=["\'](\w+)["\']\}')


# --- the files, read ------------------------------------------------------------------------


def rules() -> Iterator[tuple[str, dict[str, Any]]]:
    """``(group name, rule)`` for every rule of rules.yml."""
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield group["name"], rule


def alerts() -> list[dict[str, Any]]:
    return [rule for _, rule in rules() if "alert" in rule]


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads: identifiers left once strings, matchers,
    ranges, numbers and label lists are gone, less function names (before a ``(``) and keywords."""
    text = STRING.sub(" ", expr)
    for pattern in (MATCHERS, RANGE, LABEL_LIST, NUMBER):
        text = pattern.sub(" ", text)
    found = set()
    for match in IDENTIFIER.finditer(text):
        if text[match.end() :].lstrip().startswith("(") or match[0] in KEYWORDS:
            continue
        found.add(match[0])
    return found


def grouping_labels(expr: str) -> set[str]:
    """Every label named in a ``by``/``on``/``without``/``ignoring``/``group_*`` list."""
    lists = LABEL_LIST.findall(STRING.sub(" ", expr))
    return {label.strip() for names_ in lists for label in names_.split(",") if label.strip()}


def exported_series() -> set[str]:
    """The series names the exported metrics appear under in a scrape."""
    series = {"up"}
    for name, kind in EXPORTED.items():
        series |= {f"{name}{end}" for end in HISTOGRAM_SERIES} if kind == "histogram" else {name}
    return series


def run(*command: str, cwd: Path = DEPLOY) -> str:
    """Run one of Debian's Prometheus tools; fail with its output unless it succeeds."""
    if shutil.which(command[0]) is None:
        pytest.fail(f"{command[0]} not found: `make prometheus` installs Debian's packages")
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output}"
    return output


# --- the tools ------------------------------------------------------------------------------


def test_the_rules_unit_tests_pass() -> None:
    run("promtool", "test", "rules", RULES_TEST.name)


def test_the_rules_are_valid() -> None:
    run("promtool", "check", "rules", RULES.name)


def test_the_prometheus_configuration_is_valid(tmp_path: Path) -> None:
    run("promtool", "check", "config", "--syntax-only", "prometheus.yml")
    # The full check also reads the rule files and the API token's file: give it a token.
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    token = tmp_path / "loyalty-api.token"
    token.write_text("a-token\n")
    (api,) = [job for job in config["scrape_configs"] if job["job_name"] == "loyalty-api"]
    assert api["authorization"]["credentials_file"] == "/etc/prometheus/loyalty-api.token"
    api["authorization"]["credentials_file"] = str(token)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(RULES, tmp_path / RULES.name)
    run("promtool", "check", "config", "prometheus.yml", cwd=tmp_path)


def test_the_scrape_jobs_name_the_api_and_each_worker_process() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"loyalty-api", "loyalty-worker"}
    assert jobs["loyalty-api"]["authorization"]["type"] == "Bearer"
    workers = jobs["loyalty-worker"]["static_configs"][0]["targets"]
    assert workers == ["127.0.0.1:9808", "127.0.0.1:9809"]
    assert config["rule_files"] == ["rules.yml"]


def test_the_alertmanager_configuration_is_valid() -> None:
    run("amtool", "check-config", "alertmanager.yml")


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["alertname=LoyaltyRunFailed", "org=org-1"], "org-1,operators"),
        (["alertname=LoyaltyRunFailed", "org=org-2"], "operators"),
        (["alertname=LoyaltyWorkerDown", "instance=127.0.0.1:9808"], "operators"),
    ],
)
def test_alerts_reach_the_operators_and_their_org(labels: list[str], receivers: str) -> None:
    config = "--config.file=alertmanager.yml"
    output = run("amtool", "config", "routes", "test", config, *labels)
    assert output.splitlines()[0] == receivers


# --- the rules, read ------------------------------------------------------------------------


def test_every_alert_fires_in_one_case_and_stays_silent_in_another() -> None:
    cases = [
        case
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test") or []
    ]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    every = {rule["alert"] for rule in alerts()}
    assert len(every) >= 13
    assert every - fires == set(), "no case where these fire"
    assert every - silent == set(), "no case where these stay silent"
    assert (fires | silent) - every == set(), "cases of alerts that do not exist"


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: str(alert["alert"]))
def test_every_alert_says_how_bad_what_and_where_to_read_on(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    page, _, anchor = annotations["runbook_url"].partition("#")
    assert page == "docs/runbook.md"
    assert anchor == alert["alert"].lower()
    assert anchor in anchors(RUNBOOK.read_text())


def test_the_rules_read_only_what_loyalty_worker_exports() -> None:
    recorded = {rule["record"] for _, rule in rules() if "record" in rule}
    read = set[str]().union(*(metric_names(rule["expr"]) for _, rule in rules()))
    assert {"loyalty_next_run_due_timestamp_seconds", "up", "loyalty_alert_threshold"} <= read
    assert read - recorded - exported_series() == set()


def test_the_rules_group_and_template_by_bounded_labels_only() -> None:
    for _, rule in rules():
        assert grouping_labels(rule["expr"]) <= BOUNDED_LABELS, rule["expr"]
        assert set(rule.get("labels", {})) <= BOUNDED_LABELS | {"severity"}
        for text in rule.get("annotations", {}).values():
            assert set(TEMPLATE_LABEL.findall(text)) <= {"org", "queue", "api", "instance"}, text


def test_every_threshold_is_defined_once_in_its_group_and_used() -> None:
    group = [rule for name, rule in rules() if name == THRESHOLDS_GROUP]
    assert {rule.get("record") for rule in group} == {"loyalty_alert_threshold"}
    defined = [rule["labels"]["threshold"] for rule in group]
    assert len(defined) == len(set(defined)), "a threshold defined twice"
    compared = {name for rule in alerts() for name in THRESHOLD_REF.findall(rule["expr"])}
    quoted = {
        name
        for rule in alerts()
        for text in rule["annotations"].values()
        for name in THRESHOLD_REF.findall(text)
    }
    assert compared == set(defined)
    assert quoted, "the descriptions quote no threshold"
    assert quoted <= set(defined)


def test_the_interactive_queues_are_the_workers_interactive_queues() -> None:
    patterns = {
        match for rule in alerts() for match in re.findall(r'queue[!=]~"([^"]+)"', rule["expr"])
    }
    assert len(patterns) == 1
    (pattern,) = patterns
    matched = {queue for queue in names.WORKER_QUEUES if re.fullmatch(pattern, queue)}
    assert matched == set(names.INTERACTIVE_QUEUES)


# --- the parsers, on samples ----------------------------------------------------------------


def test_metric_names_leave_out_functions_labels_strings_and_ranges() -> None:
    expr = """
      sum by (api, outcome) (rate(a_total{api=~"x|y", route='z'}[10m]))
        / on(api) group_left() sum without (le) (b:recorded)
      > on() group_left() c{threshold="d"} and time() - e offset 5m > bool 1e3 * f5
    """
    assert metric_names(expr) == {"a_total", "b:recorded", "c", "e", "f5"}
    assert grouping_labels(expr) == {"api", "outcome", "le"}
