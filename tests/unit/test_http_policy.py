"""The shared HTTP boundary: what is retried, for how long, and what each outcome becomes."""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from loyalty_worker.adapters.connections import ConnectionStack
from loyalty_worker.adapters.http import (
    Call,
    RetryPolicy,
    build_http_client,
    decode_json,
    retry_after_header,
    send,
)
from loyalty_worker.config import Settings
from loyalty_worker.errors import (
    AuthError,
    PermanentError,
    RateLimited,
    TransientError,
)

SECRET_URL = "https://api.example.test/v2/loyalty/lookup/5551234567?apikey=top-secret-key"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A monotonic clock that only moves when slept on (or told to), recording every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """A handler answering a fixed sequence of outcomes, the last one repeated; counts calls."""

    def __init__(self, *outcomes: httpx.Response | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def client(handler: Handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def policy(fake: FakeTime, **overrides: float | int | bool) -> RetryPolicy:
    values: dict[str, float | int | bool] = {
        "max_attempts": 4,
        "max_total_s": 30.0,
        "base_delay_s": 0.5,
        "max_delay_s": 8.0,
    }
    values.update(overrides)
    return RetryPolicy(sleep=fake.sleep, clock=fake.clock, **values)  # type: ignore[arg-type]


def call(handler: Handler, retry: RetryPolicy, **kwargs: object) -> httpx.Response:
    return send(client(handler), Call("GET", SECRET_URL), service="svc", policy=retry, **kwargs)  # type: ignore[arg-type]


def assert_no_secret(error: Exception) -> None:
    text = str(error) + repr(error.args)
    assert "top-secret-key" not in text
    assert "5551234567" not in text


def test_success_is_returned_without_retry() -> None:
    fake = FakeTime()
    script = Script(httpx.Response(200, json={"ok": True}))
    response = call(script, policy(fake))
    assert response.status_code == 200
    assert script.calls == 1
    assert fake.sleeps == []


def test_5xx_is_retried_with_backoff_then_succeeds() -> None:
    fake = FakeTime()
    script = Script(httpx.Response(503), httpx.Response(502), httpx.Response(200))
    response = call(script, policy(fake, base_delay_s=1.0, max_delay_s=8.0))
    assert response.status_code == 200
    assert script.calls == 3
    assert len(fake.sleeps) == 2
    assert 0 <= fake.sleeps[0] <= 1.0
    assert 0 <= fake.sleeps[1] <= 2.0


def test_attempts_are_bounded_and_the_last_transient_error_raised() -> None:
    fake = FakeTime()
    script = Script(httpx.Response(500), httpx.Response(503))
    with pytest.raises(TransientError) as caught:
        call(script, policy(fake, max_attempts=3))
    assert script.calls == 3
    assert "503" in str(caught.value)
    assert not isinstance(caught.value, RateLimited)
    assert_no_secret(caught.value)


def test_total_time_is_bounded_even_with_attempts_left() -> None:
    fake = FakeTime()

    def slow_failure(request: httpx.Request) -> httpx.Response:
        fake.now += 4.0  # each attempt costs four seconds before failing
        return httpx.Response(503)

    started = fake.now
    with pytest.raises(TransientError):
        call(slow_failure, policy(fake, max_attempts=100, max_total_s=10.0, base_delay_s=0.1))
    assert fake.now - started <= 10.0 + 4.0
    assert len(fake.sleeps) <= 3


def test_wait_false_never_sleeps_but_attempts_stay_bounded() -> None:
    def forbidden_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}s with wait=False")

    retry = RetryPolicy(max_attempts=3, max_total_s=30.0, wait=False, sleep=forbidden_sleep)
    script = Script(httpx.Response(503))
    with pytest.raises(TransientError):
        call(script, retry)
    assert script.calls == 3

    limited = Script(httpx.Response(429, headers={"Retry-After": "5"}), httpx.Response(200))
    assert call(limited, retry).status_code == 200
    assert limited.calls == 2


def test_429_retry_after_seconds_is_honoured_exactly() -> None:
    fake = FakeTime()
    script = Script(httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200))
    assert call(script, policy(fake)).status_code == 200
    assert fake.sleeps == [2.0]


