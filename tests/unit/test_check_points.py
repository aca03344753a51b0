"""The agent's look-up by phone over working fakes: both views, reconciled, and every gap said."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from loyalty_worker import cli
from loyalty_worker.api import wiring
from loyalty_worker.domain.models import AlpineProfile
from loyalty_worker.domain.phone import phone_hash, phone_key_id
from loyalty_worker.errors import AuthError, TransientError, UnknownOrg
from loyalty_worker.services.lookup.points import InvalidPhone, check_points
from loyalty_worker.services.lookup.points_answer import (
    AlpineView,
    CalculatedView,
    DisplayedView,
    PointsCheck,
)
from tests.fakes import FakeAlpine, QueryableProfileStore

PHONE = "5551234567"
KEY = b"phone-hash-key-for-tests-0001"
SYNCED_AT = datetime(2026, 1, 30, 2, 0, tzinfo=UTC)


def profile(customer_id: int, **fields: Any) -> dict[str, Any]:
    """A profile as the sync writes it (the seed's example: 450 from orders, 475 at Alpine)."""
    return {
        "orgId": "org-1",
        "alleavesCustomerId": customer_id,
        "firstName": "Ana",
        "points": 475,
        "pointsFromOrders": 450,
        "pointsFromAlpine": 475,
        "tier": "silver",
        "tierSource": "alpine_iq",
        "loyaltyReconciled": True,
        "loyaltyDiscrepancy": 25,
        "loyaltyStatus": "within_tolerance",
        "alpineUserId": "C-42",
        "pointsLastCalculated": SYNCED_AT,
        **fields,
    }


def note(answer: PointsCheck) -> str:
    return answer.note or ""


@pytest.fixture
def store() -> QueryableProfileStore:
    store = QueryableProfileStore()
    store.settings["org-1"] = {"discrepancyThreshold": 0.1}
    store.settings["org-2"] = {}
    store.profiles["org-1_42"] = profile(42)
    return store


@pytest.fixture
def alpine() -> FakeAlpine:
    return FakeAlpine({PHONE: AlpineProfile(475, "SILVER", "2026-01-29", contact_id="C-42")})


def test_the_seeds_example_by_alpine_contact_id(
    store: QueryableProfileStore, alpine: FakeAlpine
) -> None:
    answer = check_points("org-1", "(555) 123-4567", store=store, alpine=alpine)
    # As the API writes it, every field named.
    assert answer.model_dump(mode="json", by_alias=True) == {
        "calculated": {"points": 450, "tier": "bronze", "source": "orders"},
        "alpine": {
            "points": 475,
            "tier": "silver",
            "source": "alpine_iq",
            "live": True,
            "lastVisit": "2026-01-29",
        },
        # r = 25 / 475 = 0.053 <= 0.10
        "reconciled": True,
        "discrepancy": 25,
        "status": "within_tolerance",
        "displayed": {"points": 475, "tier": "silver", "source": "alpine_iq"},
        "lastSyncAt": "2026-01-30T02:00:00+00:00",
        "customerId": 42,
        "phone": "***-***-4567",
        "alpineAvailable": True,
        "note": None,
    }
    assert alpine.lookups == [PHONE]
    assert store.queries == [("org-1", "alpineUserId", "C-42")]


def test_reconciles_live_alpine_against_the_last_calculation(
    store: QueryableProfileStore,
) -> None:
    alpine = FakeAlpine({PHONE: AlpineProfile(300, None, contact_id="C-42")})
    answer = check_points("org-1", PHONE, store=store, alpine=alpine)
    assert (answer.status, answer.reconciled, answer.discrepancy) == (
        "calculated_higher",
        False,
        -150,
    )
    # Alpine names no tier: the tier of its points by the org's thresholds
    assert answer.alpine is not None and answer.alpine.tier == "bronze"


def test_phone_hash_finds_a_customer_without_an_alpine_account(
    store: QueryableProfileStore,
) -> None:
    store.profiles["org-1_7"] = profile(
        7,
        alpineUserId=None,
        pointsFromAlpine=None,
        loyaltyStatus="no_alpine_account",
        phoneHash=phone_hash("5559870000", KEY),
    )
    answer = check_points(
        "org-1", "+1 555.987.0000", store=store, alpine=FakeAlpine(), phone_key=KEY
    )
    assert answer.customer_id == 7
    assert answer.calculated == CalculatedView(points=450, tier="bronze", source="orders")
    assert answer.alpine is None
    assert (answer.status, answer.reconciled, answer.discrepancy) == (
        "no_alpine_account",
        None,
        None,
    )
    assert answer.displayed == DisplayedView(points=450, tier="bronze", source="calculated")
    assert answer.note is None


class WaitsForTheHashLookup(FakeAlpine):
    """An Alpine IQ that answers only once the profile's look-up by phoneHash has begun."""

    def __init__(self, store: QueryableProfileStore) -> None:
        super().__init__({PHONE: AlpineProfile(475, "SILVER", "2026-01-29", contact_id="C-42")})
        self.hash_lookup_begun = threading.Event()
        original = store.find_profiles

        def find_profiles(org_id: str, field: str, value: str, *, limit: int) -> Any:
            if field == "phoneHash":
                self.hash_lookup_begun.set()
            return original(org_id, field, value, limit=limit)

        store.find_profiles = find_profiles  # type: ignore[method-assign]

    def lookup(self, phone10: str) -> AlpineProfile | None:
        assert self.hash_lookup_begun.wait(5.0), "the phoneHash look-up waited for Alpine IQ"
        return super().lookup(phone10)


def test_the_profile_is_looked_up_by_hash_while_alpine_answers(
    store: QueryableProfileStore,
) -> None:
    store.profiles["org-1_42"] = profile(42, phoneHash=phone_hash(PHONE, KEY))
    alpine = WaitsForTheHashLookup(store)
    answer = check_points("org-1", PHONE, store=store, alpine=alpine, phone_key=KEY)
    assert (answer.customer_id, answer.alpine_available) == (42, True)
    assert answer.alpine is not None and answer.alpine.points == 475


OTHER_KEY = b"the-workers-other-key-0002"


def test_a_profile_found_by_contact_id_under_another_key_is_reported(
    store: QueryableProfileStore, alpine: FakeAlpine, caplog: pytest.LogCaptureFixture
) -> None:
    store.profiles["org-1_42"].update(
        phoneHash=phone_hash(PHONE, OTHER_KEY), phoneHashKeyId=phone_key_id(OTHER_KEY)
    )
    with caplog.at_level(logging.WARNING):
        answer = check_points("org-1", PHONE, store=store, alpine=alpine, phone_key=KEY)
    assert answer.customer_id == 42  # still found, by Alpine IQ's contact id
    assert "phone-hash key mismatch" in note(answer)
    assert phone_key_id(OTHER_KEY) in note(answer) and phone_key_id(KEY) in note(answer)
    assert any("key mismatch" in r.getMessage() for r in caplog.records)
    assert KEY.decode() not in note(answer) and KEY.decode() not in caplog.text


def test_a_miss_by_hash_with_no_profile_under_this_key_is_reported(
    store: QueryableProfileStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.profiles["org-1_42"].update(
        phoneHash=phone_hash(PHONE, OTHER_KEY), phoneHashKeyId=phone_key_id(OTHER_KEY)
    )
    with caplog.at_level(logging.WARNING):
        answer = check_points("org-1", PHONE, store=store, alpine=FakeAlpine(), phone_key=KEY)
    assert answer.status == "not_found"
    assert "phone-hash key mismatch" in note(answer)
    assert phone_key_id(KEY) in note(answer)
    assert any("key mismatch" in r.getMessage() for r in caplog.records)


def test_a_miss_while_profiles_carry_this_key_is_no_mismatch(
    store: QueryableProfileStore,
) -> None:
    store.profiles["org-1_42"].update(
        phoneHash=phone_hash(PHONE, KEY), phoneHashKeyId=phone_key_id(KEY)
    )
    answer = check_points("org-1", "555-000-2222", store=store, alpine=FakeAlpine(), phone_key=KEY)
    assert answer.status == "not_found"
    assert "mismatch" not in note(answer)
    # found by contact id under the same key (the phone changed since): no mismatch either
    alpine = FakeAlpine({"5550002222": AlpineProfile(475, None, contact_id="C-42")})
    answer = check_points("org-1", "555-000-2222", store=store, alpine=alpine, phone_key=KEY)
    assert answer.customer_id == 42
    assert "mismatch" not in note(answer)


def test_alpine_down_answers_from_firestore_alone(store: QueryableProfileStore) -> None:
    store.profiles["org-1_42"]["phoneHash"] = phone_hash(PHONE, KEY)
    alpine = FakeAlpine()
    alpine.error = TransientError("alpine_iq", "GET /v2/loyalty/lookup: server error (503)")
    answer = check_points("org-1", PHONE, store=store, alpine=alpine, phone_key=KEY)
    assert answer.alpine_available is False
    assert "Alpine IQ is unavailable" in note(answer)
    assert answer.calculated is not None and answer.calculated.points == 450
    # Alpine's side and the reconciliation as of the last sync, marked as such
    assert answer.alpine == AlpineView(points=475, tier="silver", source="alpine_iq", live=False)
    assert (answer.status, answer.reconciled, answer.discrepancy) == (
        "within_tolerance",
        True,
        25,
    )
    assert answer.displayed == DisplayedView(points=475, tier="silver", source="alpine_iq")


def test_alpine_down_and_no_phone_hash_says_why_nothing_is_found(
    store: QueryableProfileStore,
) -> None:
    alpine = FakeAlpine()
    alpine.error = TransientError("alpine_iq", "timed out")
    answer = check_points("org-1", PHONE, store=store, alpine=alpine)
    assert answer.alpine_available is False
    assert answer.calculated is None and answer.alpine is None
    assert answer.status == "unknown"
    assert "phoneHash" in note(answer)
    assert store.queries == []


def test_a_refused_alpine_key_is_reported_not_raised(store: QueryableProfileStore) -> None:
    alpine = FakeAlpine()
    alpine.error = AuthError("alpine_iq", "not authorised (401)")
    store.profiles["org-1_42"]["phoneHash"] = phone_hash(PHONE, KEY)
    answer = check_points("org-1", PHONE, store=store, alpine=alpine, phone_key=KEY)
    assert answer.alpine_available is False
    assert "refused" in note(answer) and "alpine_iq_auth" in note(answer)
    assert answer.calculated is not None and answer.calculated.points == 450


def test_an_org_without_alpine_credentials(store: QueryableProfileStore) -> None:
    store.profiles["org-1_42"]["phoneHash"] = phone_hash(PHONE, KEY)
    answer = check_points("org-1", PHONE, store=store, alpine=None, phone_key=KEY)
    assert answer.alpine_available is False
    assert "no Alpine IQ credentials" in note(answer)
    assert answer.calculated is not None and answer.calculated.points == 450


def test_alpine_account_but_no_synced_profile(store: QueryableProfileStore) -> None:
    alpine = FakeAlpine({"5550001111": AlpineProfile(1200, "gold", contact_id="C-NEW")})
    answer = check_points("org-1", "555-000-1111", store=store, alpine=alpine)
    assert answer.calculated is None
    assert answer.alpine is not None and answer.alpine.points == 1200
    assert answer.status == "not_synced"
    assert answer.displayed == DisplayedView(points=1200, tier="gold", source="alpine_iq")
    assert "no synced Markitbot profile" in note(answer)


def test_a_phone_nobody_knows(store: QueryableProfileStore) -> None:
    answer = check_points("org-1", "555-000-2222", store=store, alpine=FakeAlpine(), phone_key=KEY)
    assert answer.status == "not_found"
    assert answer.calculated is None and answer.alpine is None
    assert answer.alpine_available is True


def test_profiles_of_another_org_are_not_found(
    store: QueryableProfileStore, alpine: FakeAlpine
) -> None:
    answer = check_points("org-2", PHONE, store=store, alpine=alpine)
    assert answer.calculated is None
    assert answer.status == "not_synced"


def test_several_profiles_for_one_phone_show_the_latest_and_say_so(
    store: QueryableProfileStore, alpine: FakeAlpine
) -> None:
    store.profiles["org-1_43"] = profile(
        43, pointsFromOrders=470, pointsLastCalculated=datetime(2026, 2, 1, tzinfo=UTC)
    )
    answer = check_points("org-1", PHONE, store=store, alpine=alpine)
    assert answer.customer_id == 43
    assert answer.calculated is not None and answer.calculated.points == 470
    assert "2 profiles share this phone" in note(answer)


@pytest.mark.parametrize("phone", ["", "12345", "555-123-456", "+44 20 7946 0958", "phone"])
def test_not_a_us_phone_is_refused_masked_before_any_call(
    store: QueryableProfileStore, alpine: FakeAlpine, phone: str
) -> None:
    with pytest.raises(InvalidPhone) as caught:
        check_points("org-1", phone, store=store, alpine=alpine)
    assert alpine.lookups == []
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) > 4:
        assert digits not in str(caught.value)


def test_unknown_org(store: QueryableProfileStore, alpine: FakeAlpine) -> None:
    with pytest.raises(UnknownOrg):
        check_points("org-9", PHONE, store=store, alpine=alpine)


def test_firestore_unavailable_is_raised(store: QueryableProfileStore, alpine: FakeAlpine) -> None:
    store.error = TransientError("firestore", "query profiles: ServiceUnavailable")
    with pytest.raises(TransientError):
        check_points("org-1", PHONE, store=store, alpine=alpine, phone_key=KEY)


def test_phone_lookup_key_is_keyed_and_format_free() -> None:
    key = phone_hash(PHONE, KEY)
    assert len(key) == 64 and int(key, 16) >= 0
    assert key == phone_hash(PHONE, KEY)
    assert key != phone_hash(PHONE, b"another-key-0000000000")
    assert key != phone_hash("5551234568", KEY)
    assert PHONE not in key


def test_cli_prints_the_answer_as_json(
    store: QueryableProfileStore,
    alpine: FakeAlpine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Clients:
        def __init__(self, settings: object, api: object) -> None:
            pass

        def __call__(self, org: object) -> FakeAlpine:
            return alpine

        def close(self) -> None:
            pass

    monkeypatch.setattr(wiring, "build_queries", lambda settings: store)
    monkeypatch.setattr(wiring, "AlpineClients", Clients)
    assert cli.main(["check-points", "--org", "org-1", "--phone", "(555) 123-4567"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["status"], answer["phone"]) == ("within_tolerance", "***-***-4567")
    assert cli.main(["check-points", "--org", "org-1", "--phone", "12"]) == 2
    assert cli.main(["check-points", "--org", "org-9", "--phone", PHONE]) == 2
    assert "unknown org" in capsys.readouterr().err
