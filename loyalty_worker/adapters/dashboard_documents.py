"""The dashboard's Firestore documents read typed, and the review documents it writes.

A document leaves Firestore as a dict of whatever was stored; ``_Reader`` keeps only the
top-level fields whose value has the type the document's TypedDict declares (a field a person
edited into another type is left out, as if missing), so the services never meet a string where
a count belongs. Reviews and their audit entries go to and come from their documents here.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Generic, TypedDict, TypeVar, cast

from loyalty_worker.domain.profile import HistoryEntry, ProfileDocument
from loyalty_worker.domain.review import AuditEntry, Outcome, Review, ReviewState
from loyalty_worker.domain.run import RunSummaryDocument


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fits(hint: object) -> Callable[[object], bool]:
    """Whether a value is of the declared type ``hint`` (containers by their kind alone)."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        choices = [_fits(arg) for arg in typing.get_args(hint)]
        return lambda value: any(fits(value) for fits in choices)
    if hint is type(None):
        return lambda value: value is None
    kind = typing.get_origin(hint) or hint
    if typing.is_typeddict(kind):
        kind = dict
    if kind is float:
        return lambda value: isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return is_int
    assert isinstance(kind, type), hint
    return lambda value: isinstance(value, kind)


Document = TypeVar("Document", bound=Mapping[str, object])


class _Reader(Generic[Document]):
    """Reads a document as the client hands it into its TypedDict: the declared fields that
    hold their declared type (checked by functions built once per type)."""

    def __init__(self, document_type: type[Document]) -> None:
        hints = typing.get_type_hints(document_type)
        self._checks = {name: _fits(hint) for name, hint in hints.items()}

    def __call__(self, document: Mapping[str, object]) -> Document:
        checks = self._checks
        kept = {k: v for k, v in document.items() if k in checks and checks[k](v)}
        return cast(Document, kept)


class ReviewDocument(TypedDict, total=False):
    """``loyalty_reviews/{orgId}_{customerId}`` as stored (``orgId`` and ``customerId`` too)."""

    state: str
    outcome: str | None
    comment: str | None
    discrepancy: int | None
    loyaltyStatus: str | None
    tier: str | None
    openedAt: str | None
    updatedAt: str | None
    updatedBy: str | None
    changes: int


AuditDocument = TypedDict(
    "AuditDocument",
    {
        "at": str,
        "by": str,
        "from": str | None,
        "to": str,
        "outcome": str | None,
        "comment": str | None,
        "undoes": str | None,
        # When a TTL policy may delete it (``at`` plus the audit's retention).
        "expireAt": datetime,
    },
    total=False,
)


profile_of = _Reader(ProfileDocument)
history_of = _Reader(HistoryEntry)
run_of = _Reader(RunSummaryDocument)
review_fields = _Reader(ReviewDocument)
audit_fields = _Reader(AuditDocument)


def review_document(review: Review) -> ReviewDocument:
    return {
        "state": review.state.value,
        "outcome": None if review.outcome is None else review.outcome.value,
        "comment": review.comment,
        "discrepancy": review.discrepancy,
        "loyaltyStatus": review.loyalty_status,
        "tier": review.tier,
        "openedAt": review.opened_at,
        "updatedAt": review.updated_at,
        "updatedBy": review.updated_by,
        "changes": review.changes,
    }


def review_of(document: ReviewDocument) -> Review:
    """A stored review (read by ``review_fields``: a review without a state reads open)."""
    return Review(
        state=ReviewState.of(document.get("state")),
        outcome=Outcome.of(document.get("outcome")),
        comment=document.get("comment"),
        discrepancy=document.get("discrepancy"),
        loyalty_status=document.get("loyaltyStatus"),
        tier=document.get("tier"),
        opened_at=document.get("openedAt"),
        updated_at=document.get("updatedAt"),
        updated_by=document.get("updatedBy"),
        changes=document.get("changes", 0),
    )


def audit_document(entry: AuditEntry, expire_at: datetime | None = None) -> AuditDocument:
    """An audit entry as stored, with its ``expireAt`` when given."""
    document: AuditDocument = {
        "at": entry.at,
        "by": entry.by,
        "from": entry.from_state,
        "to": entry.to_state,
        "outcome": entry.outcome,
        "comment": entry.comment,
        "undoes": entry.undoes,
    }
    if expire_at is not None:
        document["expireAt"] = expire_at
    return document


def audit_of(document: AuditDocument, entry_id: str = "") -> AuditEntry:
    """A stored audit entry, its id the document's (one a sync wrote before entries had a
    comment has none)."""
    return AuditEntry(
        at=document.get("at", ""),
        by=document.get("by", ""),
        from_state=document.get("from"),
        to_state=document.get("to", ""),
        outcome=document.get("outcome"),
        comment=document.get("comment"),
        id=entry_id,
        undoes=document.get("undoes"),
    )
