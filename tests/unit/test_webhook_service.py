"""The webhook use case over working fakes: signature, secret choice, replay, dedupe, undo."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr

from loyalty_worker.api.orgs import OrgDirectory
from loyalty_worker.errors import TransientError
from loyalty_worker.ports.webhooks import WebhookOrgs
from loyalty_worker.services.lookup.webhooks import (
    EventRecord,
    WebhookOutcome,
    WebhookReceiver,
    WebhookRefused,
    customer_of,
    event_time,
    normalize_signature,
    sign,
)
from tests.fakes import (
    InMemoryWebhookLedger,
    ManualClock,
    QueryableProfileStore,
    RecordingEnqueuer,
    StaticWebhookSecrets,
)

NOW = 1_800_000_000.0
SECRET = b"whsec-org1-Zt5Wq8Ne3Rb7Ym1"
REPLAY_S = 300
DEDUPE_S = 30


@dataclass(frozen=True)
class Event:
    """What the API's parser hands the receiver, without the API's model."""

    event: str
    data: EventRecord
    timestamp: int | float | str


class NotAnEvent(ValueError):
    """The test parser's invalid-input error (the API raises a 422 instead)."""


def parse(body: bytes) -> Event:
    try:
        raw = json.loads(body)
        return Event(raw["event"], EventRecord.model_validate(raw["data"]), raw["timestamp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise NotAnEvent(str(exc)) from None


@dataclass
class Harness:
    clock: ManualClock
    ledger: InMemoryWebhookLedger
    enqueuer: RecordingEnqueuer
    receiver: WebhookReceiver
    secrets: WebhookOrgs

    def deliver(
        self, body: bytes, *, org: str = "org-1", secret: bytes = SECRET, signature: str = ""
    ) -> WebhookOutcome:
        return self.receiver.receive(org, signature or sign(body, secret), body)


@dataclass
class Options:
    secrets: WebhookOrgs = field(default_factory=lambda: StaticWebhookSecrets({"org-1": SECRET}))
    dedupe_s: int = DEDUPE_S


def harness(options: Options | None = None) -> Harness:
    options = options or Options()
    clock = ManualClock(NOW)
    ledger = InMemoryWebhookLedger(clock)
    enqueuer = RecordingEnqueuer()
    receiver = WebhookReceiver(
        secrets=options.secrets,
        ledger=ledger,
        enqueuer=enqueuer,
        parse=parse,
        replay_window_s=REPLAY_S,
        dedupe_window_s=options.dedupe_s,
        clock=clock,
    )
    return Harness(clock, ledger, enqueuer, receiver, options.secrets)


def order_body(customer_id: Any = 42, *, at: Any = NOW, order_id: int = 9001) -> bytes:
    data: dict[str, Any] = {"id": order_id}
    if customer_id is not None:
        data["id_customer"] = customer_id
    return json.dumps({"event": "order.created", "data": data, "timestamp": at}).encode()


@pytest.fixture
def hook() -> Harness:
    return harness()


# --- accepted -----------------------------------------------------------------------------


def test_a_verified_event_enqueues_its_customer_after_the_dedupe_window(hook: Harness) -> None:
    body = order_body(42)
    outcome = hook.deliver(body)
    assert outcome == WebhookOutcome(enqueued=True, task_id="task-1")
    (sent,) = hook.enqueuer.customer_syncs
    assert (sent["org_id"], sent["customer_id"], sent["delay_s"]) == ("org-1", 42, 30.0)
    assert hook.ledger.held("delivery") == [("org-1", sign(body, SECRET))]
    assert hook.ledger.held("customer") == [("org-1", "42")]


def test_a_delivery_is_remembered_for_twice_the_replay_window(hook: Harness) -> None:
    body = order_body(42)
    hook.deliver(body)
    hook.clock.advance(2 * REPLAY_S - 1)
    assert hook.ledger.held("delivery") != []
    hook.clock.advance(1)
    assert hook.ledger.held("delivery") == []


def test_a_customer_event_names_its_customer_by_id(hook: Harness) -> None:
    body = json.dumps({"event": "customer.updated", "data": {"id": 77}, "timestamp": NOW}).encode()
    assert hook.deliver(body).enqueued is True
    assert hook.enqueuer.customer_syncs[0]["customer_id"] == 77


# --- signature and secret -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("signature", "detail"),
    [(None, "missing"), ("", "missing"), ("not-hex", "malformed"), ("ab" * 31, "malformed")],
)
def test_an_unsigned_or_malformed_signature_is_refused_before_the_secret_is_read(
    signature: str | None, detail: str
) -> None:
    secrets = StaticWebhookSecrets({"org-1": SECRET})
    hook = harness(Options(secrets=secrets))
    with pytest.raises(WebhookRefused, match=detail):
        hook.receiver.receive("org-1", signature, order_body())
    assert secrets.asked == []
    assert hook.ledger.claims == {} and hook.enqueuer.customer_syncs == []


def test_a_prefixed_upper_case_signature_is_accepted(hook: Harness) -> None:
    body = order_body()
    assert hook.deliver(body, signature="sha256=" + sign(body, SECRET).upper()).enqueued


@pytest.mark.parametrize(
    ("org", "secret"),
    [
        ("org-1", b"another-secret-Kp9Lx4Hv6Jc2"),  # signed with the wrong secret
        ("org-9", SECRET),  # unknown org: refused like a bad signature, nothing told
        ("org-0", SECRET),  # an org without a secret
    ],
)
def test_a_signature_that_does_not_match_is_refused(org: str, secret: bytes) -> None:
    hook = harness(Options(secrets=StaticWebhookSecrets({"org-1": SECRET, "org-0": None})))
    with pytest.raises(WebhookRefused, match="signature does not match"):
        hook.deliver(order_body(), org=org, secret=secret)
    assert hook.ledger.claims == {} and hook.enqueuer.customer_syncs == []


def test_an_org_with_invalid_settings_is_refused_like_a_bad_signature(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = StaticWebhookSecrets({"org-1": SECRET}, invalid={"org-3": "pointsPerDollar"})
    hook = harness(Options(secrets=secrets))
    with pytest.raises(WebhookRefused) as refused:
        hook.deliver(order_body(), org="org-3")
    assert refused.value.detail == "signature does not match"
    assert "pointsPerDollar" in caplog.text  # the operator learns why; the sender does not
    assert hook.ledger.claims == {} and hook.enqueuer.customer_syncs == []


def location_body(location: Any, *, order_id: int = 9001) -> bytes:
    data = {"id": order_id, "id_customer": 42, "id_location": location}
    return json.dumps({"event": "order.created", "data": data, "timestamp": NOW}).encode()


def test_an_event_of_another_location_than_the_orgs_is_refused_unclaimed() -> None:
    secrets = StaticWebhookSecrets({"org-1": SECRET}, locations={"org-1": "7"})
    hook = harness(Options(secrets=secrets))
    with pytest.raises(WebhookRefused, match="does not belong to this org"):
        hook.deliver(location_body(8))
    assert hook.ledger.claims == {} and hook.enqueuer.customer_syncs == []
    assert hook.deliver(location_body(7, order_id=9002)).enqueued is True


@pytest.mark.parametrize("location", [None, "", True, {"id": 8}])
def test_an_event_naming_no_location_is_bound_by_the_secret_alone(location: Any) -> None:
    secrets = StaticWebhookSecrets({"org-1": SECRET}, locations={"org-1": "7"})
    assert harness(Options(secrets=secrets)).deliver(location_body(location)).enqueued is True


def test_a_signature_over_another_body_is_refused(hook: Harness) -> None:
    signature = sign(order_body(42), SECRET)
    with pytest.raises(WebhookRefused, match="signature does not match"):
        hook.deliver(order_body(43), signature=signature)


def test_the_secret_is_the_orgs_own_else_the_configured_fallback() -> None:
    store = QueryableProfileStore()
    store.settings["org-1"] = {
        "alleaves": {"username": "u", "password": "p", "pin": "1", "webhookSecret": SECRET.decode()}
    }
    store.settings["org-2"] = {}
    fallback = "whsec-org2-Kp9Lx4Hv6Jc2Ds0"
    directory = OrgDirectory(
        store,
        fallback_secrets={"org-1": SecretStr("ignored-" + fallback), "org-2": SecretStr(fallback)},
    )
    hook = harness(Options(secrets=directory))
    assert hook.deliver(order_body(42), org="org-1").enqueued  # the document's secret wins
    assert hook.deliver(order_body(7), org="org-2", secret=fallback.encode()).enqueued
    with pytest.raises(WebhookRefused):
        hook.deliver(order_body(8), org="org-1", secret=("ignored-" + fallback).encode())


# --- replay window and replays ------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [NOW - 301, NOW + 301, (NOW - 3600) * 1000, "2020-01-01T00:00:00Z", "soon", True, None],
)
def test_a_stale_or_missing_timestamp_is_refused_and_claims_nothing(
    hook: Harness, timestamp: Any
) -> None:
    with pytest.raises(WebhookRefused, match="timestamp"):
        hook.deliver(order_body(at=timestamp))
    assert hook.ledger.claims == {} and hook.enqueuer.customer_syncs == []


@pytest.mark.parametrize("timestamp", [NOW - 300, NOW + 300, NOW * 1000, str(NOW)])
def test_timestamps_inside_the_window_in_any_form_are_accepted(
    hook: Harness, timestamp: Any
) -> None:
    assert hook.deliver(order_body(at=timestamp)).enqueued


def test_a_replayed_delivery_is_refused(hook: Harness) -> None:
    body = order_body(42)
    hook.deliver(body)
    hook.clock.advance(DEDUPE_S + 1)  # the customer's claim is over, the delivery's is not
    with pytest.raises(WebhookRefused, match="already received"):
        hook.deliver(body)
    assert len(hook.enqueuer.customer_syncs) == 1


def test_a_signed_body_that_is_no_event_raises_the_parsers_error(hook: Harness) -> None:
    with pytest.raises(NotAnEvent):
        hook.deliver(b"{not json")
    assert hook.ledger.claims == {}


# --- dedupe -------------------------------------------------------------------------------


def test_a_burst_about_one_customer_is_one_sync_per_window(hook: Harness) -> None:
    assert hook.deliver(order_body(42, order_id=1)).enqueued
    second = hook.deliver(order_body(42, order_id=2))
    assert second == WebhookOutcome(
        enqueued=False, reason="a sync of customer 42 is already queued"
    )
    assert hook.deliver(order_body(43, order_id=3)).enqueued  # others are not held back
    hook.clock.advance(DEDUPE_S)
    assert hook.deliver(order_body(42, order_id=4, at=hook.clock.now)).enqueued
    assert [s["customer_id"] for s in hook.enqueuer.customer_syncs] == [42, 43, 42]


def test_without_a_dedupe_window_every_event_is_enqueued_at_once() -> None:
    hook = harness(Options(dedupe_s=0))
    assert hook.deliver(order_body(42, order_id=1)).enqueued
    assert hook.deliver(order_body(42, order_id=2)).enqueued
    assert [s["delay_s"] for s in hook.enqueuer.customer_syncs] == [0.0, 0.0]
    assert hook.ledger.held("customer") == []


@pytest.mark.parametrize("customer_id", [None, 0, -3, "abc", True])
def test_an_event_naming_no_customer_is_acknowledged_once(hook: Harness, customer_id: Any) -> None:
    body = order_body(customer_id)
    outcome = hook.deliver(body)
    assert outcome.enqueued is False and outcome.reason is not None
    assert "names no customer" in outcome.reason
    with pytest.raises(WebhookRefused, match="already received"):
        hook.deliver(body)
    assert hook.enqueuer.customer_syncs == []


# --- undo ---------------------------------------------------------------------------------


def test_a_failed_enqueue_releases_both_claims_so_the_retry_goes_through(hook: Harness) -> None:
    body = order_body(42)
    hook.enqueuer.error = TransientError("broker", "could not enqueue loyalty.sync_customer")
    with pytest.raises(TransientError):
        hook.deliver(body)
    assert hook.ledger.held("delivery") == [] and hook.ledger.held("customer") == []
    hook.enqueuer.error = None
    assert hook.deliver(body) == WebhookOutcome(enqueued=True, task_id="task-1")


def test_a_failed_enqueue_leaves_another_deliverys_claim_alone(hook: Harness) -> None:
    first = order_body(42, order_id=1)
    hook.deliver(first)
    hook.clock.advance(DEDUPE_S)
    hook.enqueuer.error = TransientError("broker", "down")
    with pytest.raises(TransientError):
        hook.deliver(order_body(42, order_id=2, at=hook.clock.now))
    assert hook.ledger.held("delivery") == [("org-1", sign(first, SECRET))]


# --- the pure helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("AB" * 32, "ab" * 32),
        (" sha256=" + "ab" * 32 + " ", "ab" * 32),
        ("sha1=" + "ab" * 32, None),
        ("zz" * 32, None),
    ],
)
def test_normalize_signature(header: str, expected: str | None) -> None:
    assert normalize_signature(header) == expected


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (NOW, NOW),
        (NOW * 1000, NOW),
        (str(NOW), NOW),
        ("2027-01-15T08:00:00+00:00", NOW),
        ("2027-01-15T08:00:00", NOW),  # naive: UTC
        ("soon", None),
        (True, None),
        (None, None),
    ],
)
def test_event_time(value: Any, seconds: float | None) -> None:
    assert event_time(value) == seconds


