"""Markitbot's Firestore as the worker's ``ProfileStore``.

Documents: ``loyalty_settings/{orgId}`` (read), ``customers/{orgId}_{customerId}`` (merge-written,
loyalty fields only; its ``loyalty_history`` subcollection gets one entry per sync that changed
it) and ``loyalty_sync_runs/{runId}`` (run summaries). Every call carries a
timeout and a short retry bounded in total time, so an unreachable Firestore (or a stopped
emulator) surfaces within seconds as ``TransientError``, for the task to retry later, instead of
the client's default of retrying for minutes. Other API errors become ``PermanentError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry, if_exception_type
from google.auth import exceptions as auth_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.document import DocumentReference

from loyalty_worker.adapters import metrics
from loyalty_worker.adapters.firestore_writes import merge_write_pb
from loyalty_worker.domain.profile import (
    HistoryEntry,
    ProfileDocument,
    ProfileUpdate,
    profile_id,
)
from loyalty_worker.domain.run import RunStatus, RunSummaryDocument
from loyalty_worker.errors import PermanentError, TransientError, UnknownOrg
from loyalty_worker.org_settings import OrgSettings

SETTINGS = "loyalty_settings"
PROFILES = "customers"
RUN_SUMMARIES = "loyalty_sync_runs"
# ``customers/{orgId}_{id}/loyalty_history/{entry}``: one entry per sync that changed the profile.
HISTORY = "loyalty_history"
# ``loyalty_contacts/{orgId}_{id}``: contact details (``adapters.contacts``).
CONTACTS = "loyalty_contacts"

# Firestore's limit on writes in one commit.
MAX_BATCH_WRITES = 500
# Documents per BatchGetDocuments call: large enough to be few calls, small enough that one slow
# response does not hit the timeout.
READ_CHUNK = 300

_SERVICE = "firestore"
_TRANSIENT_API_ERRORS: tuple[type[Exception], ...] = (
    api_exceptions.ServiceUnavailable,
    api_exceptions.DeadlineExceeded,
    api_exceptions.InternalServerError,
    api_exceptions.BadGateway,
    api_exceptions.GatewayTimeout,
    api_exceptions.Aborted,
    api_exceptions.TooManyRequests,
    api_exceptions.ResourceExhausted,
)


def build_firestore_client(project: str) -> firestore.Client:
    """A Firestore client for ``project``.

    With ``FIRESTORE_EMULATOR_HOST`` set the client talks to that emulator without credentials;
    otherwise it uses Application Default Credentials. Build it once per worker process, after
    fork: gRPC channels do not survive a fork.
    """
    return firestore.Client(project=project)


class FirestoreProfileStore:
    """``ProfileStore`` over a ``google.cloud.firestore.Client``, plus the reads of the API, the
    points look-up and the export (profiles queried by equal fields, or streamed per org).

    Queries use equality filters only: Firestore serves them from its automatic single-field
    indexes, so no composite index has to be deployed.
    """

    def __init__(
        self,
        client: firestore.Client,
        *,
        timeout_s: float = 10.0,
        retry_budget_s: float = 3.0,
        stream_timeout_s: float = 1800.0,
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._stream_timeout_s = stream_timeout_s
        self._retry = Retry(
            predicate=if_exception_type(*_TRANSIENT_API_ERRORS),
            initial=0.1,
            maximum=1.0,
            multiplier=2.0,
            timeout=retry_budget_s,
        )

    @property
    def client(self) -> firestore.Client:
        """The Firestore client (the contact store shares it)."""
        return self._client

    def get_settings_document(self, org_id: str) -> dict[str, Any]:
        """``loyalty_settings/{orgId}`` as stored (``alleaves.webhookSecret`` included, which
        ``OrgSettings`` does not model); UnknownOrg when there is none."""
        reference = self._client.collection(SETTINGS).document(org_id)
        with _translate_errors(f"read settings of org {org_id}", "read"):
            snapshot = reference.get(retry=self._retry, timeout=self._timeout_s)
        document = snapshot.to_dict()
        if not snapshot.exists or document is None:
            raise UnknownOrg(org_id)
        return document

    def get_org_settings(self, org_id: str) -> OrgSettings:
        """The org's validated settings; UnknownOrg or SettingsInvalid otherwise."""
        return OrgSettings.parse(org_id, self.get_settings_document(org_id))

    def find_profiles(
        self, org_id: str, field: str, value: str, *, limit: int
    ) -> list[ProfileDocument]:
        """Up to ``limit`` profiles of the org whose ``field`` equals ``value``, as stored (a
        ``ProfileDocument``: its readers convert defensively, as for any stored document)."""
        query = (
            self._client.collection(PROFILES)
            .where(filter=FieldFilter("orgId", "==", org_id))
            .where(filter=FieldFilter(field, "==", value))
            .limit(limit)
        )
        with _translate_errors(f"query profiles of org {org_id} by {field}", "query"):
            return [
                cast(ProfileDocument, document)
                for snapshot in query.stream(retry=self._retry, timeout=self._timeout_s)
                if (document := snapshot.to_dict()) is not None
            ]

    def iter_org_profiles(self, org_id: str) -> Iterator[ProfileDocument]:
        """Every profile of the org, streamed as Firestore sends them (bounded memory).

        One streamed query under ``stream_timeout_s``: the client resumes it after the last
        document received when the stream breaks on a retryable error. (Paging by hand with
        cursors would do the same work, and the local emulator ignores cursors.)
        """
        query = self._client.collection(PROFILES).where(filter=FieldFilter("orgId", "==", org_id))
        with _translate_errors(f"read profiles of org {org_id}", "query"):
            for snapshot in query.stream(retry=self._retry, timeout=self._stream_timeout_s):
                document = snapshot.to_dict()
                if document is not None:
                    yield cast(ProfileDocument, document)

    def list_org_ids(self) -> list[str]:
        """Ids of every org whose loyalty settings are not disabled, sorted.

        Streams the collection rather than listing document references: the emulator does not
        serve ListDocuments, and a settings document must be read anyway to see ``disabled``.
        """
        settings = self._client.collection(SETTINGS)
        with _translate_errors("list orgs", "query"):
            enabled = [
                snapshot.id
                for snapshot in settings.stream(retry=self._retry, timeout=self._timeout_s)
                if (snapshot.to_dict() or {}).get("disabled") is not True
            ]
        return sorted(enabled)

    def get_profiles(
        self, org_id: str, customer_ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, ProfileDocument]:
        """Existing profiles by customer id; customers without a profile are left out.

        With ``fields`` Firestore sends only those (a read mask): a sync needs a dozen of a
        profile's fields at most.
        """
        by_document_id = {
            profile_id(org_id, customer_id): customer_id for customer_id in customer_ids
        }
        profiles = self._client.collection(PROFILES)
        wanted = [profiles.document(document_id) for document_id in by_document_id]
        found: dict[int, ProfileDocument] = {}
        for start in range(0, len(wanted), READ_CHUNK):
            chunk = wanted[start : start + READ_CHUNK]
            with _translate_errors(f"read {len(chunk)} profiles of org {org_id}", "read"):
                snapshots = list(
                    self._client.get_all(
                        chunk,
                        field_paths=list(fields) if fields is not None else None,
                        retry=self._retry,
                        timeout=self._timeout_s,
                    )
                )
            for snapshot in snapshots:
                document = snapshot.to_dict()
                if snapshot.exists and document is not None:
                    found[by_document_id[snapshot.id]] = cast(ProfileDocument, document)
        return found

    def write_profiles(self, updates: Sequence[ProfileUpdate]) -> None:
        """Merge-write the updates in batches of at most 500; never touches other fields.

        Each update replaces exactly the top-level fields it names (a map value is replaced, not
        deep-merged) and deletes its ``deletes``; its contact part is merged into
        ``loyalty_contacts`` in the same batch. The writes are idempotent, so a batch retried
        after a timeout that did commit leaves the same documents.
        """
        profiles = self._client.collection(PROFILES)
        writes: list[tuple[DocumentReference, dict[str, Any]]] = []
        for update in updates:
            if not (update.fields or update.deletes):
                continue
            profile = profiles.document(update.document_id)
            writes.append((profile, _merge_data(update.fields, update.deletes)))
            if update.history is not None:
                entry = profile.collection(HISTORY).document(history_id(update.history))
                writes.append((entry, dict(update.history)))
            if update.contact is not None:
                contact = self._client.collection(CONTACTS).document(update.document_id)
                writes.append((contact, dict(update.contact)))
        for start in range(0, len(writes), MAX_BATCH_WRITES):
            chunk = writes[start : start + MAX_BATCH_WRITES]
            self._merge_write(f"write {len(chunk)} profiles", chunk)

    def write_run_summary(self, run_id: str, summary: RunSummaryDocument) -> None:
        """Store a run's summary at ``loyalty_sync_runs/{runId}``, replacing the fields it names.

        Top-level merge, so a summary written in stages keeps earlier fields while a nested count
        written again is replaced whole rather than mixed with its stale keys.
        """
        reference = self._client.collection(RUN_SUMMARIES).document(run_id)
        self._merge_write(f"write summary of run {run_id}", [(reference, dict(summary))])

    def _merge_write(
        self, action: str, writes: Sequence[tuple[DocumentReference, dict[str, Any]]]
    ) -> None:
        """Commit one batch that sets each document's top-level fields and leaves the rest."""
        batch = self._client.batch()
        # The writes ``batch.set(reference, data, merge=[top-level paths])`` would add, built
        # without its per-value cost (``firestore_writes``).
        batch._add_write_pbs(
            [merge_write_pb(reference._document_path, data) for reference, data in writes]
        )
        with _translate_errors(action, "write"):
            batch.commit(retry=self._retry, timeout=self._timeout_s)

    def list_running_runs(self) -> list[RunSummaryDocument]:
        """Summaries still marked ``running`` (a finished run replaces its status)."""
        runs = self._client.collection(RUN_SUMMARIES)
        query = runs.where(filter=FieldFilter("status", "==", RunStatus.RUNNING.value))
        with _translate_errors("list running runs", "query"):
            return [
                cast(RunSummaryDocument, {**(snapshot.to_dict() or {}), "runId": snapshot.id})
                for snapshot in query.stream(retry=self._retry, timeout=self._timeout_s)
            ]

    def get_run_summary(self, run_id: str) -> RunSummaryDocument | None:
        """A run's summary document, or None."""
        reference = self._client.collection(RUN_SUMMARIES).document(run_id)
        with _translate_errors(f"read summary of run {run_id}", "read"):
            snapshot = reference.get(retry=self._retry, timeout=self._timeout_s)
        document = snapshot.to_dict() if snapshot.exists else None
        return cast(RunSummaryDocument | None, document)


