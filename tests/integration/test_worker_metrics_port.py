"""A worker process whose metrics port is taken does not start, and says which port."""

from __future__ import annotations

import socket

import pytest

from loyalty_worker import devstack
from tests.fixtures.pipeline import wait_for

pytestmark = pytest.mark.integration


def test_a_taken_metrics_port_stops_the_worker_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The port is checked at worker_init, before the broker is reached: no Redis needed.
        env = {"LOYALTY_METRICS_PORT": str(port), "LOYALTY_REDIS_URL": "redis://127.0.0.1:1/0"}
        argv = devstack.celery_argv("worker", "--pool=threads", "--loglevel=INFO")
        with devstack.ChildProcess.start("worker", argv, env=env) as worker:
            wait_for(lambda: not worker.running, timeout_s=60)
            assert worker.process.returncode != 0
            assert f"LOYALTY_METRICS_PORT {port} is taken" in worker.output()
