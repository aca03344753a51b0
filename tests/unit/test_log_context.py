"""The ids a task's or a request's lines carry (``log_context``): scopes open and close, nest,
are shared by the code of one request, and reach a helper thread only when carried."""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections.abc import Iterator, Mapping

import pytest

from loyalty_worker import logs
from loyalty_worker.log_context import ContextThreadPool, begin, bind, bound, carried, current, end


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, list[str]]]:
    """A logger whose lines are kept (as the handler formats them), set up as the workers'."""
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    logger = logging.getLogger(f"test-context-{id(lines)}")
    logger.handlers = [ListHandler()]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, lines
    logger.handlers = []


def in_thread(fn: object) -> Mapping[str, str]:
    """What ``fn`` (a callable returning the context) returns, run in a new thread."""
    seen: list[Mapping[str, str]] = []
    assert callable(fn)
    thread = threading.Thread(target=lambda: seen.append(fn()))
    thread.start()
    thread.join()
    return seen[0]


def test_a_scope_holds_its_ids_until_it_ends() -> None:
    assert current() == {}
    token = begin(run_id="org-1-r1", org_id="org-1", task_id="t-1", customer_id=42)
    try:
        assert current() == {
            "run_id": "org-1-r1",
            "org_id": "org-1",
            "task_id": "t-1",
            "customer_id": "42",
        }
    finally:
        end(token)
    assert current() == {}


def test_begin_starts_afresh_and_none_leaves_a_field_out() -> None:
    outer = begin(run_id="r-outer", org_id="org-1")
    try:
        inner = begin(org_id="org-2", run_id=None)
        assert current() == {"org_id": "org-2"}
        end(inner)
        assert current() == {"run_id": "r-outer", "org_id": "org-1"}
    finally:
        end(outer)


def test_bound_nests_and_restores_the_outer_scope() -> None:
    token = begin(org_id="org-1", run_id="r1")
    try:
        with bound(customer_id=7):
            assert current() == {"org_id": "org-1", "run_id": "r1", "customer_id": "7"}
            with bound(customer_id=8):
                assert current()["customer_id"] == "8"
            assert current()["customer_id"] == "7"
            bind(task_name="inner")  # added to the block's scope only
            assert current()["task_name"] == "inner"
        assert current() == {"org_id": "org-1", "run_id": "r1"}
    finally:
        end(token)


def test_bind_adds_to_the_scope_every_copy_of_the_context_shares() -> None:
    """A request: FastAPI runs the route in a copy of the request's context (a thread of its
    pool); what the route binds is on the request's own closing line too."""
    token = begin()
    try:
        contextvars.copy_context().run(bind, org_id="org-1", run_id="r1")
        assert current() == {"org_id": "org-1", "run_id": "r1"}
    finally:
        end(token)


def test_bind_outside_any_task_or_request_keeps_nothing() -> None:
    bind(run_id="r1")
    assert current() == {}


def test_only_the_known_ids_go_in_and_a_phone_never_does() -> None:
    with pytest.raises(TypeError, match="phone"):
        begin(phone="5551234567")
    with bound(org_id="5558675309", customer_id=1042):
        assert current() == {"org_id": "***-***-5309", "customer_id": "1042"}


def test_a_new_thread_carries_nothing_unless_carried() -> None:
    token = begin(run_id="r1", org_id="org-1")
    try:
        assert in_thread(current) == {}
        assert in_thread(carried(current)) == {"run_id": "r1", "org_id": "org-1"}
    finally:
        end(token)


def test_what_a_helper_binds_stays_in_the_helper() -> None:
    token = begin(run_id="r1")

    def helper() -> Mapping[str, str]:
        bind(customer_id=5)
        return current()

    try:
        assert in_thread(carried(helper)) == {"run_id": "r1", "customer_id": "5"}
        assert current() == {"run_id": "r1"}
    finally:
        end(token)


def test_a_pool_thread_carries_each_caller_context_and_keeps_none() -> None:
    """One thread serves two tasks in turn (the process's look-up pool): each call sees its
    submitter's ids, and a call submitted outside any task sees none of them."""
    with ContextThreadPool(max_workers=1) as pool:
        with bound(run_id="r1", customer_id=1):
            first = pool.submit(current).result()
        with bound(run_id="r2"):
            mapped = list(pool.map(lambda _: current(), range(2)))
        after = pool.submit(current).result()
        threads = {pool.submit(threading.get_ident).result() for _ in range(3)}
    assert first == {"run_id": "r1", "customer_id": "1"}
    assert mapped == [{"run_id": "r2"}, {"run_id": "r2"}]
    assert after == {}
    assert len(threads) == 1


def test_json_lines_carry_the_context_of_the_code_logging(
    captured: tuple[logging.Logger, list[str]],
) -> None:
    logger, lines = captured
    logs.install(logger, json_format=True)
    logger.info("before")
    with bound(run_id="org-1-r1", org_id="org-1", task_id="t-1", task_name="loyalty.sync_chunk"):
        logger.info("chunk of %d for 555-867-5309", 2, extra={"outcome": "0 failed"})
        with bound(customer_id=1042):
            logger.warning("customer failed")
        carried(logger.info)("from a helper thread")  # run here: the wrapper's own scope
        thread = threading.Thread(target=carried(logger.info), args=("in a helper",))
        thread.start()
        thread.join()
    records = [json.loads(line) for line in lines]
    assert "run_id" not in records[0]
    chunk, customer, helper, helper_thread = records[1:]
    assert chunk["message"] == "chunk of 2 for ***-***-5309"
    assert chunk["outcome"] == "0 failed"
    assert (chunk["run_id"], chunk["org_id"], chunk["task_id"], chunk["task_name"]) == (
        "org-1-r1",
        "org-1",
        "t-1",
        "loyalty.sync_chunk",
    )
    assert "customer_id" not in chunk
    assert customer["customer_id"] == "1042" and customer["run_id"] == "org-1-r1"
    assert helper["run_id"] == helper_thread["run_id"] == "org-1-r1"


def test_an_id_passed_as_extra_wins(captured: tuple[logging.Logger, list[str]]) -> None:
    logger, lines = captured
    logs.install(logger, json_format=True)
    with bound(run_id="r-task", org_id="org-1"):
        logger.info("another run's line", extra={"run_id": "r-other"})
    record = json.loads(lines[0])
    assert (record["run_id"], record["org_id"]) == ("r-other", "org-1")


def test_text_lines_end_their_message_with_the_ids(
    captured: tuple[logging.Logger, list[str]],
) -> None:
    logger, lines = captured
    logger.handlers[0].setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logs.install(logger, json_format=False)
    logs.install(logger, json_format=False)  # twice (Celery's two loggers): one suffix
    logger.info("no task")
    with bound(run_id="r1", org_id="org-1", customer_id=7, task_id="t-1", task_name="x"):
        logger.info("run %s: done", "r1")
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("failed")
    assert lines[0].endswith("no task")
    assert lines[1] == f"INFO {logger.name}: run r1: done [run=r1 org=org-1 customer=7 task=t-1]"
    first, *traceback = lines[2].splitlines()
    assert first.endswith("failed [run=r1 org=org-1 customer=7 task=t-1]")
    assert traceback[-1] == "ValueError: bad"