@pytest.mark.parametrize(
    ("event", "data", "customer"),
    [
        ("order.updated", {"id": 1, "id_customer": "42"}, 42),
        ("order.created", {"id": 1}, None),
        ("customer.created", {"id": 7}, 7),
        ("customer.created", {"id": "0007"}, 7),
        ("customer.updated", {"id": 7, "id_customer": 8}, 8),
        # an id_customer given wins over id, even one that is no usable id
        ("customer.updated", {"id": 7, "id_customer": None}, None),
        ("customer.updated", {"id": 7, "id_customer": "x"}, None),
        ("inventory.updated", {"id_customer": 9}, None),
        # no usable id: none named (the event is acknowledged, not refused)
        ("order.created", {"id_customer": True}, None),
        ("order.created", {"id_customer": 0}, None),
        ("order.created", {"id_customer": -4}, None),
        ("order.created", {"id_customer": 4.0}, None),
        ("order.created", {"id_customer": " 42"}, None),
        ("order.created", {"id_customer": "\u00b2"}, None),  # a digit, but no decimal one
        ("order.created", {"id_customer": "9" * 5000}, None),  # beyond int()'s digits
        ("order.created", {"id_customer": {"id": 4}}, None),
    ],
)
def test_customer_of(event: str, data: dict[str, Any], customer: int | None) -> None:
    assert customer_of(event, EventRecord.model_validate(data)) == customer


@pytest.mark.parametrize(
    ("value", "location"),
    [(7, "7"), (" 7 ", "7"), ("", None), (7.0, None), (True, None), ([7], None), (None, None)],
)
def test_an_events_location_is_text(value: object, location: str | None) -> None:
    assert EventRecord.model_validate({"id_location": value}).id_location == location
