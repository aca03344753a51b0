"""``FirebaseAccounts`` against Firebase's real Auth emulator: the Admin SDK's own checks, each
refusal in words a person can act on.

Tokens come from the emulator as the browser gets them (a sign-in with an e-mail and a
password); the expired one is the emulator's own kind of token (unsigned) with its times moved
into the past, since the emulator never issues one.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import firebase_admin
import pytest
from firebase_admin import auth

from loyalty_worker.adapters import accounts as adapter
from loyalty_worker.adapters.accounts import AccountsMisconfigured, FirebaseAccounts
from loyalty_worker.config import Settings
from loyalty_worker.ports.people import Account, SignInRefused
from tests.fixtures.auth_emulator import EmulatedProject

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(firebase_project: EmulatedProject) -> Iterator[Any]:
    """An Admin SDK app of the test's project, to do what an administrator would."""
    app = firebase_admin.initialize_app(
        options={"projectId": firebase_project.project_id}, name=uuid.uuid4().hex
    )
    try:
        yield app
    finally:
        firebase_admin.delete_app(app)


def refusal(accounts: FirebaseAccounts, token: str) -> str:
    with pytest.raises(SignInRefused) as caught:
        accounts.verify(token)
    # Nothing of the Admin SDK's error (whose message may quote the token) comes with it.
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert not token or token not in str(caught.value)
    return caught.value.reason


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return claims


def unsigned(claims: dict[str, Any]) -> str:
    """A token as the emulator makes them: ``alg: none``, no signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_a_signed_in_account_verifies_to_its_uid_and_email(
    firebase_project: EmulatedProject, firebase_accounts: FirebaseAccounts
) -> None:
    uid = firebase_project.create_account("ada@example.com")
    token = firebase_project.sign_in("ada@example.com")

    assert firebase_accounts.verify(token) == Account(uid=uid, email="ada@example.com")


def test_a_revoked_sign_in_is_refused_and_a_new_one_is_not(
    firebase_project: EmulatedProject, firebase_accounts: FirebaseAccounts, admin: Any
) -> None:
    uid = firebase_project.create_account("bo@example.com")
    token = firebase_project.sign_in("bo@example.com")
    # Revocation holds for tokens signed in before its second: wait for the next one.
    signed_in_at = claims_of(token)["auth_time"]
    while time.time() < signed_in_at + 1:
        time.sleep(0.05)

    auth.revoke_refresh_tokens(uid, app=admin)

    assert refusal(firebase_accounts, token) == adapter.REVOKED
    fresh = firebase_project.sign_in("bo@example.com")
    assert firebase_accounts.verify(fresh).uid == uid


def test_a_sign_in_to_another_project_is_refused(
    auth_emulator: str, firebase_accounts: FirebaseAccounts
) -> None:
    other = EmulatedProject(auth_emulator, f"demo-other-{uuid.uuid4().hex[:8]}")
    other.create_account("cy@example.com")
    token = other.sign_in("cy@example.com")

    assert refusal(firebase_accounts, token) == adapter.OTHER_PROJECT


def test_an_expired_sign_in_is_refused(
    firebase_project: EmulatedProject, firebase_accounts: FirebaseAccounts
) -> None:
    firebase_project.create_account("di@example.com")
    claims = claims_of(firebase_project.sign_in("di@example.com"))
    hour_ago = int(time.time()) - 3600
    expired = unsigned(
        {**claims, "auth_time": hour_ago - 60, "iat": hour_ago - 60, "exp": hour_ago}
    )

    assert refusal(firebase_accounts, expired) == adapter.EXPIRED


def test_a_disabled_account_is_refused(
    firebase_project: EmulatedProject, firebase_accounts: FirebaseAccounts, admin: Any
) -> None:
    uid = firebase_project.create_account("ed@example.com")
    token = firebase_project.sign_in("ed@example.com")

    auth.update_user(uid, disabled=True, app=admin)

    assert refusal(firebase_accounts, token) == adapter.DISABLED


def test_a_deleted_account_is_refused(
    firebase_project: EmulatedProject, firebase_accounts: FirebaseAccounts, admin: Any
) -> None:
    uid = firebase_project.create_account("flo@example.com")
    token = firebase_project.sign_in("flo@example.com")

    auth.delete_user(uid, app=admin)

    assert refusal(firebase_accounts, token) == adapter.NO_ACCOUNT


@pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c", "e30.e30.e30"])
def test_what_is_no_token_is_refused_as_unreadable(
    firebase_accounts: FirebaseAccounts, token: str
) -> None:
    assert refusal(firebase_accounts, token) == adapter.MALFORMED


def test_by_email_finds_an_account_or_none(
    firebase_project: EmulatedProject, firebase_accounts: FirebaseAccounts, admin: Any
) -> None:
    uid = firebase_project.create_account("gus@example.com")
    off = firebase_project.create_account("hal@example.com")
    auth.update_user(off, disabled=True, app=admin)

    assert firebase_accounts.by_email("gus@example.com") == Account(uid, "gus@example.com")
    assert firebase_accounts.by_email("hal@example.com") == Account(
        off, "hal@example.com", disabled=True
    )
    assert firebase_accounts.by_email("nobody@example.com") is None
    assert firebase_accounts.by_email("not an address") is None


def test_from_settings_refuses_a_real_project_with_the_emulator(auth_emulator: str) -> None:
    with pytest.raises(AccountsMisconfigured, match="FIREBASE_AUTH_EMULATOR_HOST is set"):
        FirebaseAccounts.from_settings(Settings(firebase_project_id="markitbot-prod"))


def test_from_settings_refuses_a_demo_project_without_the_emulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)

    with pytest.raises(AccountsMisconfigured, match="exists only in Firebase's emulators"):
        FirebaseAccounts.from_settings(Settings(firebase_project_id="demo-markitbot"))


def test_from_settings_takes_the_demo_project_with_the_emulator(
    firebase_project: EmulatedProject,
) -> None:
    uid = firebase_project.create_account("ivy@example.com")
    accounts = FirebaseAccounts.from_settings(
        Settings(firebase_project_id=firebase_project.project_id)
    )
    try:
        assert accounts.verify(firebase_project.sign_in("ivy@example.com")).uid == uid
    finally:
        accounts.close()
