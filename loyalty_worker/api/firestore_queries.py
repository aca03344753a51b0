"""The reads the API, the look-up and the export need from Firestore, beyond ``ProfileStore``.

``customers`` queried by ``orgId`` and one more equal field (the look-up), or by ``orgId`` alone
streamed (the export), and an org's raw settings document (for ``alleaves.webhookSecret``, a
field ``OrgSettings`` does not model). Equality filters only: Firestore serves them from its
automatic single-field indexes, so no composite index has to be deployed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry, if_exception_type
from google.auth import exceptions as auth_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from loyalty_worker.adapters.firestore import PROFILES, SETTINGS, FirestoreProfileStore
from loyalty_worker.errors import PermanentError, TransientError, UnknownOrg
from loyalty_worker.org_settings import OrgSettings

_SERVICE = "firestore"
_RETRYABLE = (
    api_exceptions.ServiceUnavailable,
    api_exceptions.DeadlineExceeded,
    api_exceptions.InternalServerError,
    api_exceptions.BadGateway,
    api_exceptions.GatewayTimeout,
    api_exceptions.Aborted,
    api_exceptions.TooManyRequests,
    api_exceptions.ResourceExhausted,
)
_TRANSIENT = (*_RETRYABLE, api_exceptions.RetryError)


class FirestoreProfileQueries:
    """Settings documents, profile queries and run summaries over one Firestore client."""

    def __init__(
        self,
        client: firestore.Client,
        *,
        timeout_s: float = 3.0,
        retry_budget_s: float = 2.0,
        stream_timeout_s: float = 1800.0,
    ) -> None:
        self._client = client
        self._store = FirestoreProfileStore(
            client, timeout_s=timeout_s, retry_budget_s=retry_budget_s
        )
        self._timeout_s = timeout_s
        self._stream_timeout_s = stream_timeout_s
        # Bounded in total time: the client's default retries an unreachable Firestore for
        # minutes, while a caller (an agent, a webhook sender) waits.
        self._retry = Retry(
            predicate=if_exception_type(*_RETRYABLE),
            initial=0.1,
            maximum=1.0,
            multiplier=2.0,
            timeout=retry_budget_s,
        )

    def get_settings_document(self, org_id: str) -> dict[str, Any]:
        """``loyalty_settings/{orgId}`` as stored; UnknownOrg when there is none."""
        reference = self._client.collection(SETTINGS).document(org_id)
        with _translate(f"read settings of org {org_id}"):
            snapshot = reference.get(retry=self._retry, timeout=self._timeout_s)
        document = snapshot.to_dict() if snapshot.exists else None
        if document is None:
            raise UnknownOrg(org_id)
        return document

    def get_org_settings(self, org_id: str) -> OrgSettings:
        """The org's validated settings; UnknownOrg or SettingsInvalid otherwise."""
        return OrgSettings.parse(org_id, self.get_settings_document(org_id))

    def get_run_summary(self, run_id: str) -> dict[str, Any] | None:
        """A run's summary document (``loyalty_sync_runs/{runId}``), or None."""
        return self._store.get_run_summary(run_id)

    def find_profiles(
        self, org_id: str, field: str, value: str, *, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` profiles of the org whose ``field`` equals ``value``."""
        query = (
            self._client.collection(PROFILES)
            .where(filter=FieldFilter("orgId", "==", org_id))
            .where(filter=FieldFilter(field, "==", value))
            .limit(limit)
        )
        with _translate(f"query profiles of org {org_id} by {field}"):
            return [
                document
                for snapshot in query.stream(retry=self._retry, timeout=self._timeout_s)
                if (document := snapshot.to_dict()) is not None
            ]

    def iter_org_profiles(self, org_id: str) -> Iterator[dict[str, Any]]:
        """Every profile of the org, streamed as Firestore sends them (bounded memory).

        One streamed query under ``stream_timeout_s``: the client resumes it after the last
        document received when the stream breaks on a retryable error. (Paging by hand with
        cursors would do the same work, and the local emulator ignores cursors.)
        """
        query = self._client.collection(PROFILES).where(filter=FieldFilter("orgId", "==", org_id))
        with _translate(f"read profiles of org {org_id}"):
            for snapshot in query.stream(retry=self._retry, timeout=self._stream_timeout_s):
                document = snapshot.to_dict()
                if document is not None:
                    yield document


@contextmanager
def _translate(action: str) -> Iterator[None]:
    """The client's exceptions as the worker's transient/permanent errors."""
    try:
        yield
    except _TRANSIENT as exc:
        raise TransientError(_SERVICE, f"{action}: {type(exc).__name__}") from exc
    except api_exceptions.GoogleAPIError as exc:
        raise PermanentError(_SERVICE, f"{action}: {type(exc).__name__}") from exc
    except (auth_exceptions.TransportError, ConnectionError, TimeoutError) as exc:
        raise TransientError(_SERVICE, f"{action}: {type(exc).__name__}") from exc
