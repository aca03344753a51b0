"""Imports point inward: services reach the outside only through ``ports``; routes, through
services and ``api.deps``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "loyalty_worker"
# What a service must not import: the edges, and the libraries only adapters and edges use.
SERVICE_FORBIDDEN = (
    "loyalty_worker.adapters",
    "loyalty_worker.api",
    "loyalty_worker.tasks",
    "loyalty_worker.bootstrap",
    "loyalty_worker.celery_app",
    "loyalty_worker.cli",
    "fastapi",
    "starlette",
    "redis",
    "httpx",
    "google",
    "celery",
    "kombu",
)
ROUTE_FORBIDDEN = ("loyalty_worker.adapters", "loyalty_worker.tasks", "redis", "httpx", "google")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in imported_modules(path)
        if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)
    )


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "services").glob("*.py")), ids=lambda path: path.name
)
def test_a_service_imports_no_edge_and_no_client_library(path: Path) -> None:
    assert offending(path, SERVICE_FORBIDDEN) == []


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "api" / "routes").glob("*.py")), ids=lambda path: path.name
)
def test_a_route_module_reaches_clients_only_through_services(path: Path) -> None:
    assert offending(path, ROUTE_FORBIDDEN) == []
