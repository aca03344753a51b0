"""Markitbot's accounts in Firebase Authentication (``ports.people.Accounts``), through the
Firebase Admin SDK.

Each ``FirebaseAccounts`` has an Admin SDK app of its own for its project (two side by side,
two projects in a test, never share one), closed by ``close()``. Production runs on the
process's Application Default Credentials; with ``FIREBASE_AUTH_EMULATOR_HOST`` set the Admin
SDK talks to Firebase's Auth emulator instead and takes its unsigned tokens at their word, which
is why an emulator is refused for any project but a ``demo-`` one (and a ``demo-`` project,
which exists only in the emulators, without one): ``AccountsMisconfigured``, at start-up.

A token is as good as a password while it lasts: nothing here logs one, and no Admin SDK error
(whose message may quote the token) is chained to what ``verify`` raises. Each refusal says in
words what the person can do about it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import uuid
from typing import TYPE_CHECKING, Final, NamedTuple

import firebase_admin
from firebase_admin import auth, exceptions

from loyalty_worker.errors import AuthError, PermanentError, TransientError
from loyalty_worker.names import AUTH_EMULATOR_HOST_VAR
from loyalty_worker.ports.people import Account, SignInRefused

if TYPE_CHECKING:
    from loyalty_worker.config import Settings

SERVICE: Final = "firebase_auth"
ISSUER: Final = "https://securetoken.google.com/"

EXPIRED: Final = "your sign-in expired; sign in again"
REVOKED: Final = (
    "your sign-in was ended (you were signed out everywhere, or your password changed); "
    "sign in again"
)
OTHER_PROJECT: Final = (
    "this sign-in was made for another Firebase project than the dashboard's; sign in again "
    "on the dashboard's own sign-in page"
)
DISABLED: Final = "your Markitbot account is disabled; ask a Markitbot administrator to enable it"
NO_ACCOUNT: Final = "your Markitbot account no longer exists; ask a Markitbot administrator"
MALFORMED: Final = "this sign-in could not be read (it is not a Firebase ID token); sign in again"
NO_EMAIL: Final = (
    "your Markitbot account has no e-mail address, which the dashboard names people by; sign in "
    "with an account that has one"
)

# Firebase answering "not now": worth trying again.
_UNREACHABLE = (
    exceptions.UnavailableError,
    exceptions.DeadlineExceededError,
    exceptions.InternalError,
    exceptions.UnknownError,  # CertificateFetchError too: Google's keys could not be fetched
    exceptions.ResourceExhaustedError,
    exceptions.AbortedError,
)


class AccountsMisconfigured(ValueError):
    """The Firebase project and the Auth emulator setting do not go together."""


def check_project(project_id: str, emulator_host: str | None) -> None:
    """AccountsMisconfigured unless the project is a ``demo-`` one exactly when an emulator is
    named: the Admin SDK accepts an emulator's unsigned tokens for any project it is given."""
    demo = project_id.startswith("demo-")
    if emulator_host and not demo:
        raise AccountsMisconfigured(
            f"{AUTH_EMULATOR_HOST_VAR} is set but LOYALTY_FIREBASE_PROJECT_ID is {project_id!r}: "
            "the Admin SDK would accept the emulator's unsigned tokens for a real project. "
            "Unset FIREBASE_AUTH_EMULATOR_HOST in production; locally, use a demo-... project"
        )
    if demo and not emulator_host:
        raise AccountsMisconfigured(
            f"LOYALTY_FIREBASE_PROJECT_ID is {project_id!r}, a project that exists only in "
            f"Firebase's emulators, but {AUTH_EMULATOR_HOST_VAR} is unset: set Markitbot's project "
            "id, or point FIREBASE_AUTH_EMULATOR_HOST at an emulator"
        )