def test_429_retry_after_http_date_is_honoured_against_the_servers_date() -> None:
    fake = FakeTime()
    server_now = 1_700_000_000.0
    headers = {
        "Date": email.utils.formatdate(server_now, usegmt=True),
        "Retry-After": email.utils.formatdate(server_now + 3, usegmt=True),
    }
    script = Script(httpx.Response(429, headers=headers), httpx.Response(200))
    assert call(script, policy(fake)).status_code == 200
    assert fake.sleeps == [3.0]


def test_429_asking_more_than_the_budget_raises_rate_limited_at_once() -> None:
    fake = FakeTime()
    script = Script(httpx.Response(429, headers={"Retry-After": "120"}))
    with pytest.raises(RateLimited) as caught:
        call(script, policy(fake, max_total_s=30.0))
    assert caught.value.retry_after == 120.0
    assert script.calls == 1
    assert fake.sleeps == []
    assert_no_secret(caught.value)


def test_429_without_retry_after_backs_off_and_ends_rate_limited() -> None:
    fake = FakeTime()
    script = Script(httpx.Response(429))
    with pytest.raises(RateLimited) as caught:
        call(script, policy(fake, max_attempts=3))
    assert caught.value.retry_after is None
    assert script.calls == 3
    assert len(fake.sleeps) == 2


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout(f"timed out reading {SECRET_URL}"),
        httpx.ConnectTimeout(f"timed out connecting to {SECRET_URL}"),
        httpx.ConnectError(f"connection refused by {SECRET_URL}"),
        httpx.RemoteProtocolError(f"server hung up on {SECRET_URL}"),
    ],
)
def test_timeouts_and_connection_errors_are_transient_and_retried(exc: Exception) -> None:
    fake = FakeTime()
    script = Script(exc)
    with pytest.raises(TransientError) as caught:
        call(script, policy(fake, max_attempts=2))
    assert script.calls == 2
    assert type(exc).__name__ in str(caught.value)
    assert_no_secret(caught.value)


def test_a_transport_error_then_success_recovers() -> None:
    fake = FakeTime()
    script = Script(httpx.ConnectError("refused"), httpx.Response(200))
    assert call(script, policy(fake)).status_code == 200
    assert script.calls == 2


@pytest.mark.parametrize(("status", "error"), [(401, AuthError), (403, AuthError)])
def test_401_and_403_are_auth_errors_not_retried(status: int, error: type[PermanentError]) -> None:
    script = Script(httpx.Response(status))
    with pytest.raises(error) as caught:
        call(script, policy(FakeTime()))
    assert script.calls == 1
    assert_no_secret(caught.value)


def test_400_is_permanent_and_not_retried() -> None:
    script = Script(httpx.Response(400, json={"error": "bad phone 5551234567"}))
    with pytest.raises(PermanentError) as caught:
        call(script, policy(FakeTime()))
    assert not isinstance(caught.value, AuthError)
    assert script.calls == 1
    assert "400" in str(caught.value)
    assert_no_secret(caught.value)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.DecodingError(f"cannot decode the body of {SECRET_URL}"),
        httpx.TooManyRedirects(f"redirect loop at {SECRET_URL}"),
        httpx.InvalidURL(f"invalid port in {SECRET_URL}"),
    ],
)
def test_other_request_errors_are_permanent_and_not_retried(exc: Exception) -> None:
    script = Script(exc)
    with pytest.raises(PermanentError) as caught:
        call(script, policy(FakeTime()))
    assert not isinstance(caught.value, TransientError)
    assert script.calls == 1
    assert type(exc).__name__ in str(caught.value)
    assert_no_secret(caught.value)


