"""Markitbot's Firestore: org settings, customer profiles, run summaries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from loyalty_worker.domain.profile import ProfileDocument, ProfileUpdate
from loyalty_worker.domain.run import RunSummaryDocument
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.run import RunSummaries


class ProfileStore(Protocol):
    """Markitbot's Firestore: settings in, profiles and run summaries out."""

    def get_org_settings(self, org_id: str) -> OrgSettings:
        """The org's validated settings; UnknownOrg or SettingsInvalid otherwise."""
        ...

    def list_org_ids(self) -> list[str]:
        """Ids of every org whose loyalty settings are not disabled."""
        ...

    def get_profiles(
        self, org_id: str, customer_ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, ProfileDocument]:
        """Existing profiles by customer id, only their top-level ``fields`` when given;
        customers without a profile are left out."""
        ...

    def write_profiles(self, updates: Sequence[ProfileUpdate]) -> None:
        """Merge-write the updates (batched); never touches other fields."""
        ...

    def write_run_summary(self, run_id: str, summary: RunSummaryDocument) -> None:
        """Store a run's summary at ``loyalty_sync_runs/{runId}`` (merge)."""
        ...

    def list_running_runs(self) -> list[RunSummaryDocument]:
        """Run summaries still marked ``running`` (each with its ``runId``)."""
        ...

    def get_run_summary(self, run_id: str) -> RunSummaryDocument | None:
        """A run's summary document, or None."""
        ...


class ProfileFinder(Protocol):
    """Profiles of an org found by one field's value (the look-up's ``phoneHash``, ...)."""

    def find_profiles(
        self, org_id: str, field: str, value: str, *, limit: int
    ) -> list[ProfileDocument]:
        """Up to ``limit`` profiles of the org whose ``field`` equals ``value``."""
        ...


class OrgStore(ProfileFinder, RunSummaries, Protocol):
    """Firestore reads the API needs (``FirestoreProfileStore``; a fake in tests): settings,
    profiles by a field, closed runs' summaries."""

    def get_settings_document(self, org_id: str) -> dict[str, Any]:
        """``loyalty_settings/{orgId}`` as stored, for the caller to parse at once (its
        ``OrgSettings`` and webhook secret); UnknownOrg when there is none."""
        ...


class PointsStore(ProfileFinder, Protocol):
    """What the points look-up reads from Markitbot's Firestore."""

    def get_org_settings(self, org_id: str) -> OrgSettings:
        """The org's validated settings; UnknownOrg or SettingsInvalid otherwise."""
        ...


class ProfileSource(Protocol):
    """Every profile of an org, streamed (the export)."""

    def iter_org_profiles(self, org_id: str) -> Iterator[ProfileDocument]:
        """The org's profiles (``customers`` where ``orgId == org_id``), page by page."""
        ...
