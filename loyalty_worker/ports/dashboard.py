"""What the dashboard reads (and the review state it keeps) in Firestore."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class DashboardStore(Protocol):
    """What the dashboard reads from (and the review state it keeps in) Firestore.

    Counts and sums come from aggregation queries, lists from equality queries with a limit or
    from ordered queries read a page at a time (keyset cursors), so no page reads every
    profile of an org.
    """

    def list_org_ids(self) -> list[str]:
        """Ids of every org whose loyalty settings are not disabled."""
        ...

    def count_profiles(self, org_id: str, field: str | None = None, value: Any = None) -> int:
        """How many profiles of the org (whose ``field`` equals ``value``, when given)."""
        ...

    def sum_profiles(self, org_id: str, field: str) -> int:
        """The sum of a numeric field over the org's profiles."""
        ...

    def list_profiles(
        self, org_id: str, field: str, values: Sequence[Any], *, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` profiles of the org whose ``field`` is one of ``values``."""
        ...

    def page_profiles(
        self,
        org_id: str,
        equals: Mapping[str, Any],
        order: Sequence[tuple[str, bool]],
        *,
        after: Sequence[Any] | None = None,
        limit: int,
        fields: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` profiles of the org whose fields equal ``equals``, ordered by the
        ``order`` fields (each ``(field, descending)``; the last one unique within the org, such
        as ``alleavesCustomerId``), starting after the profile whose order fields hold
        ``after`` (a keyset cursor); only their top-level ``fields`` when given. A profile
        without one of the order fields is left out, as Firestore leaves it out of an ordered
        query."""
        ...

    def count_matching(self, org_id: str, equals: Mapping[str, Any]) -> int:
        """How many profiles of the org have every field of ``equals`` equal to its value."""
        ...

    def read_profiles(
        self, org_id: str, customer_ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, dict[str, Any]]:
        """The profiles of ``customer_ids`` that exist, by customer id (batched reads); only
        their top-level ``fields`` when given."""
        ...

    def get_profile(self, org_id: str, customer_id: int) -> dict[str, Any] | None:
        """One profile, or None."""
        ...

    def list_org_runs(self, org_id: str, *, limit: int) -> list[dict[str, Any]]:
        """The org's latest run summaries (each with its ``runId``), newest first."""
        ...

    def list_history(self, org_id: str, customer_id: int, *, limit: int) -> list[dict[str, Any]]:
        """A customer's loyalty history entries, newest first."""
        ...

    def get_reviews(
        self,
        org_id: str,
        *,
        state: str | None = None,
        customer_ids: Sequence[int] | None = None,
    ) -> dict[int, dict[str, Any]]:
        """The org's discrepancy reviews by customer id: those stored in ``state`` when given,
        of ``customer_ids`` when given (batched queries), else all of them."""
        ...

    def count_reviews(self, org_id: str, equals: Mapping[str, Any]) -> int:
        """How many of the org's reviews have every field of ``equals`` equal to its value."""
        ...

    def get_review(self, org_id: str, customer_id: int) -> dict[str, Any] | None:
        """One customer's review state, or None."""
        ...

    def write_review(
        self, org_id: str, customer_id: int, review: Mapping[str, Any], audit: Mapping[str, Any]
    ) -> None:
        """Store a customer's review state and append one audit entry, in one commit."""
        ...

    def list_audit(self, org_id: str, customer_id: int) -> list[dict[str, Any]]:
        """A customer's review audit entries, oldest first."""
        ...
