"""One set of MemberStore checks, run over the in-memory fake and the Firestore store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from google.cloud import firestore

from loyalty_worker.adapters.members import MEMBERS, FirestoreMemberStore
from loyalty_worker.domain.access import Member, Role, member_id
from loyalty_worker.ports.people import MemberStore
from tests.fake_people import FakeMemberStore

ORG = "org-people"
AT = datetime(2026, 3, 1, 9, 15, 30, 123000, tzinfo=UTC)


@dataclass
class Stores:
    """The store under test, and a way to store a document as is (one no grant would write)."""

    members: MemberStore
    put_document: Callable[[str, dict[str, Any]], None]


@pytest.fixture(params=["fake", pytest.param("firestore", marks=pytest.mark.integration)])
def stores(request: pytest.FixtureRequest) -> Stores:
    if request.param == "fake":
        fake = FakeMemberStore()
        return Stores(fake, fake.documents.__setitem__)
    client = cast(firestore.Client, request.getfixturevalue("firestore_client"))

    def put_document(document_id: str, document: dict[str, Any]) -> None:
        client.collection(MEMBERS).document(document_id).set(document)

    return Stores(FirestoreMemberStore(client), put_document)


def member(uid: str, email: str, role: Role, *, org: str = ORG, hours: int = 0) -> Member:
    return Member(org, uid, email, role, "cli:root", AT + timedelta(hours=hours))


def test_a_membership_reads_back_whole_under_the_person_and_the_org(stores: Stores) -> None:
    ann = member("u-ann", "ann@example.com", Role.REVIEWER)

    stores.members.put_member(ann)

    assert stores.members.roles_of("u-ann") == {ORG: Role.REVIEWER}
    [read] = stores.members.members_of(ORG)
    assert read == ann
    assert read.granted_at == AT and read.granted_at.utcoffset() == timedelta(0)


def test_a_person_has_a_role_in_each_of_their_orgs_and_others_are_apart(stores: Stores) -> None:
    stores.members.put_member(member("u-ann", "ann@example.com", Role.ADMIN))
    stores.members.put_member(member("u-ann", "ann@example.com", Role.VIEWER, org="org-2"))
    stores.members.put_member(member("u-bob", "bob@example.com", Role.VIEWER, org="org-2"))

    assert stores.members.roles_of("u-ann") == {ORG: Role.ADMIN, "org-2": Role.VIEWER}
    assert stores.members.roles_of("u-bob") == {"org-2": Role.VIEWER}
    assert stores.members.roles_of("u-nobody") == {}
    assert [m.uid for m in stores.members.members_of(ORG)] == ["u-ann"]
    assert stores.members.members_of("org-none") == []


def test_an_org_people_come_by_email(stores: Stores) -> None:
    for uid, email in (("u-3", "cy@example.com"), ("u-1", "Ann@example.com"), ("u-2", "b@x.io")):
        stores.members.put_member(member(uid, email, Role.VIEWER))

    assert [m.email for m in stores.members.members_of(ORG)] == [
        "Ann@example.com",
        "b@x.io",
        "cy@example.com",
    ]


def test_a_second_put_replaces_the_role_and_the_grant(stores: Stores) -> None:
    stores.members.put_member(member("u-ann", "ann@example.com", Role.ADMIN))
    lowered = Member(ORG, "u-ann", "ann@example.com", Role.VIEWER, "cli:bob", AT + timedelta(1))

    stores.members.put_member(lowered)

    assert stores.members.members_of(ORG) == [lowered]
    assert stores.members.roles_of("u-ann") == {ORG: Role.VIEWER}


def test_remove_says_whether_there_was_a_membership(stores: Stores) -> None:
    stores.members.put_member(member("u-ann", "ann@example.com", Role.ADMIN))
    stores.members.put_member(member("u-ann", "ann@example.com", Role.ADMIN, org="org-2"))

    assert stores.members.remove_member(ORG, "u-ann") is True
    assert stores.members.remove_member(ORG, "u-ann") is False
    assert stores.members.remove_member(ORG, "u-nobody") is False
    assert stores.members.roles_of("u-ann") == {"org-2": Role.ADMIN}


def test_a_document_that_grants_nothing_is_skipped(stores: Stores) -> None:
    stores.members.put_member(member("u-ann", "ann@example.com", Role.ADMIN))
    good = {"orgId": ORG, "email": "x@example.com", "grantedBy": "cli:root", "grantedAt": AT}
    stores.put_document(member_id(ORG, "u-odd"), {**good, "uid": "u-odd", "role": "owner"})
    stores.put_document(member_id(ORG, "u-bare"), {"orgId": ORG, "uid": "u-bare"})

    assert [m.uid for m in stores.members.members_of(ORG)] == ["u-ann"]
    assert stores.members.roles_of("u-odd") == {}
    assert stores.members.roles_of("u-bare") == {}


@pytest.mark.integration
def test_a_skipped_document_is_logged_by_its_id_only(
    firestore_client: firestore.Client, caplog: pytest.LogCaptureFixture
) -> None:
    store = FirestoreMemberStore(firestore_client)
    firestore_client.collection(MEMBERS).document(member_id(ORG, "u-odd")).set(
        {
            "orgId": ORG,
            "uid": "u-odd",
            "email": "private@example.com",
            "role": "owner",
            "grantedBy": "cli:root",
            "grantedAt": AT,
        }
    )

    with caplog.at_level(logging.WARNING, logger="loyalty_worker.adapters.members"):
        assert store.roles_of("u-odd") == {}

    skipped = "grants nothing (an unknown role or a field missing): skipped"
    assert [r.getMessage() for r in caplog.records] == [f"loyalty_members/{ORG}_u-odd {skipped}"]
