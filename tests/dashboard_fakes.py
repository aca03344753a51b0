"""In-memory stand-ins for the dashboard's ports (``DashboardStore``, ``TaskOutcomes``,
``RunTriggers``), over the same dicts as ``tests.fakes.QueryableProfileStore`` so that a test
arranges a profile once and both the API's and the dashboard's reads see it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from loyalty_worker.domain.profile import profile_id
from loyalty_worker.errors import TransientError
from tests.fakes import QueryableProfileStore


class InMemoryDashboardStore:
    """``DashboardStore`` over a ``QueryableProfileStore``'s profiles and run summaries, plus
    reviews, their audit and the profiles' history kept here."""

    def __init__(self, base: QueryableProfileStore) -> None:
        self.base = base
        self.reviews: dict[str, dict[str, Any]] = {}
        self.audit: dict[str, list[dict[str, Any]]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.error: Exception | None = None

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def _org(self, org_id: str) -> list[dict[str, Any]]:
        return [p for _, p in sorted(self.base.profiles.items()) if p.get("orgId") == org_id]

    def list_org_ids(self) -> list[str]:
        self._check()
        return self.base.list_org_ids()

    def count_profiles(self, org_id: str, field: str | None = None, value: Any = None) -> int:
        self._check()
        return sum(1 for p in self._org(org_id) if field is None or p.get(field) == value)

    def sum_profiles(self, org_id: str, field: str) -> int:
        self._check()
        return sum(int(p.get(field) or 0) for p in self._org(org_id))

    def list_profiles(
        self, org_id: str, field: str, values: Sequence[Any], *, limit: int
    ) -> list[dict[str, Any]]:
        self._check()
        found = [copy.deepcopy(p) for p in self._org(org_id) if p.get(field) in list(values)]
        return found[:limit]

    def get_profile(self, org_id: str, customer_id: int) -> dict[str, Any] | None:
        self._check()
        document = self.base.profiles.get(profile_id(org_id, customer_id))
        return copy.deepcopy(document) if document and document.get("orgId") == org_id else None

    def list_org_runs(self, org_id: str, *, limit: int) -> list[dict[str, Any]]:
        self._check()
        runs = [
            {**copy.deepcopy(s), "runId": run_id}
            for run_id, s in self.base.run_summaries.items()
            if s.get("orgId") == org_id
        ]
        runs.sort(key=lambda r: float(r.get("startedAt") or 0), reverse=True)
        return runs[:limit]

    def list_history(self, org_id: str, customer_id: int, *, limit: int) -> list[dict[str, Any]]:
        self._check()
        entries = self.history.get(profile_id(org_id, customer_id), [])
        return copy.deepcopy(list(reversed(entries))[:limit])

    def get_reviews(self, org_id: str) -> dict[int, dict[str, Any]]:
        self._check()
        return {
            int(r["customerId"]): copy.deepcopy(r)
            for r in self.reviews.values()
            if r.get("orgId") == org_id
        }

    def write_review(
        self, org_id: str, customer_id: int, review: Mapping[str, Any], audit: Mapping[str, Any]
    ) -> None:
        self._check()
        key = profile_id(org_id, customer_id)
        stored = self.reviews.setdefault(key, {})
        stored.update({**copy.deepcopy(dict(review)), "orgId": org_id, "customerId": customer_id})
        self.audit.setdefault(key, []).append(copy.deepcopy(dict(audit)))

    def list_audit(self, org_id: str, customer_id: int) -> list[dict[str, Any]]:
        self._check()
        return copy.deepcopy(self.audit.get(profile_id(org_id, customer_id), []))


class StaticTaskOutcomes:
    """``TaskOutcomes`` from a dict a test fills."""

    def __init__(self) -> None:
        self.outcomes: dict[str, dict[str, Any]] = {}

    def outcome(self, task_id: str) -> dict[str, Any] | None:
        found = self.outcomes.get(task_id)
        return copy.deepcopy(found) if found is not None else None


class RecordingRunTriggers:
    """``RunTriggers`` that keeps the runs it started; ``going`` names the org's run going."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.going: dict[str, str] = {}
        self.error: TransientError | None = None

    def running_run(self, org_id: str) -> str | None:
        return self.going.get(org_id)

    def start_run(self, org_id: str, run_id: str, *, dry_run: bool, since: str | None) -> None:
        if self.error is not None:
            raise self.error
        self.started.append(
            {"org_id": org_id, "run_id": run_id, "dry_run": dry_run, "since": since}
        )
        self.going[org_id] = run_id
