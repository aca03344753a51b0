"""Every task message, by the shared names and queues, shown by what it names: the messages
running workers and other services depend on, as a broker gets them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import pytest
from celery import Celery

from loyalty_worker import names
from loyalty_worker.adapters.publisher import TaskPublisher
from loyalty_worker.errors import TransientError
from loyalty_worker.ports.run import WorkPayload
from tests.published import Published


@pytest.fixture
def published() -> Iterator[Published]:
    with Published().recording() as published:
        yield published


def test_an_org_run_goes_to_the_runs_queue_with_its_id(published: Published) -> None:
    published.publisher.sync_org("org-1", run_id="r1", dry_run=True)
    (sent,) = published.sent
    assert (sent.name, sent.queue, sent.args) == (names.SYNC_ORG, names.RUNS_QUEUE, ("org-1",))
    assert sent.kwargs == {"run_id": "r1", "dry_run": True}
    assert sent.shown == ("('org-1',)", "{'run_id': 'r1', 'dry_run': True}")
    assert sent.expires_in_s is None and sent.countdown_s is None and not sent.ignore_result


def test_an_incremental_run_names_its_start_and_may_expire(published: Published) -> None:
    published.publisher.sync_org("org-1", run_id="r1", since="last", expires_s=600)
    (sent,) = published.sent
    assert sent.kwargs == {"run_id": "r1", "dry_run": False, "since": "last"}
    assert sent.expires_in_s is not None and 590 < sent.expires_in_s <= 600


def test_a_customer_sync_is_the_public_message_and_answers_its_task_id(
    published: Published,
) -> None:
    task_id = published.publisher.sync_customer("org-1", 42, delay_s=30)
    (sent,) = published.sent
    assert sent.headers["id"] == task_id
    assert (sent.name, sent.queue, sent.args, sent.kwargs) == (
        names.SYNC_CUSTOMER,
        names.CUSTOMERS_QUEUE,
        ("org-1", 42),
        {"dry_run": False},
    )
    assert sent.countdown_s is not None and 20 < sent.countdown_s <= 30


def test_a_runs_customer_alone_is_shown_by_its_id_not_its_work(published: Published) -> None:
    work: WorkPayload = {"customer": [7, "***-***-4567", None], "orders": [], "phoneKept": True}
    published.publisher.sync_run_customer("org-1", "r1", 7, work, dry_run=False)
    (sent,) = published.sent
    assert (sent.name, sent.queue, sent.args) == (
        names.SYNC_CUSTOMER,
        names.BATCH_QUEUE,
        ("org-1", 7),
    )
    assert sent.kwargs == {"run_id": "r1", "dry_run": False, "work": work}
    assert sent.shown[1] == "{'run_id': 'r1', 'dry_run': False, 'work': '<customer 7>'}"
    assert sent.countdown_s is not None and sent.countdown_s <= 1 and sent.ignore_result


def test_a_chunk_is_shown_as_a_count_of_customers(published: Published) -> None:
    payloads: list[WorkPayload] = [
        {"customer": [7, None, None], "orders": []},
        {"customer": [8, None, None], "orders": []},
    ]
    published.publisher.sync_chunk("org-1", "r1", False, "7", payloads)
    (sent,) = published.sent
    assert (sent.name, sent.queue) == (names.SYNC_CHUNK, names.BATCH_QUEUE)
    assert sent.args == ("org-1", "r1", payloads)
    assert sent.kwargs == {"dry_run": False, "chunk": "7"}
    assert sent.shown == ("('org-1', 'r1', '<2 customers>')", "{'dry_run': False, 'chunk': '7'}")
    assert sent.ignore_result


def test_a_slice_of_history_expires_with_its_planners_budget(published: Published) -> None:
    published.publisher.read_orders(
        "org-1", "r1", date(2025, 1, 1), date(2025, 3, 31), 2, 8, expires_s=300
    )
    (sent,) = published.sent
    assert (sent.name, sent.queue) == (names.READ_ORDERS, names.RUNS_QUEUE)
    assert sent.args == ("org-1", "r1", "2025-01-01", "2025-03-31", 2, 8)
    assert sent.kwargs == {}
    assert sent.expires_in_s is not None and 290 < sent.expires_in_s <= 300
    assert sent.ignore_result


def test_a_summary_goes_to_the_runs_queue(published: Published) -> None:
    published.publisher.summarize_run("r1", "failed")
    (sent,) = published.sent
    assert (sent.name, sent.queue, sent.args, sent.kwargs) == (
        names.SUMMARIZE_RUN,
        names.RUNS_QUEUE,
        ("r1",),
        {"status": "failed"},
    )


def test_a_broker_that_refuses_is_a_transient_error() -> None:
    # Nothing listens on the port: the publish fails within the publish retry policy.
    app = Celery("down", broker="redis://127.0.0.1:1/0")
    app.conf.update(
        broker_connection_timeout=0.2,
        task_publish_retry_policy={"max_retries": 0},
    )
    with pytest.raises(TransientError, match=names.SYNC_ORG) as raised:
        TaskPublisher(app).sync_org("org-1", run_id="r1")
    assert raised.value.reason == "broker_unavailable"


def test_every_message_says_when_it_was_sent(published: Published) -> None:
    """The workers' metrics read a queue's oldest message's age from it."""
    before = time.time()
    published.publisher.sync_org("org-1", run_id="r1")
    (sent,) = published.sent
    assert before <= float(sent.headers["published_at"]) <= time.time()
