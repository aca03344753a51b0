"""Log lines never carry secrets or phone numbers, whatever wrote them."""

from __future__ import annotations

import json
import logging
import random
import uuid

import pytest

from loyalty_worker import logs


@pytest.fixture
def captured() -> tuple[logging.Logger, list[str]]:
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    logger = logging.getLogger(f"test-{id(lines)}")
    logger.handlers = [ListHandler()]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, lines


def test_secrets_phones_and_jwts_are_masked(captured: tuple[logging.Logger, list[str]]) -> None:
    logger, lines = captured
    logs.register_secret("pw-Very-Secret-42")
    logs.install(logger, json_format=False)
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    logger.warning("login %s with %s for (555) 867-5309 / 5558675309", jwt, "pw-Very-Secret-42")
    (line,) = lines
    assert "pw-Very-Secret-42" not in line
    assert jwt not in line
    assert "867-5309" not in line and "5558675309" not in line
    assert line.count("***-***-5309") == 2


def test_a_task_id_is_logged_as_it_is(captured: tuple[logging.Logger, list[str]]) -> None:
    """A Celery task id holding ten digits in a row (about one uuid4 in 70) is no phone: the
    worker's "received" line must name the task that was sent (the chaos suite finds a run's
    planner by it; an operator, by the id Flower shows). A phone beside it is still masked."""
    logger, lines = captured
    logs.install(logger, json_format=False)
    task_id = "d4c13df1-c16e-47d1-959b-5d9114958509"
    logger.info("Task loyalty.sync_org[%s] received", task_id)
    logger.warning("task %s failed for 555-123-4567 (5551234567)", task_id)
    assert lines[0] == f"Task loyalty.sync_org[{task_id}] received"
    assert task_id in lines[1]
    assert "555-123" not in lines[1] and "5551234567" not in lines[1]
    assert lines[1].count("***-***-4567") == 2


def test_no_uuid4_is_taken_for_a_phone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Phones only: the secrets other tests registered (a six-digit PIN may stand in a UUID, and
    is masked there as anywhere) are set aside."""
    monkeypatch.setattr(logs, "_secrets", set())
    rng = random.Random(20261202)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(20_000)]
    assert [task_id for task_id in ids if logs.redact(task_id) != task_id] == []


def test_exception_text_is_redacted_too(captured: tuple[logging.Logger, list[str]]) -> None:
    logger, lines = captured
    logs.register_secret("ak-live-0099887766")
    logs.install(logger, json_format=False)
    try:
        raise RuntimeError("bad key ak-live-0099887766")
    except RuntimeError:
        logger.exception("call failed")
    assert "ak-live-0099887766" not in "\n".join(lines)


def test_json_format_carries_the_task_context(captured: tuple[logging.Logger, list[str]]) -> None:
    logger, lines = captured
    logs.install(logger, json_format=True)
    logger.info("chunk done", extra={"run_id": "r1", "org_id": "org-1", "outcome": "0 failed"})
    record = json.loads(lines[0])
    assert record["message"] == "chunk done"
    assert (record["run_id"], record["org_id"], record["outcome"]) == ("r1", "org-1", "0 failed")


def test_short_values_are_not_registered() -> None:
    logs.register_secret("12")
    assert logs.redact("order 12 of 120") == "order 12 of 120"


def test_httpx_request_lines_are_left_out() -> None:
    logs.install(logging.getLogger("test-install"), json_format=False)
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)
