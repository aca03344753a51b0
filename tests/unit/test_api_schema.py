"""Generated requests against every route of the app's own OpenAPI schema, with a valid token and
without one: no answer is a server error, and every answer matches what the schema promises
(status, content type, headers, body).

In process, over the same fakes as ``test_api``; bounded and deterministic (``derandomize``), so
that it runs in seconds and a failure reproduces.
"""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():
    # Starlette's test client (used by Schemathesis for ASGI apps) names an anyio alias that
    # anyio 4.16 deprecates, at import only.
    warnings.filterwarnings("ignore", "The anyio.abc.BlockingPortal alias", DeprecationWarning)
    import schemathesis
    from hypothesis import HealthCheck, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

from tests.unit.test_api import ADMIN_TOKEN, UNKNOWN_TOKEN, assemble_api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# The schema is served only when asked for; the rate limit is set out of reach here (its 429 has
# its own tests) so that every generated request reaches its route, and the host the generated
# requests name (Schemathesis' ``testserver``) is trusted.
API = assemble_api(docs=True, rate_limit_per_min=1_000_000, trusted_hosts=["testserver"])
schema = schemathesis.openapi.from_asgi("/openapi.json", API.client.app)


# Bounded and deterministic: a failure reproduces, and the three runs take seconds.
bounded = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def call_and_check(case: Any, token: str | None) -> None:
    """Send ``case`` with ``token`` (or none, even if the schema's generator added one)."""
    if case.headers:
        case.headers.pop("Authorization", None)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    case.call_and_validate(headers=headers, checks=CHECKS)


@schema.parametrize()
@bounded
def test_generated_requests_with_a_valid_token(case: Any) -> None:
    call_and_check(case, ADMIN_TOKEN)


@schema.parametrize()
@bounded
def test_generated_requests_with_an_unknown_token(case: Any) -> None:
    call_and_check(case, UNKNOWN_TOKEN)


@schema.parametrize()
@bounded
def test_generated_requests_without_a_token(case: Any) -> None:
    call_and_check(case, None)


def _resolved(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its ``$ref`` followed (to ``#/components/schemas/...``)."""
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def test_every_dashboard_json_route_describes_its_answer() -> None:
    """Each dashboard route answering JSON names a model with properties for its success."""
    spec: dict[str, Any] = API.client.get("/openapi.json").json()
    described = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/loyalty/orgs/{orgId}"):
            continue
        for method, operation in operations.items():
            ok = next(code for code in operation["responses"] if code.startswith("2"))
            content = operation["responses"][ok].get("content", {})
            if "application/json" not in content:
                assert path.endswith(".csv"), (method, path)  # the CSVs answer text
                continue
            schema = _resolved(spec, content["application/json"]["schema"])
            assert schema.get("properties"), (method, path, schema)
            described.append(f"{method.upper()} {path}")
    assert len(described) == 16, described
