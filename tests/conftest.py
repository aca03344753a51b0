"""Shared fixtures: each real service has its own plugin module under tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.firestore",
    "tests.fixtures.pipeline",
]
