"""``FirebaseAccounts``' mapping of the Admin SDK's answers, over a stand-in for the SDK's calls:
each refusal has its reason, Firebase not answering is a TransientError, and no token or SDK
message travels with what it raises. The real checks run against the emulator
(tests/integration/test_accounts_emulator.py)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from firebase_admin import auth, exceptions

from loyalty_worker.adapters import accounts as adapter
from loyalty_worker.adapters.accounts import AccountsMisconfigured, FirebaseAccounts, check_project
from loyalty_worker.config import Settings
from loyalty_worker.errors import AuthError, PermanentError, TransientError
from loyalty_worker.ports.people import Account, SignInRefused

PROJECT = "demo-unit"
# A port nothing listens on: the Admin SDK is never reached here.
NOWHERE = "127.0.0.1:9"


def token(**claims: Any) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    body = {
        "aud": PROJECT,
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "sub": "uid-1",
        "exp": now + 3600,
        **claims,
    }
    return f"{part({'alg': 'none'})}.{part(body)}.secret-signature"


TOKEN = token()


@pytest.fixture
def accounts(monkeypatch: pytest.MonkeyPatch) -> Iterator[FirebaseAccounts]:
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", NOWHERE)
    made = FirebaseAccounts(PROJECT, timeout_s=1.0)
    try:
        yield made
    finally:
        made.close()


def answer_with(monkeypatch: pytest.MonkeyPatch, outcome: BaseException | dict[str, Any]) -> None:
    """``auth.verify_id_token`` and ``auth.get_user_by_email`` raise ``outcome``, or verify
    returns it as the token's claims."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(auth, "verify_id_token", call)
    monkeypatch.setattr(auth, "get_user_by_email", call)


def refused(accounts: FirebaseAccounts, id_token: str = TOKEN) -> SignInRefused:
    with pytest.raises(SignInRefused) as caught:
        accounts.verify(id_token)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    assert id_token not in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (auth.ExpiredIdTokenError(f"Token expired: {TOKEN}", None), adapter.EXPIRED),
        (auth.RevokedIdTokenError("The Firebase ID token has been revoked."), adapter.REVOKED),
        (auth.UserDisabledError("The user record is disabled."), adapter.DISABLED),
        (auth.UserNotFoundError("No user record found."), adapter.NO_ACCOUNT),
        (
            auth.InvalidIdTokenError(f"Wrong number of segments in token: {TOKEN}"),
            adapter.MALFORMED,
        ),
        (ValueError("ID token must be a non-empty string."), adapter.MALFORMED),
    ],
)
def test_each_refusal_has_its_reason_and_carries_nothing_of_the_sdk(
    accounts: FirebaseAccounts,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    reason: str,
) -> None:
    answer_with(monkeypatch, error)

    assert refused(accounts).reason == reason


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "demo-elsewhere", "iss": "https://securetoken.google.com/demo-elsewhere"},
        {"iss": "https://securetoken.google.com/demo-elsewhere"},
    ],
)
def test_another_projects_token_is_named_so(
    accounts: FirebaseAccounts, monkeypatch: pytest.MonkeyPatch, claims: dict[str, str]
) -> None:
    answer_with(monkeypatch, auth.InvalidIdTokenError('incorrect "aud" (audience) claim'))

    assert refused(accounts, token(**claims)).reason == adapter.OTHER_PROJECT


def test_a_past_expiry_refuses_before_firebase_is_asked(
    accounts: FirebaseAccounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer_with(monkeypatch, AssertionError("Firebase was asked"))

    assert refused(accounts, token(exp=int(time.time()) - 1)).reason == adapter.EXPIRED


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"uid": "u", "email": "a@example.com", "exp": time.time() - 1}, adapter.EXPIRED),
        ({"uid": "u", "email": "a@example.com"}, adapter.MALFORMED),
        ({"uid": "u", "exp": time.time() + 3600}, adapter.NO_EMAIL),
    ],
)
def test_verified_claims_are_still_checked(
    accounts: FirebaseAccounts,
    monkeypatch: pytest.MonkeyPatch,
    claims: dict[str, Any],
    reason: str,
) -> None:
    answer_with(monkeypatch, claims)

    assert refused(accounts).reason == reason


