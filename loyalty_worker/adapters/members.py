"""People's roles per org in Firestore (``ports.people.MemberStore``).

``loyalty_members/{orgId}_{uid}`` (``domain.access.member_id``) holds one person's role in one
org::

    {orgId, uid, email, role, grantedBy, grantedAt}

Roles live here rather than in Firebase custom claims, which would overwrite Markitbot's own.
Both reads are one equality query (``uid`` for a person's orgs, ``orgId`` for an org's people),
served by Firestore's automatic single-field indexes: no composite index is needed. An org's
people are few, so they are sorted by e-mail here. A stored document whose role is not one of
``Role`` (or that lacks a field) grants nothing: it is skipped, and logged by org and uid only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypedDict

from google.api_core.retry import Retry, if_exception_type
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from loyalty_worker.adapters.firestore import _TRANSIENT_API_ERRORS, _translate_errors
from loyalty_worker.domain.access import Member, Role, member_id

log = logging.getLogger(__name__)

MEMBERS = "loyalty_members"


class MemberDocument(TypedDict):
    """``loyalty_members/{orgId}_{uid}`` as stored."""

    orgId: str
    uid: str
    email: str
    role: str
    grantedBy: str
    grantedAt: datetime


class FirestoreMemberStore:
    """``MemberStore`` over a ``google.cloud.firestore.Client``.

    Every call carries a timeout and a short retry bounded in total time (as the profile
    store's), so an unreachable Firestore surfaces as ``TransientError`` within seconds.
    """

    def __init__(
        self, client: firestore.Client, *, timeout_s: float = 10.0, retry_budget_s: float = 3.0
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._retry = Retry(
            predicate=if_exception_type(*_TRANSIENT_API_ERRORS),
            initial=0.1,
            maximum=1.0,
            multiplier=2.0,
            timeout=retry_budget_s,
        )

    def roles_of(self, uid: str) -> dict[str, Role]:
        query = self._client.collection(MEMBERS).where(filter=FieldFilter("uid", "==", uid))
        with _translate_errors(f"read the roles of {uid}"):
            members = _members(query.stream(retry=self._retry, timeout=self._timeout_s))
        return {member.org_id: member.role for member in members if member.uid == uid}

    def members_of(self, org_id: str) -> list[Member]:
        query = self._client.collection(MEMBERS).where(filter=FieldFilter("orgId", "==", org_id))
        with _translate_errors(f"read the people of org {org_id}"):
            members = _members(query.stream(retry=self._retry, timeout=self._timeout_s))
        return sorted(
            (member for member in members if member.org_id == org_id),
            key=lambda member: (member.email.casefold(), member.uid),
        )

    def put_member(self, member: Member) -> None:
        document: MemberDocument = {
            "orgId": member.org_id,
            "uid": member.uid,
            "email": member.email,
            "role": member.role.value,
            "grantedBy": member.granted_by,
            "grantedAt": member.granted_at,
        }
        reference = self._reference(member.org_id, member.uid)
        # A whole-document set: a grant replaces whatever was there (an unknown role included).
        with _translate_errors(f"grant {member.uid} a role in org {member.org_id}", "write"):
            reference.set(dict(document), retry=self._retry, timeout=self._timeout_s)

    def remove_member(self, org_id: str, uid: str) -> bool:
        reference = self._reference(org_id, uid)
        with _translate_errors(f"read the role of {uid} in org {org_id}", "read"):
            snapshot = reference.get(retry=self._retry, timeout=self._timeout_s)
        if not snapshot.exists:
            return False
        with _translate_errors(f"revoke the role of {uid} in org {org_id}", "write"):
            reference.delete(retry=self._retry, timeout=self._timeout_s)
        return True

    def _reference(self, org_id: str, uid: str) -> Any:
        return self._client.collection(MEMBERS).document(member_id(org_id, uid))


def _members(snapshots: Iterable[Any]) -> list[Member]:
    """The snapshots' memberships; a document that grants nothing is logged (by its id: the org
    and the uid, never the e-mail) and skipped."""
    members = []
    for snapshot in snapshots:
        member = member_from_document(snapshot.to_dict())
        if member is None:
            log.warning(
                "%s/%s grants nothing (an unknown role or a field missing): skipped",
                MEMBERS,
                snapshot.id,
            )
        else:
            members.append(member)
    return members


def member_from_document(document: object) -> Member | None:
    """The membership a stored document holds; None when it holds none: an unknown role, a
    field missing or of the wrong type."""
    if not isinstance(document, dict):
        return None
    org_id, uid, email, role, granted_by = (
        document.get(name) for name in ("orgId", "uid", "email", "role", "grantedBy")
    )
    granted_at = document.get("grantedAt")
    if not (
        isinstance(org_id, str)
        and isinstance(uid, str)
        and isinstance(email, str)
        and isinstance(role, str)
        and isinstance(granted_by, str)
        and isinstance(granted_at, datetime)
        and org_id
        and uid
    ):
        return None
    try:
        return Member(org_id, uid, email, Role(role), granted_by, granted_at)
    except ValueError:
        return None