class FirebaseAccounts:
    """``ports.people.Accounts`` over Firebase Authentication, for one project."""

    def __init__(self, project_id: str, *, timeout_s: float = 10.0) -> None:
        """An Admin SDK app of its own for ``project_id``; AccountsMisconfigured when the
        project and ``FIREBASE_AUTH_EMULATOR_HOST`` do not go together (``check_project``).
        ``timeout_s``: each call to Firebase (the revocation check of ``verify``, ``by_email``)."""
        check_project(project_id, os.environ.get(AUTH_EMULATOR_HOST_VAR))
        self.project_id = project_id
        self._app = firebase_admin.initialize_app(
            options={"projectId": project_id, "httpTimeout": timeout_s},
            name=f"loyalty-accounts-{project_id}-{uuid.uuid4().hex[:12]}",
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> FirebaseAccounts:
        """The accounts of ``LOYALTY_FIREBASE_PROJECT_ID``, each call within
        ``LOYALTY_HTTP_TIMEOUT_S``; AccountsMisconfigured as ``__init__`` says."""
        return cls(settings.firebase_project_id, timeout_s=settings.http_timeout_s)

    def verify(self, id_token: str) -> Account:
        """The account the ID token was issued to: signed by Google for this project, not
        expired, not revoked, of an account still enabled (one call to Firebase, the
        revocation check). SignInRefused with its reason, TransientError when Firebase does
        not answer."""
        # The Admin SDK checks the expiry of Google-signed tokens only: it takes an emulator's
        # unsigned ones as they are, and would call an old one revoked (signed in before its
        # account last changed) rather than expired. So a past expiry refuses a token here,
        # first, whoever signed it: unverified claims may refuse a token, never admit one.
        claimed = _unverified_claims(id_token)
        if claimed is not None and _expired(claimed.expires):
            raise SignInRefused(EXPIRED)
        try:
            claims = auth.verify_id_token(id_token, app=self._live_app(), check_revoked=True)
        except auth.ExpiredIdTokenError:
            raise SignInRefused(EXPIRED) from None
        except auth.RevokedIdTokenError:
            raise SignInRefused(REVOKED) from None
        except auth.UserDisabledError:
            raise SignInRefused(DISABLED) from None
        except auth.UserNotFoundError:
            raise SignInRefused(NO_ACCOUNT) from None
        except auth.InvalidIdTokenError:
            raise SignInRefused(self._invalid_reason(claimed)) from None
        except exceptions.FirebaseError as exc:
            raise _failure(exc, "check a sign-in") from None
        except ValueError:  # not a string, or empty
            raise SignInRefused(MALFORMED) from None
        expires = claims.get("exp")
        if not isinstance(expires, int | float):
            raise SignInRefused(MALFORMED)
        if _expired(expires):
            raise SignInRefused(EXPIRED)
        email = claims.get("email")
        if not isinstance(email, str) or not email:
            raise SignInRefused(NO_EMAIL)
        return Account(uid=str(claims["uid"]), email=email)

    def by_email(self, email: str) -> Account | None:
        """The account with this e-mail address, or None (TransientError when Firebase does
        not answer)."""
        try:
            user = auth.get_user_by_email(email, app=self._live_app())
        except auth.UserNotFoundError:
            return None
        except exceptions.FirebaseError as exc:
            raise _failure(exc, "look an account up") from None
        except ValueError:  # not an e-mail address: no account has it
            return None
        return Account(
            uid=str(user.uid), email=str(user.email or email), disabled=bool(user.disabled)
        )

    def close(self) -> None:
        """Delete its Admin SDK app; safe to call twice."""
        if self._app is not None:
            firebase_admin.delete_app(self._app)
            self._app = None

    def _live_app(self) -> firebase_admin.App:
        if self._app is None:  # the Admin SDK would quietly take its default app instead
            raise RuntimeError("these FirebaseAccounts were closed")
        return self._app

    def _invalid_reason(self, claimed: _Claimed | None) -> str:
        """Why a token the Admin SDK found invalid is: made for another project (its audience
        or issuer names one), or unreadable."""
        if claimed is None:
            return MALFORMED
        audience, issuer = claimed.audience, claimed.issuer
        if isinstance(audience, str) and audience and audience != self.project_id:
            return OTHER_PROJECT
        if isinstance(issuer, str) and issuer.startswith(ISSUER):
            return OTHER_PROJECT if issuer != ISSUER + self.project_id else MALFORMED
        return MALFORMED


class _Claimed(NamedTuple):
    """What a token claims, unverified: only ever a reason to refuse it, or to say why."""

    audience: object
    issuer: object
    expires: object


def _unverified_claims(id_token: str) -> _Claimed | None:
    """The ``aud``, ``iss`` and ``exp`` a token claims, unverified; None when it is no JWT."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return _Claimed(claims.get("aud"), claims.get("iss"), claims.get("exp"))
    except (IndexError, ValueError, AttributeError, binascii.Error):
        return None


def _expired(expires: object) -> bool:
    """Whether an ``exp`` claim (seconds since the epoch) is a time, and past."""
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        return False
    return expires <= time.time()


def _failure(exc: exceptions.FirebaseError, what: str) -> Exception:
    """What a Firebase failure is to the caller: TransientError when Firebase did not answer,
    AuthError when it refused the process's credentials, PermanentError otherwise. Only the
    error's code is kept: its message may quote what was sent."""
    if isinstance(exc, _UNREACHABLE):
        return TransientError(SERVICE, f"Firebase Authentication did not {what} ({exc.code})")
    if isinstance(exc, exceptions.UnauthenticatedError | exceptions.PermissionDeniedError):
        return AuthError(SERVICE, f"Firebase refused this process's credentials ({exc.code})")
    return PermanentError(SERVICE, f"Firebase Authentication could not {what} ({exc.code})")
