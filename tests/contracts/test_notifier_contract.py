"""One set of Notifier checks, run over RecordingNotifier and the real Discord notifier.

The real notifier posts to the sandbox's webhook over HTTP, and what the sandbox received
(``/discord/messages``) is compared with what the fake recorded: the same alerts, in order,
with their title, summary, sections and severity; an alert that cannot be delivered raises
(transient when Discord is down, permanent when it refuses the webhook) and delivers nothing.
Discord's own limits (a long alert cut, a 429 waited out) are checked against the sandbox below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from loyalty_worker.adapters.discord import COLORS, DiscordNotifier
from loyalty_worker.devstack import Sandbox
from loyalty_worker.errors import LoyaltyError, PermanentError, TransientError
from loyalty_worker.ports.notify import Alert, Notifier
from tests.contracts.sandbox_clients import RETRY
from tests.fakes import RecordingNotifier

# (title, summary, section names, severity) of one delivered alert.
Delivered = tuple[str, str, list[str], str]
SEVERITY_OF_COLOR = {color: severity for severity, color in COLORS.items()}


@dataclass
class Channel:
    notifier: Notifier
    delivered: Callable[[], list[Delivered]]
    # Make every later delivery fail: "down" (5xx) or "refused" (the webhook is gone).
    fail: Callable[[str], None]


def recording_channel() -> Channel:
    fake = RecordingNotifier()

    def fail(how: str) -> None:
        error = TransientError if how == "down" else PermanentError
        fake.error = error("discord", f"webhook {how}")

    return Channel(
        fake,
        lambda: [
            (a.title, a.summary, [name for name, _ in a.sections], a.severity) for a in fake.alerts
        ],
        fail,
    )


def discord_channel(http: httpx.Client, sandbox: Sandbox) -> Channel:
    notifier = DiscordNotifier(http, webhook_url=sandbox.webhook_url("42", "tok"), retry=RETRY)

    def delivered() -> list[Delivered]:
        embeds = [m["payload"]["embeds"][0] for m in sandbox.messages()]
        return [
            (
                e["title"],
                e["description"],
                [f["name"] for f in e["fields"]],
                SEVERITY_OF_COLOR[e["color"]],
            )
            for e in embeds
        ]

    def fail(how: str) -> None:
        sandbox.set_faults(discord_status=503 if how == "down" else 404)

    return Channel(notifier, delivered, fail)


@pytest.fixture(params=["fake", pytest.param("sandbox", marks=pytest.mark.integration)])
def channel(request: pytest.FixtureRequest) -> Channel:
    if request.param == "fake":
        return recording_channel()
    sandbox: Sandbox = request.getfixturevalue("clean_sandbox")
    return discord_channel(request.getfixturevalue("http"), sandbox)


def test_alerts_are_delivered_in_order_as_sent(channel: Channel) -> None:
    assert channel.delivered() == []
    channel.notifier.send(Alert(title="Loyalty sync completed", summary="all good"))
    channel.notifier.send(
        Alert(
            title="Loyalty sync failed",
            summary="2 failed",
            sections=[("Failures by reason", ["malformed: 2"]), ("Error", ["boom"])],
            severity="error",
        )
    )
    assert channel.delivered() == [
        ("Loyalty sync completed", "all good", [], "info"),
        ("Loyalty sync failed", "2 failed", ["Failures by reason", "Error"], "error"),
    ]


@pytest.mark.parametrize(("how", "error"), [("down", TransientError), ("refused", PermanentError)])
def test_an_undeliverable_alert_raises_and_delivers_nothing(
    channel: Channel, how: str, error: type[LoyaltyError]
) -> None:
    channel.notifier.send(Alert(title="first", summary="delivered"))
    channel.fail(how)
    with pytest.raises(error):
        channel.notifier.send(Alert(title="second", summary="lost", severity="warning"))
    assert [title for title, *_ in channel.delivered()] == ["first"]


# --- Discord's own limits, against the sandbox ----------------------------------------------


@pytest.mark.integration
def test_discord_posts_are_recorded_and_a_cut_long_alert_accepted(
    clean_sandbox: Sandbox, http: httpx.Client
) -> None:
    notifier = DiscordNotifier(
        http, webhook_url=clean_sandbox.webhook_url("42", "secret-token"), retry=RETRY
    )
    notifier.send(Alert(title="Loyalty sync", summary="all good"))
    lines = [f"customer {n}: alpine_higher by {n % 97} points" for n in range(5000)]
    sections = [("alpine_higher", lines), *((f"section {n}", lines[:50]) for n in range(30))]
    notifier.send(Alert(title="L" * 400, summary="S" * 5000, sections=sections, severity="error"))

    messages = clean_sandbox.messages()
    assert [m["webhookId"] for m in messages] == ["42", "42"]
    assert messages[0]["payload"]["embeds"][0]["description"] == "all good"
    long_fields = messages[1]["payload"]["embeds"][0]["fields"]
    assert long_fields[0]["value"].endswith("more")
    assert long_fields[-1]["value"].endswith("more sections")


@pytest.mark.integration
def test_discord_rate_limit_is_waited_out(clean_sandbox: Sandbox, http: httpx.Client) -> None:
    clean_sandbox.set_faults(rate_limit=1)
    notifier = DiscordNotifier(http, webhook_url=clean_sandbox.webhook_url("7", "tok"), retry=RETRY)
    for n in range(3):
        notifier.send(Alert(title=f"alert {n}", summary="s"))
    assert len(clean_sandbox.messages()) == 3
    assert clean_sandbox.stats()["discord"]["rate_limited"] > 0