def history_id(entry: HistoryEntry) -> str:
    """A history entry's document id: its time (sorting as it reads) and run, so that a write
    retried after a timeout replaces the entry instead of adding a second one."""
    at = entry.get("at")
    stamp = at.strftime("%Y%m%dT%H%M%S%f") if isinstance(at, datetime) else str(at)
    return f"{stamp}_{entry.get('runId') or 'single'}"


def delete_documents(
    client: firestore.Client, references: Sequence[Any], what: str, *, timeout_s: float = 10.0
) -> int:
    """Delete the documents of ``references`` (at most ``MAX_BATCH_WRITES``) in one batched
    write; how many."""
    if not references:
        return 0
    batch = client.batch()
    for reference in references:
        batch.delete(reference)
    with _translate_errors(f"delete {len(references)} {what}", "write"):
        batch.commit(timeout=timeout_s)
    return len(references)


def _merge_data(fields: ProfileDocument, deletes: Sequence[str]) -> dict[str, Any]:
    """A merge-set payload: the deletes as DELETE_FIELD markers, then the fields (which win)."""
    return {**dict.fromkeys(deletes, firestore.DELETE_FIELD), **fields}


@contextmanager
def _translate_errors(action: str, op: str = "query") -> Iterator[None]:
    """Turn the client's exceptions into the worker's transient/permanent errors; the call is
    timed and counted as a Firestore ``op`` (read, write or query).

    gRPC status errors (connection refused included) arrive already converted by api_core into
    ``GoogleAPICallError`` subclasses, and a spent retry budget as ``RetryError``.
    """
    try:
        with metrics.firestore_operation(op):
            yield
    except api_exceptions.GoogleAPIError as exc:
        raise _classify(action, exc) from exc
    except (auth_exceptions.TransportError, ConnectionError, TimeoutError) as exc:
        raise TransientError(_SERVICE, f"{action}: {exc}") from exc
    except auth_exceptions.GoogleAuthError as exc:
        raise PermanentError(_SERVICE, f"{action}: credentials: {exc}") from exc


def _classify(action: str, exc: Exception) -> TransientError | PermanentError:
    if isinstance(exc, api_exceptions.RetryError):
        cause = exc.cause if exc.cause is not None else exc
        return TransientError(_SERVICE, f"{action}: gave up retrying: {_describe(cause)}")
    if isinstance(exc, _TRANSIENT_API_ERRORS):
        return TransientError(_SERVICE, f"{action}: {_describe(exc)}")
    return PermanentError(_SERVICE, f"{action}: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    """The error's class and first line: gRPC messages can run to many lines of debug detail."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
