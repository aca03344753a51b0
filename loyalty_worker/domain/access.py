"""Who may do what in the dashboard: a person's role in an org, and the actions each allows.

A person (a Markitbot account, signed in with Firebase Authentication) holds one role in each
org they belong to, kept in ``loyalty_members/{orgId}_{uid}`` (``Member``). ``ALLOWED`` is the
whole role × action table; the API checks it on every route through one dependency. An API
token is a machine's: it reads, reviews and triggers for its orgs, never sees contact details
(machines get them masked) and never manages people.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


class Role(enum.StrEnum):
    """A person's role in one org, each allowing more than the one before it."""

    VIEWER = "viewer"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class Action(enum.StrEnum):
    """What a route does for an org."""

    READ = "read"  # the pages and their JSON twins, the masked CSV
    SEE_CONTACTS = "see_contacts"  # full phone numbers and e-mail addresses on pages
    REVIEW = "review"  # acknowledge, resolve, undo a discrepancy's review
    TRIGGER = "trigger"  # start a run (full, incremental, dry), Sync Now
    EXPORT_CONTACTS = "export_contacts"  # the enrollment CSV with full contact details
    MANAGE_PEOPLE = "manage_people"  # grant and revoke roles, end a person's sessions


ALLOWED: Mapping[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.REVIEWER: frozenset({Action.READ, Action.SEE_CONTACTS, Action.REVIEW}),
    Role.ADMIN: frozenset(Action),
}

# What an API token (a machine: another service, Prometheus) may do for its orgs.
MACHINE: frozenset[Action] = frozenset({Action.READ, Action.REVIEW, Action.TRIGGER})


def allows(role: Role, action: Action) -> bool:
    return action in ALLOWED[role]


def member_id(org_id: str, uid: str) -> str:
    """The id of a membership's document."""
    return f"{org_id}_{uid}"


@dataclass(frozen=True, slots=True)
class Member:
    """``loyalty_members/{orgId}_{uid}``: one person's role in one org, and who granted it."""

    org_id: str
    uid: str
    email: str
    role: Role
    granted_by: str
    granted_at: datetime


@dataclass(frozen=True, slots=True)
class Person:
    """A signed-in person as the audit names them: their account's uid and e-mail."""

    uid: str
    email: str

    @property
    def audit_name(self) -> str:
        """How audit entries and logs name them (an e-mail cannot hold a newline or a space)."""
        return f"{self.email} ({self.uid})"
