"""One customer's sync over working fakes: what is written, skipped, deleted, failed."""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal

import pytest

from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.phone import PhoneHash, phone_hash, phone_key_id
from loyalty_worker.domain.results import SyncStatus
from loyalty_worker.errors import AuthError, TransientError
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.sync import inputs as customer_inputs
from loyalty_worker.services.sync.customer import sync_customer
from loyalty_worker.services.sync.inputs import AlpineAnswer, CustomerWork, inputs_digest
from tests.fakes import FakeAlpine, InMemoryProfileStore

PHONE = "5551234567"
ORG = OrgSettings.parse("org-1", {"equityMultiplier": 2})


def work(*subtotals: str, phone: str | None = "(555) 123-4567", **kw: object) -> CustomerWork:
    orders = tuple(Order(i, 42, "completed", Decimal(s)) for i, s in enumerate(subtotals, start=1))
    return CustomerWork(Customer(42, phone, "A-42"), orders, **kw)  # type: ignore[arg-type]


@pytest.fixture
def store() -> InMemoryProfileStore:
    store = InMemoryProfileStore()
    store.profiles["org-1_42"] = {"equityStatus": True, "firstName": "Ana", "tags": ["vip"]}
    return store


def test_writes_the_rules_fields_and_keeps_markitbots(store: InMemoryProfileStore) -> None:
    alpine = FakeAlpine({PHONE: AlpineProfile(700, "SILVER", "2026-11-01")})
    result = sync_customer(ORG, work("300.50"), store=store, alpine=alpine, run_id="r1")
    profile = store.profiles["org-1_42"]
    # base 300, equity bonus floor(300 * 1) = 300 -> 600; Alpine 700: r = 100/700 = 0.143
    assert profile["pointsFromOrders"] == 600
    assert profile["pointsFromAlpine"] == 700
    assert profile["points"] == 700
    assert profile["tier"] == "silver"
    assert profile["tierSource"] == "alpine_iq"
    assert profile["loyaltyStatus"] == "alpine_higher"
    assert profile["loyaltyReconciled"] is False
    assert profile["loyaltyDiscrepancy"] == 100
    assert profile["alpineUserId"] == "A-42"
    assert profile["totalSpent"] == 300.5
    assert profile["lastLoyaltySyncRunId"] == "r1"
    assert (profile["firstName"], profile["tags"], profile["equityStatus"]) == (
        "Ana",
        ["vip"],
        True,
    )
    assert alpine.lookups == [PHONE]
    data = result.to_dict()
    assert data["status"] == "synced"
    assert data["reconciliation"]["action"] == "alert_admin"
    assert data["phone"] == "***-***-4567"


def test_unchanged_inputs_write_nothing(store: InMemoryProfileStore) -> None:
    alpine = FakeAlpine({PHONE: AlpineProfile(600)})
    sync_customer(ORG, work("300"), store=store, alpine=alpine, run_id="r1")
    writes = store.writes
    again = sync_customer(ORG, work("300"), store=store, alpine=alpine, run_id="r2")
    assert again.status.value == "unchanged"
    assert store.writes == writes
    assert store.profiles["org-1_42"]["lastLoyaltySyncRunId"] == "r1"


def test_losing_the_alpine_account_deletes_the_alpine_fields(store: InMemoryProfileStore) -> None:
    sync_customer(ORG, work("10"), store=store, alpine=FakeAlpine({PHONE: AlpineProfile(5)}))
    assert "pointsFromAlpine" in store.profiles["org-1_42"]
    sync_customer(ORG, work("10"), store=store, alpine=FakeAlpine())
    profile = store.profiles["org-1_42"]
    assert "pointsFromAlpine" not in profile
    assert "loyaltyDiscrepancy" not in profile
    assert profile["loyaltyStatus"] == "no_alpine_account"
    assert profile["loyaltyReconciled"] is None
    assert profile["points"] == 20


def test_no_phone_means_no_lookup_and_no_account(store: InMemoryProfileStore) -> None:
    alpine = FakeAlpine({PHONE: AlpineProfile(5)})
    result = sync_customer(ORG, work("10", phone="12345"), store=store, alpine=alpine)
    assert alpine.lookups == []
    assert result.to_dict()["reconciliation"]["status"] == "no_alpine_account"


