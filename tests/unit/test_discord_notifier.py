"""Discord alerts: Discord's size limits always respected, every cut announced, no token leaked."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from loyalty_worker.adapters.discord import (
    COLORS,
    MAX_CONTENT,
    MAX_DESCRIPTION,
    MAX_EMBED_TOTAL,
    MAX_FIELD_NAME,
    MAX_FIELD_VALUE,
    MAX_FIELDS,
    MAX_TITLE,
    MAX_URL,
    ConsoleNotifier,
    DiscordNotifier,
    build_message,
    cut_lines,
)
from loyalty_worker.adapters.http import RetryPolicy
from loyalty_worker.errors import PermanentError, TransientError
from loyalty_worker.ports.notify import Alert, Notifier
from loyalty_worker.services.run.summary import summary_alert
from tests.unit.test_run_alerts import close

TOKEN = "webhook-secret-token-abc123"
WEBHOOK = f"https://discord.test/api/webhooks/42/{TOKEN}"


class FakeDiscord:
    """A webhook that records what it accepts and answers queued statuses first."""

    def __init__(self) -> None:
        self.queued: list[httpx.Response | Exception] = []
        self.accepted: list[dict[str, Any]] = []
        self.requests = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.queued:
            outcome = self.queued.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        if request.url.path != f"/api/webhooks/42/{TOKEN}":
            return httpx.Response(404, json={"message": "Unknown Webhook", "code": 10015})
        self.accepted.append(json.loads(request.content))
        return httpx.Response(204)


def make_notifier(fake: FakeDiscord, **retry: Any) -> DiscordNotifier:
    return DiscordNotifier(
        httpx.Client(transport=httpx.MockTransport(fake.handler)),
        webhook_url=WEBHOOK,
        retry=RetryPolicy(**{"max_attempts": 3, "wait": False, **retry}),
    )


def embed_total(embed: Mapping[str, Any]) -> int:
    """Characters Discord counts against the 6,000 limit of an embed."""
    fields = embed.get("fields", [])
    return (
        len(embed.get("title", ""))
        + len(embed.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in fields)
    )


def assert_within_discord_limits(message: Mapping[str, Any]) -> None:
    assert 0 < len(message["content"]) <= MAX_CONTENT
    assert len(message["embeds"]) == 1
    embed = message["embeds"][0]
    assert len(embed["title"]) <= MAX_TITLE
    assert len(embed["description"]) <= MAX_DESCRIPTION
    assert len(embed["fields"]) <= MAX_FIELDS
    for field in embed["fields"]:
        assert 0 < len(field["name"]) <= MAX_FIELD_NAME
        assert 0 < len(field["value"]) <= MAX_FIELD_VALUE
    assert embed_total(embed) <= MAX_EMBED_TOTAL


def test_satisfies_the_notifier_port() -> None:
    notifiers: list[Notifier] = [make_notifier(FakeDiscord()), ConsoleNotifier(io.StringIO())]
    assert len(notifiers) == 2


def test_an_alert_is_posted_as_content_and_one_embed() -> None:
    fake = FakeDiscord()
    alert = Alert(
        title="Loyalty sync: org-1",
        summary="3 discrepancies",
        sections=[("alpine_higher", ["customer 1", "customer 2"]), ("calculated_higher", [])],
        severity="warning",
    )
    make_notifier(fake).send(alert)
    assert len(fake.accepted) == 1
    message = fake.accepted[0]
    embed = message["embeds"][0]
    assert message["content"] == "Loyalty sync: org-1"
    assert (embed["title"], embed["description"]) == ("Loyalty sync: org-1", "3 discrepancies")
    assert embed["color"] == COLORS["warning"]
    assert embed["fields"] == [
        {"name": "alpine_higher", "value": "customer 1\ncustomer 2", "inline": False},
        {"name": "calculated_higher", "value": "(none)", "inline": False},
    ]
    assert_within_discord_limits(message)


@pytest.mark.parametrize("status", [200, 204])
def test_200_and_204_are_success(status: int) -> None:
    fake = FakeDiscord()
    fake.queued = [httpx.Response(status)]
    make_notifier(fake).send(Alert(title="t", summary="s"))
    assert fake.requests == 1


def test_a_5000_line_alert_is_cut_to_every_limit_and_says_how_much_was_cut() -> None:
    lines = [
        f"customer {n}: alpine_higher by {n % 90} points (***-***-{n:04d})" for n in range(5000)
    ]
    alert = Alert(title="T" * 300, summary="S" * 5000, sections=[("All customers", lines)])
    message = build_message(alert)
    assert_within_discord_limits(message)
    field = message["embeds"][0]["fields"][0]
    shown = field["value"].split("\n")
    kept, tail = shown[:-1], shown[-1]
    assert kept == lines[: len(kept)]
    assert tail == f"… and {5000 - len(kept)} more"
    assert message["embeds"][0]["title"].endswith("…")


def test_many_long_sections_fit_and_the_left_out_sections_are_counted() -> None:
    sections = [(f"section {s}", [f"line {s}.{n}" for n in range(5000 // 40)]) for s in range(40)]
    message = build_message(Alert(title="Batch", summary="x" * 500, sections=sections))
    assert_within_discord_limits(message)
    fields = message["embeds"][0]["fields"]
    shown = len(fields) - 1
    assert fields[-1]["value"] == f"… and {40 - shown} more sections"
    for field in fields[:-1]:
        assert "more" in field["value"]


def test_up_to_25_short_sections_all_fit_without_a_note() -> None:
    sections = [(f"s{n}", [f"line {n}"]) for n in range(25)]
    fields = build_message(Alert(title="t", summary="s", sections=sections))["embeds"][0]["fields"]
    assert [f["name"] for f in fields] == [f"s{n}" for n in range(25)]


def test_cut_lines_keeps_whole_lines_and_clips_a_single_huge_one() -> None:
    assert cut_lines(["a", "b"], 100) == "a\nb"
    assert cut_lines([], 100) == "(none)"
    cut = cut_lines(["x" * 50] * 10, 120)
    assert cut == "x" * 50 + "\n" + "x" * 50 + "\n… and 8 more"
    huge = cut_lines(["y" * 5000], 1024)
    assert len(huge) <= 1024 and huge.endswith("…")


def test_a_429_waits_as_long_as_the_body_asks() -> None:
    fake = FakeDiscord()
    fake.queued = [httpx.Response(429, json={"message": "rate limited", "retry_after": 1.5})]
    waits: list[float] = []
    make_notifier(fake, wait=True, sleep=waits.append).send(Alert(title="t", summary="s"))
    assert waits == [1.5]
    assert len(fake.accepted) == 1


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (httpx.Response(500), TransientError),
        (httpx.ConnectError(f"cannot reach {WEBHOOK}"), TransientError),
        (httpx.Response(404, json={"message": "Unknown Webhook"}), PermanentError),
    ],
)
def test_the_webhook_token_never_shows_in_errors(
    outcome: httpx.Response | Exception, error: type[Exception]
) -> None:
    fake = FakeDiscord()
    fake.queued = [outcome] * 3
    with pytest.raises(error) as caught:
        make_notifier(fake).send(Alert(title="t", summary="s"))
    assert TOKEN not in str(caught.value) + repr(caught.value.args)


def test_console_notifier_writes_every_line() -> None:
    stream = io.StringIO()
    lines = [f"line {n}" for n in range(5000)]
    ConsoleNotifier(stream).send(
        Alert(title="Batch", summary="done", sections=[("All", lines)], severity="error")
    )
    text = stream.getvalue()
    assert text.startswith("[ERROR] Batch\ndone\nAll:\n")
    assert text.count("\n  line ") == 5000


PUBLIC = "https://loyalty.example.com"
RUN_LINKS = (
    ("Run page", "/dashboard/orgs/org-1/runs/r1"),
    ("Discrepancy queue", "/dashboard/orgs/org-1/discrepancies"),
)


def test_the_embed_links_to_the_run_page_and_the_discrepancy_queue() -> None:
    fake = FakeDiscord()
    notifier = DiscordNotifier(
        httpx.Client(transport=httpx.MockTransport(fake.handler)),
        webhook_url=WEBHOOK,
        retry=RetryPolicy(max_attempts=1, wait=False),
        public_url=PUBLIC,
    )
    notifier.send(Alert(title="Loyalty sync completed: org-1", summary="s", links=RUN_LINKS))
    embed = fake.accepted[0]["embeds"][0]
    assert embed["url"] == f"{PUBLIC}/dashboard/orgs/org-1/runs/r1"
    assert embed["fields"][0] == {
        "name": "Links",
        "value": f"[Run page]({PUBLIC}/dashboard/orgs/org-1/runs/r1)\n"
        f"[Discrepancy queue]({PUBLIC}/dashboard/orgs/org-1/discrepancies)",
        "inline": False,
    }
    assert_within_discord_limits(fake.accepted[0])


def test_a_summary_alert_carries_the_run_links() -> None:
    summary, _ = close(dry_run=False)
    message = build_message(summary_alert(summary), public_url=PUBLIC + "/")
    embed = message["embeds"][0]
    assert embed["url"] == f"{PUBLIC}/dashboard/orgs/org-1/runs/r1"
    assert f"({PUBLIC}/dashboard/orgs/org-1/discrepancies)" in embed["fields"][0]["value"]


def test_the_links_survive_an_alert_cut_to_every_limit() -> None:
    sections = [(f"section {s}", [f"line {s}.{n}" for n in range(200)]) for s in range(40)]
    alert = Alert(title="T" * 300, summary="S" * 5000, sections=sections, links=RUN_LINKS)
    message = build_message(alert, public_url=PUBLIC)
    assert_within_discord_limits(message)
    fields = message["embeds"][0]["fields"]
    assert fields[0]["name"] == "Links" and PUBLIC in fields[0]["value"]
    assert fields[-1]["value"].endswith("more sections")


def test_a_link_longer_than_discord_takes_is_left_out() -> None:
    alert = Alert(title="t", summary="s", links=(("Run page", "/runs/" + "x" * MAX_URL),))
    embed = build_message(alert, public_url=PUBLIC)["embeds"][0]
    assert "url" not in embed and embed["fields"] == []


def test_an_alert_without_links_has_no_url() -> None:
    embed = build_message(Alert(title="t", summary="s"), public_url=PUBLIC)["embeds"][0]
    assert "url" not in embed and embed["fields"] == []


def test_console_notifier_writes_the_links_in_full() -> None:
    stream = io.StringIO()
    ConsoleNotifier(stream, public_url=PUBLIC).send(Alert(title="t", summary="s", links=RUN_LINKS))
    assert f"Run page: {PUBLIC}/dashboard/orgs/org-1/runs/r1\n" in stream.getvalue()
