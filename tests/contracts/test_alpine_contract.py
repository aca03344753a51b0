"""One set of LoyaltyLookup checks, run over FakeAlpine and the real Alpine IQ client.

The real client talks to the sandbox over HTTP; the fake is loaded with the same generated
contacts. A look-up answers the account's balance, tier, last visit and contact id, no account
is None (Alpine IQ's 404), and the contacts listing holds every contact with its phone
normalised. The client's own concerns (a wrong key, the wallet, retries) follow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from loyalty_worker.devstack import Sandbox
from loyalty_worker.domain.models import AlpineProfile
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.errors import AuthError
from loyalty_worker.ports.sources import AlpineContact, LoyaltyLookup
from tests.contracts.sandbox_clients import alpine_client, session_dataset
from tests.fakes import FakeAlpine


@dataclass
class Lookup:
    lookup: LoyaltyLookup
    contacts: Sequence[Mapping[str, Any]]


@pytest.fixture(params=["fake", pytest.param("sandbox", marks=pytest.mark.integration)])
def alpine(request: pytest.FixtureRequest) -> Lookup:
    if request.param == "fake":
        contacts = session_dataset()["orgs"][0]["alpineContacts"]
        return Lookup(FakeAlpine.from_contacts(contacts), contacts)
    sandbox: Sandbox = request.getfixturevalue("clean_sandbox")
    org = sandbox.dataset()["orgs"][0]
    return Lookup(
        alpine_client(request.getfixturevalue("http"), sandbox, org), org["alpineContacts"]
    )


def expected_profile(contact: Mapping[str, Any]) -> AlpineProfile:
    return AlpineProfile(
        points=contact["points"],
        tier=contact.get("tier") or None,
        last_visit=contact.get("lastVisit"),
        contact_id=str(contact["contactID"]),
    )


def unknown_phone(contacts: Sequence[Mapping[str, Any]]) -> str:
    known = {normalize_phone(c.get("phone")) for c in contacts}
    return next(p for p in (f"555000{n:04d}" for n in range(10_000)) if p not in known)


def test_a_lookup_answers_the_accounts_balance(alpine: Lookup) -> None:
    with_phone = [c for c in alpine.contacts if normalize_phone(c.get("phone"))]
    assert len(with_phone) > 5
    for contact in with_phone[:10]:
        phone = normalize_phone(contact["phone"])
        assert phone is not None
        assert alpine.lookup.lookup(phone) == expected_profile(contact)


def test_no_account_is_none(alpine: Lookup) -> None:
    assert alpine.lookup.lookup(unknown_phone(alpine.contacts)) is None


def test_every_contact_is_listed_with_its_phone_normalised_and_no_balance(
    alpine: Lookup,
) -> None:
    # Alpine IQ's documented listing carries no balances: each one takes a look-up.
    listed = sorted(alpine.lookup.iter_contacts(), key=lambda c: c.contact_id)
    expected = sorted(
        (
            AlpineContact(str(c["contactID"]), normalize_phone(c.get("phone")), None)
            for c in alpine.contacts
        ),
        key=lambda c: c.contact_id,
    )
    assert listed == expected


# --- the real client's own concerns, against the sandbox -----------------------------------


def first_org(sandbox: Sandbox) -> dict[str, Any]:
    org: dict[str, Any] = sandbox.dataset()["orgs"][0]
    return org


@pytest.mark.integration
def test_the_wallet_and_a_wrong_key(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    org = first_org(clean_sandbox)
    client = alpine_client(http, clean_sandbox, org)
    contact = next(c for c in org["alpineContacts"] if c.get("phone"))
    assert client.wallet_points(contact["phone"]) == contact["points"]
    assert client.wallet_points(unknown_phone(org["alpineContacts"])) is None

    with pytest.raises(AuthError) as caught:
        alpine_client(http, clean_sandbox, org, api_key="wrong-key").lookup(contact["phone"])
    assert "wrong-key" not in str(caught.value)
    assert contact["phone"] not in str(caught.value)


@pytest.mark.integration
def test_server_errors_are_retried(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    org = first_org(clean_sandbox)
    clean_sandbox.set_faults(error_rate=0.3)
    client = alpine_client(http, clean_sandbox, org)
    contacts = [c for c in org["alpineContacts"] if c.get("phone")][:25]
    for contact in contacts:
        assert client.lookup(contact["phone"]) == expected_profile(contact)
    assert len(list(client.iter_contacts(limit=100))) == len(org["alpineContacts"])
    assert clean_sandbox.stats()["alpine"]["server_errors"] > 0