def test_customer_without_orders_or_profile_is_synced_with_zero() -> None:
    store = InMemoryProfileStore()
    result = sync_customer(ORG, work(phone=None), store=store, alpine=FakeAlpine())
    assert result.status.value == "synced"
    assert store.profiles["org-1_42"]["points"] == 0
    assert store.profiles["org-1_42"]["tier"] == "bronze"


def test_prefetched_alpine_answer_skips_the_lookup(store: InMemoryProfileStore) -> None:
    alpine = FakeAlpine({PHONE: AlpineProfile(5)})
    result = sync_customer(ORG, work("10", alpine=AlpineAnswer(None)), store=store, alpine=alpine)
    assert alpine.lookups == []
    assert result.to_dict()["reconciliation"]["status"] == "no_alpine_account"


def test_malformed_orders_fail_the_customer_by_order_id(store: InMemoryProfileStore) -> None:
    before = dict(store.profiles["org-1_42"])
    result = sync_customer(
        ORG, work("10", malformed_orders=("9001",)), store=store, alpine=FakeAlpine()
    )
    data = result.to_dict()
    assert (data["status"], data["reason"]) == ("failed", "malformed")
    assert "9001" in str(data["detail"])
    assert store.profiles["org-1_42"] == before


def test_permanent_errors_become_failed_results(store: InMemoryProfileStore) -> None:
    alpine = FakeAlpine()
    alpine.error = AuthError("alpine", "401 from lookup")
    result = sync_customer(ORG, work("10"), store=store, alpine=alpine)
    assert (result.status.value, result.reason) == ("failed", "alpine_auth")


def test_transient_errors_propagate_for_a_retry(store: InMemoryProfileStore) -> None:
    alpine = FakeAlpine()
    alpine.error = TransientError("alpine", "503")
    with pytest.raises(TransientError):
        sync_customer(ORG, work("10"), store=store, alpine=alpine)


def test_dry_run_computes_but_writes_nothing(store: InMemoryProfileStore) -> None:
    result = sync_customer(ORG, work("10"), store=store, alpine=FakeAlpine(), dry_run=True)
    assert result.status.value == "synced"
    assert store.writes == 0
    assert "points" not in store.profiles["org-1_42"]


def test_tier_change_is_recorded(store: InMemoryProfileStore) -> None:
    sync_customer(ORG, work("100"), store=store, alpine=FakeAlpine())  # 200 points: bronze
    result = sync_customer(ORG, work("100", "200"), store=store, alpine=FakeAlpine())  # 600
    assert result.to_dict()["tierChange"] == {"from": "bronze", "to": "silver"}


def test_work_survives_its_json_payload_with_the_phone_masked_once_answered() -> None:
    original = CustomerWork(
        Customer(7, "5551234567", None),
        (Order(1, 7, "Completed", Decimal("19.99"), Decimal("0.99"), Decimal(0)),),
        ("bad-1",),
        AlpineAnswer(AlpineProfile(12, "gold", "2026-02-02", "c-1")),
        profile={"equityStatus": True, "points": 3},
        profile_known=True,
    )
    payload = original.to_payload()
    assert "5551234567" not in str(payload)  # the run answered Alpine IQ: no raw phone needed
    back = CustomerWork.from_payload(payload)
    assert back.customer.phone == "***-***-4567"
    assert back == CustomerWork(
        Customer(7, "***-***-4567", None),
        *(
            getattr(original, f)
            for f in ("orders", "malformed_orders", "alpine", "profile", "profile_known")
        ),
    )


def test_work_without_an_answer_travels_masked_and_marked_for_its_kept_phone() -> None:
    work = CustomerWork(Customer(7, "(555) 123-4567", None))
    assert work.phone_to_look_up() == "5551234567"
    payload = work.to_payload()
    assert payload["customer"] == [7, "***-***-4567", None]
    assert CustomerWork.kept_phone_of(payload) == 7
    with pytest.raises(ValueError, match="kept aside"):  # a masked phone is never looked up
        CustomerWork.from_payload(payload)
    back = CustomerWork.from_payload(payload, phone="5551234567")
    assert back.customer.phone == "5551234567"
    assert back.phone_to_look_up() == "5551234567"
    # answered ahead, or no US phone: nothing to keep aside
    answered = replace(work, alpine=AlpineAnswer(None))
    assert CustomerWork.kept_phone_of(answered.to_payload()) is None
    no_phone = CustomerWork(Customer(8, "555-1234", None))
    assert CustomerWork.kept_phone_of(no_phone.to_payload()) is None


