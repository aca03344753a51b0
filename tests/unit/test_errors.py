"""The error tree: every error crosses processes (Celery pickles it) with its reason and text."""

from __future__ import annotations

import pickle

import pytest

from loyalty_worker.errors import (
    AuthError,
    DeadlineExceeded,
    LoyaltyError,
    MalformedRecord,
    PermanentError,
    PhoneNotKept,
    RateLimited,
    SettingsInvalid,
    TransientError,
    UnknownOrg,
)

ERRORS: list[tuple[LoyaltyError, str, str]] = [
    (TransientError("alpine", "503"), "alpine_unavailable", "alpine: 503"),
    (RateLimited("alleaves", "429", 2.5), "alleaves_unavailable", "alleaves: 429"),
    (
        DeadlineExceeded("chunk", 120.0),
        "deadline_exceeded",
        "deadline: chunk: not done within 120 s",
    ),
    (PermanentError("alpine", "400"), "alpine_rejected", "alpine: 400"),
    (AuthError("alleaves", "401"), "alleaves_auth", "alleaves: 401"),
    (
        MalformedRecord("alleaves", "order", "17", "no total", customer_id=4),
        "malformed",
        "alleaves: malformed order 17: no total",
    ),
    (
        SettingsInvalid("org-1", "tiers", "not a list"),
        "settings_invalid",
        "settings: org org-1: loyalty settings field 'tiers': not a list",
    ),
    (
        UnknownOrg("org-9"),
        "unknown_org",
        "settings: unknown org 'org-9': no loyalty settings document",
    ),
    (
        PhoneNotKept("r1", 8),
        "phone_not_kept",
        "run_state: run r1: customer 8: its phone is no longer kept",
    ),
]


@pytest.mark.parametrize(
    ("error", "reason", "text"), ERRORS, ids=[type(e).__name__ for e, _, _ in ERRORS]
)
def test_an_error_pickles_with_its_reason_and_text(
    error: LoyaltyError, reason: str, text: str
) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes, as Celery moves them)
    assert type(copy) is type(error)
    assert (copy.args, copy.reason, str(copy)) == (error.args, reason, text)
    assert copy.__dict__ == error.__dict__