def test_an_unparseable_url_is_a_permanent_error_naming_no_part_of_it() -> None:
    bad = "https://api.example.test:8a/v2/loyalty/lookup/5551234567?apikey=top-secret-key"
    with pytest.raises(PermanentError) as caught:
        send(
            client(Script(httpx.Response(200))),
            Call("GET", bad),
            service="svc",
            policy=policy(FakeTime()),
        )
    assert_no_secret(caught.value)


def test_declared_answers_are_returned_not_raised() -> None:
    script = Script(httpx.Response(404))
    assert call(script, policy(FakeTime()), answers=(404,)).status_code == 404
    with pytest.raises(PermanentError):
        call(Script(httpx.Response(404)), policy(FakeTime()))


def test_default_label_names_method_and_path_with_the_phone_masked() -> None:
    with pytest.raises(PermanentError) as caught:
        call(Script(httpx.Response(422)), policy(FakeTime()))
    assert "GET /v2/loyalty/lookup/***-***-4567" in str(caught.value)


def test_backoff_is_full_jitter_below_the_capped_exponential() -> None:
    retry = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0)
    for attempt in range(1, 12):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        draws = [retry.backoff_s(attempt) for _ in range(50)]
        assert all(0 <= draw <= ceiling for draw in draws)


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(max_total_s=-1)


def test_retry_after_header_forms() -> None:
    assert retry_after_header(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    assert retry_after_header(httpx.Response(429, headers={"Retry-After": "0.5"})) == 0.5
    assert retry_after_header(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_header(httpx.Response(429)) is None
    past = email.utils.formatdate(1_000_000_000, usegmt=True)
    assert retry_after_header(httpx.Response(429, headers={"Retry-After": past})) == 0.0


def test_json_fractions_are_decoded_as_decimal_never_float() -> None:
    response = httpx.Response(200, content=b'{"subtotal": 19.99, "tax": "1.10", "n": 3}')
    body = decode_json(response, service="svc", label="GET /x")
    assert body["subtotal"] == Decimal("19.99")
    assert isinstance(body["subtotal"], Decimal)
    assert body["n"] == 3


def test_json_decoding_keeps_every_digit_and_what_json_alone_reads() -> None:
    content = b'[{"a": 0.1, "b": 1e2, "c": 123456789012345678901234567890, "d": -0.0}]'
    body = decode_json(httpx.Response(200, content=content), service="svc", label="GET /x")
    assert body == [
        {"a": Decimal("0.1"), "b": Decimal("1E+2"), "c": 123456789012345678901234567890, "d": 0}
    ]
    assert str(body[0]["a"]) == "0.1" and str(body[0]["d"]) == "-0.0"
    # Beyond strict JSON (NaN) the body is still read, for its records to be judged one by one.
    lenient = decode_json(
        httpx.Response(200, content=b'[{"subtotal": NaN}, {"subtotal": 2.5}]'),
        service="svc",
        label="GET /x",
    )
    assert lenient[1] == {"subtotal": Decimal("2.5")}


def test_a_body_that_is_not_json_is_permanent() -> None:
    with pytest.raises(PermanentError, match="not JSON"):
        decode_json(httpx.Response(200, content=b"<html>"), service="svc", label="GET /x")


def test_build_http_client_bounds_every_call_and_pools_connections() -> None:
    settings = Settings(http_timeout_s=7.0, http_connect_timeout_s=2.0, http_pool_size=12)
    with build_http_client(settings) as http:
        assert http.timeout == httpx.Timeout(7.0, connect=2.0)
        transport = http._transport
        assert isinstance(transport, ConnectionStack)
        assert transport.max_connections == 12


def test_policy_from_settings() -> None:
    retry = RetryPolicy.from_settings(Settings(http_max_attempts=6, http_max_retry_s=12.5))
    assert (retry.max_attempts, retry.max_total_s, retry.wait) == (6, 12.5, True)
