"""What the dashboard reads (and the review state it keeps) in Firestore."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from loyalty_worker.domain.profile import HistoryEntry, ProfileDocument
from loyalty_worker.domain.review import AuditEntry, Review, ReviewChange, ReviewState
from loyalty_worker.domain.run import RunSummaryDocument

# A value a keyset cursor starts after: one of a profile's order fields (a gap, an id, a stamp).
KeyValue = int | float | str | datetime | None
# Where a page of a review's audit starts: an entry's ``at`` (ISO 8601) and its id, the order the
# audit is read in (newest first: by ``at``, then by id).
AuditKey = tuple[str, str]


class DashboardStore(Protocol):
    """What the dashboard reads from (and the review state it keeps in) Firestore.

    Counts and sums come from aggregation queries, lists from equality queries with a limit or
    from ordered queries read a page at a time (keyset cursors), so no page reads every
    profile of an org. Documents come typed: a field a person edited into another type is left
    out, as if it were missing.
    """

    def list_org_ids(self) -> list[str]:
        """Ids of every org whose loyalty settings are not disabled."""
        ...

    def count_profiles(self, org_id: str, equals: Mapping[str, str] | None = None) -> int:
        """How many profiles of the org (with every field of ``equals`` equal to its value)."""
        ...

    def sum_profiles(self, org_id: str, field: str) -> int:
        """The sum of a numeric field over the org's profiles."""
        ...

    def list_profiles(
        self, org_id: str, field: str, values: Sequence[str], *, limit: int
    ) -> list[ProfileDocument]:
        """Up to ``limit`` profiles of the org whose ``field`` is one of ``values``."""
        ...

    def page_profiles(
        self,
        org_id: str,
        equals: Mapping[str, str],
        order: Sequence[tuple[str, bool]],
        *,
        after: Sequence[KeyValue] | None = None,
        limit: int,
        fields: Sequence[str] | None = None,
    ) -> list[ProfileDocument]:
        """Up to ``limit`` profiles of the org whose fields equal ``equals``, ordered by the
        ``order`` fields (each ``(field, descending)``; the last one unique within the org, such
        as ``alleavesCustomerId``), starting after the profile whose order fields hold
        ``after`` (a keyset cursor); only their top-level ``fields`` when given. A profile
        without one of the order fields is left out, as Firestore leaves it out of an ordered
        query."""
        ...

    def read_profiles(
        self, org_id: str, customer_ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, ProfileDocument]:
        """The profiles of ``customer_ids`` that exist, by customer id (batched reads); only
        their top-level ``fields`` when given."""
        ...

    def get_profile(self, org_id: str, customer_id: int) -> ProfileDocument | None:
        """One profile, or None."""
        ...

    def list_org_runs(self, org_id: str, *, limit: int) -> list[RunSummaryDocument]:
        """The org's latest run summaries (each with its ``runId``), newest first."""
        ...

    def list_org_runs_since(
        self, org_id: str, since: float, *, limit: int, fields: Sequence[str] | None = None
    ) -> list[RunSummaryDocument]:
        """The org's run summaries started at or after ``since`` (epoch seconds), newest first,
        at most ``limit`` of them; only their top-level ``fields`` (with ``runId`` and
        ``startedAt``) when given."""
        ...

    def list_history(self, org_id: str, customer_id: int, *, limit: int) -> list[HistoryEntry]:
        """A customer's loyalty history entries, newest first."""
        ...

    def get_reviews(
        self,
        org_id: str,
        *,
        state: ReviewState | None = None,
        customer_ids: Sequence[int] | None = None,
    ) -> dict[int, Review]:
        """The org's discrepancy reviews by customer id: those stored in ``state`` when given,
        of ``customer_ids`` when given (batched queries), else all of them."""
        ...

    def count_reviews(
        self, org_id: str, *, state: ReviewState, loyalty_status: str, tier: str | None = None
    ) -> int:
        """How many of the org's reviews are stored in ``state`` at ``loyalty_status`` (and
        ``tier``, when given)."""
        ...

    def get_review(self, org_id: str, customer_id: int) -> Review | None:
        """One customer's review state, or None."""
        ...

    def write_review(self, org_id: str, customer_id: int, change: ReviewChange) -> None:
        """Store a customer's review and append its audit entry, in one commit."""
        ...

    def list_audit(
        self,
        org_id: str,
        customer_id: int,
        *,
        limit: int,
        before: AuditKey | None = None,
        after: AuditKey | None = None,
        since: str | None = None,
    ) -> list[AuditEntry]:
        """Up to ``limit`` of a customer's review audit entries, newest first (by ``at``, then
        by id): from the newest on, or those older than the entry keyed ``before``, or the
        ``limit`` oldest of those newer than the entry keyed ``after`` (still newest first);
        only those made at or after ``since`` (an ISO 8601 stamp) when given. An ordered query
        with a limit: never the whole audit."""
        ...

    def get_audit(self, org_id: str, customer_id: int, entry_id: str) -> AuditEntry | None:
        """One audit entry of a customer's review, by its id, or None."""
        ...

    def delete_audit_before(self, cutoff: str, *, limit: int) -> int:
        """Delete up to ``limit`` (at most 500: one batched write) of the review audit entries of
        every org made before ``cutoff`` (an ISO 8601 stamp); how many were deleted."""
        ...
