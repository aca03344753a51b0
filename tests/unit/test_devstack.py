"""devstack's pure helpers (its processes are tested in tests/integration/test_stopping.py)."""

from __future__ import annotations

import pytest

from loyalty_worker import devstack


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/13"),
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/13"),
        (
            "redis://:secret@cache:6380/2?socket_timeout=5",
            "redis://:secret@cache:6380/13?socket_timeout=5",
        ),
    ],
)
def test_a_benchmark_database_keeps_the_server_and_its_options(url: str, expected: str) -> None:
    assert devstack.redis_database(url, 13) == expected
