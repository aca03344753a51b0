"""A worker started from another checkout runs that checkout's code (the fleet benchmark
measures an older commit's workers this way), with this interpreter's packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from loyalty_worker import devstack

pytestmark = pytest.mark.integration

# A checkout in miniature: its own ``loyalty_worker.celery_app``, on a broker that needs no
# server, saying where it was imported from.
CELERY_APP = """
from celery import Celery

print("celery_app imported from", __file__, flush=True)
app = Celery("elsewhere", broker="memory://")
"""


def test_a_worker_runs_the_code_of_the_checkout_it_is_started_from(tmp_path: Path) -> None:
    package = tmp_path / "loyalty_worker"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "celery_app.py").write_text(CELERY_APP)
    worker = devstack.start_worker({}, concurrency=1, name="elsewhere", source=tmp_path)
    try:
        assert f"celery_app imported from {package / 'celery_app.py'}" in worker.output()
    finally:
        worker.stop()