def test_a_masked_phone_still_shows_in_the_result(store: InMemoryProfileStore) -> None:
    work = CustomerWork(Customer(42, "***-***-4567", None), alpine=AlpineAnswer(AlpineProfile(0)))
    result = sync_customer(ORG, work, store=store, alpine=FakeAlpine()).to_dict()
    assert result["phone"] == "***-***-4567"
    assert result["reconciliation"]["status"] == "matched"


KEY = b"phone-key-0123456789"
OTHER_KEY = b"phone-key-9876543210"


def test_the_phone_hash_is_written_with_its_key_id_and_travels_masked(
    store: InMemoryProfileStore,
) -> None:
    alpine = FakeAlpine({PHONE: AlpineProfile(20)})
    keyed = work("10").with_phone_hash(KEY)
    # planned with the raw phone, sent masked: the hash travels in the message instead
    sent = CustomerWork.from_payload(replace(keyed, alpine=AlpineAnswer(None)).to_payload())
    assert PHONE not in str(sent.to_payload())
    sync_customer(ORG, sent, store=store, alpine=alpine)
    profile = store.profiles["org-1_42"]
    assert profile["phoneHash"] == phone_hash(PHONE, KEY)
    assert profile["phoneHashKeyId"] == phone_key_id(KEY)
    assert len(profile["phoneHashKeyId"]) == 8 and phone_key_id(OTHER_KEY) != phone_key_id(KEY)


def test_a_worker_without_the_key_leaves_the_phone_hash_alone(
    store: InMemoryProfileStore, caplog: pytest.LogCaptureFixture
) -> None:
    alpine = FakeAlpine({PHONE: AlpineProfile(20)})
    sync_customer(ORG, work("10").with_phone_hash(KEY), store=store, alpine=alpine)
    written = dict(store.profiles["org-1_42"])

    customer_inputs._warn_no_phone_key.cache_clear()
    with caplog.at_level(logging.WARNING):
        unkeyed = work("10").with_phone_hash(None)
        work("10").with_phone_hash(None)
    result = sync_customer(ORG, unkeyed, store=store, alpine=alpine)
    profile = store.profiles["org-1_42"]
    assert (profile["phoneHash"], profile["phoneHashKeyId"]) == (
        written["phoneHash"],
        written["phoneHashKeyId"],
    )
    # nothing else changed: the sync without a key sees no difference at all
    assert result.status is SyncStatus.UNCHANGED
    warnings = [r for r in caplog.records if "LOYALTY_PHONE_HASH_KEY" in r.getMessage()]
    assert len(warnings) == 1  # once per process


def test_a_customer_without_a_phone_has_the_hash_and_its_key_id_deleted(
    store: InMemoryProfileStore,
) -> None:
    alpine = FakeAlpine({PHONE: AlpineProfile(20)})
    sync_customer(ORG, work("10").with_phone_hash(KEY), store=store, alpine=alpine)
    phoneless = work("10", phone=None).with_phone_hash(KEY)
    assert phoneless.hashed_phone == PhoneHash(phone_key_id(KEY), None)
    result = sync_customer(ORG, phoneless, store=store, alpine=alpine)
    assert result.status is SyncStatus.SYNCED
    assert "phoneHash" not in store.profiles["org-1_42"]
    assert "phoneHashKeyId" not in store.profiles["org-1_42"]


def test_a_new_key_alone_makes_the_sync_write(store: InMemoryProfileStore) -> None:
    alpine = FakeAlpine({PHONE: AlpineProfile(20)})
    sync_customer(ORG, work("10").with_phone_hash(KEY), store=store, alpine=alpine)
    again = sync_customer(ORG, work("10").with_phone_hash(KEY), store=store, alpine=alpine)
    assert again.status is SyncStatus.UNCHANGED
    rotated = sync_customer(ORG, work("10").with_phone_hash(OTHER_KEY), store=store, alpine=alpine)
    assert rotated.status is SyncStatus.SYNCED
    assert store.profiles["org-1_42"]["phoneHashKeyId"] == phone_key_id(OTHER_KEY)
    # a profile written before key ids: the id is added beside the unchanged hash
    del store.profiles["org-1_42"]["phoneHashKeyId"]
    backfilled = sync_customer(
        ORG, work("10").with_phone_hash(OTHER_KEY), store=store, alpine=alpine
    )
    assert backfilled.status is SyncStatus.SYNCED
    assert store.profiles["org-1_42"]["phoneHashKeyId"] == phone_key_id(OTHER_KEY)


