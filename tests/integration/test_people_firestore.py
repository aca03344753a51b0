"""`loyalty-worker people` over the Firestore emulator: a grant, the listing and a revoke round-trip
through the real memberships and the orgs' real settings documents (Markitbot's accounts faked)."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime

import pytest
from google.cloud import firestore

from loyalty_worker import cli
from loyalty_worker.adapters.firestore import SETTINGS, FirestoreProfileStore
from loyalty_worker.adapters.members import MEMBERS, FirestoreMemberStore
from loyalty_worker.cli import people
from loyalty_worker.domain.access import Role
from tests.fake_people import FakeAccounts

pytestmark = pytest.mark.integration

ORG = "org-people"


def test_grant_list_revoke_round_trip(
    firestore_client: firestore.Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    firestore_client.collection(SETTINGS).document(ORG).set({"settings": {"pointsPerDollar": 1}})
    members = FirestoreMemberStore(firestore_client)
    accounts = FakeAccounts()
    accounts.add("ann@example.com", uid="u-ann")
    accounts.add("bob@example.com", uid="u-bob")
    monkeypatch.setattr(
        people, "_stores", lambda _: (members, FirestoreProfileStore(firestore_client))
    )
    monkeypatch.setattr(people, "_accounts", lambda _: accounts)
    monkeypatch.setattr(getpass, "getuser", lambda: "ops")
    before = datetime.now(UTC)

    granted = [
        cli.main(["people", "grant", "Ann@Example.com", "--org", ORG, "--role", "admin"]),
        cli.main(["people", "grant", "bob@example.com", "--org", ORG, "--role", "reviewer"]),
        cli.main(["people", "grant", "bob@example.com", "--org", "org-none", "--role", "admin"]),
    ]
    capsys.readouterr()
    listed = cli.main(["people", "list", "--org", ORG])
    table = capsys.readouterr().out.splitlines()
    revoked = cli.main(["people", "revoke", "bob@example.com", "--org", ORG])
    last_admin = cli.main(["people", "revoke", "ann@example.com", "--org", ORG])

    assert granted == [0, 0, 2]
    assert listed == 0
    assert [line.split()[:3] for line in table] == [
        ["E-MAIL", "ROLE", "GRANTED"],
        ["ann@example.com", "admin", "cli:ops"],
        ["bob@example.com", "reviewer", "cli:ops"],
    ]
    assert (revoked, last_admin) == (0, 2)
    assert members.roles_of("u-ann") == {ORG: Role.ADMIN}
    assert members.roles_of("u-bob") == {}
    stored = firestore_client.collection(MEMBERS).document(f"{ORG}_u-ann").get().to_dict()
    assert stored is not None
    assert {k: v for k, v in stored.items() if k != "grantedAt"} == {
        "orgId": ORG,
        "uid": "u-ann",
        "email": "ann@example.com",
        "role": "admin",
        "grantedBy": "cli:ops",
    }
    assert before <= stored["grantedAt"] <= datetime.now(UTC)