def test_verified_claims_name_the_account(
    accounts: FirebaseAccounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = {"uid": "uid-1", "email": "a@example.com", "exp": time.time() + 60}
    answer_with(monkeypatch, claims)

    assert accounts.verify(TOKEN) == Account("uid-1", "a@example.com")


FAILURES: list[tuple[Callable[[], Exception], type[Exception]]] = [
    (lambda: exceptions.UnavailableError(f"connection refused {TOKEN}"), TransientError),
    (lambda: exceptions.DeadlineExceededError("timed out"), TransientError),
    (lambda: exceptions.InternalError("500"), TransientError),
    (lambda: auth.CertificateFetchError("no keys", None), TransientError),
    (lambda: exceptions.PermissionDeniedError("no rights"), AuthError),
    (lambda: exceptions.UnauthenticatedError("no credentials"), AuthError),
    (lambda: exceptions.FailedPreconditionError("odd"), PermanentError),
]


@pytest.mark.parametrize(("make", "kind"), FAILURES)
@pytest.mark.parametrize("call", ["verify", "by_email"])
def test_firebase_failing_is_an_error_of_the_service_not_a_refusal(
    accounts: FirebaseAccounts,
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[[], Exception],
    kind: type[Exception],
    call: str,
) -> None:
    answer_with(monkeypatch, make())

    with pytest.raises(kind) as caught:
        accounts.verify(TOKEN) if call == "verify" else accounts.by_email("a@example.com")

    assert type(caught.value) is kind
    assert TOKEN not in str(caught.value) and caught.value.__cause__ is None
    assert isinstance(caught.value, PermanentError | TransientError)
    assert caught.value.service == "firebase_auth"


def test_a_firebase_that_does_not_answer_is_transient(accounts: FirebaseAccounts) -> None:
    with pytest.raises(TransientError) as caught:
        accounts.verify(TOKEN)  # the revocation check finds nothing listening

    assert caught.value.reason == "firebase_auth_unavailable"
    with pytest.raises(TransientError):
        accounts.by_email("a@example.com")


def test_no_such_email_is_none(accounts: FirebaseAccounts, monkeypatch: pytest.MonkeyPatch) -> None:
    answer_with(monkeypatch, auth.UserNotFoundError("No user record found."))

    assert accounts.by_email("nobody@example.com") is None


def test_a_closed_adapter_never_falls_back_to_the_default_app(
    accounts: FirebaseAccounts,
) -> None:
    accounts.close()
    accounts.close()

    with pytest.raises(RuntimeError, match="closed"):
        accounts.verify(TOKEN)


@pytest.mark.parametrize(
    ("project", "emulator", "refused"),
    [
        ("demo-markitbot", "127.0.0.1:9099", False),
        ("markitbot-prod", None, False),
        ("markitbot-prod", "127.0.0.1:9099", True),
        ("demo-markitbot", None, True),
        ("demo-markitbot", "", True),
    ],
)
def test_the_project_and_the_emulator_go_together(
    project: str, emulator: str | None, refused: bool
) -> None:
    if refused:
        with pytest.raises(AccountsMisconfigured):
            check_project(project, emulator)
    else:
        check_project(project, emulator)


def test_from_settings_refuses_a_real_project_with_the_emulator_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", NOWHERE)

    with pytest.raises(AccountsMisconfigured) as caught:
        FirebaseAccounts.from_settings(Settings(firebase_project_id="markitbot-prod"))

    assert "FIREBASE_AUTH_EMULATOR_HOST" in str(caught.value)
    assert "demo-" in str(caught.value)