def test_the_inputs_digest_tells_a_missing_key_from_a_missing_phone() -> None:
    rules = ORG.rules()
    customer = Customer(42, None, "A-42")
    no_key = CustomerWork(customer).with_phone_hash(None)
    keyed = CustomerWork(customer).with_phone_hash(KEY)
    other = CustomerWork(customer).with_phone_hash(OTHER_KEY)
    digests = {inputs_digest(rules, customer, None, w.phone_hash) for w in (no_key, keyed, other)}
    assert len(digests) == 3


def test_a_bare_hash_from_an_older_worker_leaves_the_profile_alone(
    store: InMemoryProfileStore,
) -> None:
    alpine = FakeAlpine({PHONE: AlpineProfile(20)})
    sync_customer(ORG, work("10").with_phone_hash(KEY), store=store, alpine=alpine)
    payload = work("10").to_payload()
    payload["phoneHash"] = phone_hash(PHONE, OTHER_KEY)  # no key id: which key is unknown
    older = CustomerWork.from_payload(payload, phone=PHONE)
    sync_customer(ORG, older, store=store, alpine=alpine)
    assert store.profiles["org-1_42"]["phoneHash"] == phone_hash(PHONE, KEY)
    assert store.profiles["org-1_42"]["phoneHashKeyId"] == phone_key_id(KEY)


@pytest.mark.parametrize("profile", [None, {}, {"equityStatus": False}, {"equityStatus": "true"}])
def test_only_equity_status_true_earns_the_bonus(profile: dict[str, object] | None) -> None:
    store = InMemoryProfileStore()
    if profile is not None:
        store.profiles["org-1_42"] = dict(profile)
    sync_customer(ORG, work("300"), store=store, alpine=FakeAlpine())
    # multiplier 2, but no equity: base 300, no bonus
    assert store.profiles["org-1_42"]["pointsFromOrders"] == 300


def test_a_customer_without_an_alpine_code_loses_the_alpine_user_id(
    store: InMemoryProfileStore,
) -> None:
    sync_customer(ORG, work("10"), store=store, alpine=FakeAlpine())
    assert store.profiles["org-1_42"]["alpineUserId"] == "A-42"
    no_code = CustomerWork(Customer(42, "(555) 123-4567", None), work("10").orders)
    sync_customer(ORG, no_code, store=store, alpine=FakeAlpine())
    assert "alpineUserId" not in store.profiles["org-1_42"]


def test_the_profile_carries_its_ids_counts_and_stamp(store: InMemoryProfileStore) -> None:
    sync_customer(ORG, work("10", "0"), store=store, alpine=FakeAlpine(), run_id="r9")
    profile = store.profiles["org-1_42"]
    assert (profile["orgId"], profile["alleavesCustomerId"]) == ("org-1", 42)
    assert profile["ordersProcessed"] == 2  # the zero-spend order is processed too
    assert profile["pointsLastCalculated"].tzinfo is not None
    assert profile["lastLoyaltySyncRunId"] == "r9"


def test_a_changing_write_carries_its_history_entry(store: InMemoryProfileStore) -> None:
    from loyalty_worker.services.sync.customer import evaluate_customer

    alpine = FakeAlpine({PHONE: AlpineProfile(600)})
    store.profiles["org-1_42"].update(points=10, tier="bronze", loyaltyStatus="matched")
    first = evaluate_customer(ORG, work("300"), store=store, alpine=alpine, run_id="r1")
    assert first.update is not None and first.update.history is not None
    entry = first.update.history
    assert entry["runId"] == "r1"
    assert entry["before"] == {
        "points": 10,
        "pointsFromOrders": None,
        "pointsFromAlpine": None,
        "tier": "bronze",
        "loyaltyStatus": "matched",
        "loyaltyDiscrepancy": None,
    }
    assert entry["after"]["points"] == 600
    assert entry["ordersAdded"] == [{"id": "1", "at": None, "spend": "300"}]
    assert entry["ordersDropped"] == []
    store.write_profiles([first.update])
    again = evaluate_customer(ORG, work("300"), store=store, alpine=alpine, run_id="r2")
    assert again.update is None  # unchanged: no write, so no history entry
    dry = evaluate_customer(ORG, work("500"), store=store, alpine=alpine, dry_run=True)
    assert dry.update is None
