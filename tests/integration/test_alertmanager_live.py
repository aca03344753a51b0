"""Alerts delivered: Debian's Prometheus evaluates the project's rules.yml against a real scrape
and sends what fires to Debian's Alertmanager (0.25) running the project's alertmanager.yml,
whose Discord receivers post to the sandbox's Discord.

org-1's Alleaves password is changed, so its run fails as a whole (as in the chaos case of wrong
credentials); the API's metrics then say so and the project's LoyaltyRunFailed rule fires with
``org="org-1"``. The shipped routes send that alert to org-1's channel and to the operators':
two posts, one per webhook, each naming the alert and the org and nothing secret.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from loyalty_worker import devstack
from tests.fixtures import prometheus
from tests.fixtures.pipeline import PHONE_HASH_KEY, WEBHOOK_TOKEN, Stack, running_stack, wait_for

pytestmark = pytest.mark.integration

ALERT = "LoyaltyRunFailed"
ORG = "org-1"
RECEIVERS = ("operators", ORG)  # the shipped receivers, each a Discord channel
DELIVERY_TIMEOUT_S = 90.0


def webhook_id(receiver: str) -> str:
    """The sandbox webhook a receiver posts to (the worker's own alerts go to another)."""
    return f"alertmanager-{receiver}"


def webhook_token(receiver: str) -> str:
    return f"am-token-{receiver}-Vb3Nq8"


def alertmanager_config(sandbox: devstack.Sandbox) -> dict[str, Any]:
    """The project's alertmanager.yml with each receiver's Discord webhook in the sandbox; its
    routes, grouping, inhibit rules and the rest as shipped, but for two waits."""
    config: dict[str, Any] = yaml.safe_load((prometheus.DEPLOY / "alertmanager.yml").read_text())
    # Shortened for the test only: the shipped group_wait (30 s) would hold the first message
    # for half a minute, and group_interval (5 min) a group's next one for five.
    config["route"]["group_wait"] = "1s"
    config["route"]["group_interval"] = "5s"
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert set(receivers) == set(RECEIVERS), "the shipped receivers changed"
    for name, receiver in receivers.items():
        assert set(receiver) == {"name", "discord_configs"}, f"{name}: not only Discord"
        for discord in receiver["discord_configs"]:
            discord["webhook_url"] = sandbox.webhook_url(webhook_id(name), webhook_token(name))
    return config


@dataclass
class Delivered:
    stack: Stack
    posts: list[devstack.WebhookPost]  # what Alertmanager posted to the sandbox's Discord

    def texts(self, receiver: str) -> list[str]:
        """What each post to ``receiver``'s webhook shows in the channel."""
        wanted = webhook_id(receiver)
        return [shown(post) for post in self.posts if post["webhookId"] == wanted]


def shown(post: devstack.WebhookPost) -> str:
    """A post's text as Discord shows it: its content, each embed's title and description
    (Alertmanager 0.25 sends an empty content and one embed, its colour a number)."""
    payload = post["payload"]
    parts = [str(payload.get("content") or "")]
    for embed in payload.get("embeds") or ():
        parts += [str(embed.get("title") or ""), str(embed.get("description") or "")]
    return "\n".join(parts)


def _alert_posts(stack: Stack) -> list[devstack.WebhookPost] | None:
    """Alertmanager's posts so far, once both receivers have one naming the alert."""
    ours = {webhook_id(receiver) for receiver in RECEIVERS}
    posts = [post for post in stack.messages() if post["webhookId"] in ours]
    reached = {post["webhookId"] for post in posts if ALERT in shown(post)}
    return posts if reached == ours else None


@pytest.fixture(scope="module")
def delivered(firestore_emulator: str, test_redis_url: str) -> Iterator[Delivered]:
    worker_port = devstack.free_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_stack(
            firestore_emulator,
            *("--customers", "20", "--seed", "5"),
            worker_env=prometheus.worker_env(worker_port),
            redis_url=test_redis_url,
        ) as stack,
        prometheus.running_alertmanager(alertmanager_config(stack.sandbox), Path(tmp)) as am,
        prometheus.prometheus_scraping(stack, worker_port, Path(tmp), alertmanager=am),
    ):
        settings = stack.firestore.collection("loyalty_settings").document(ORG)
        settings.update({"alleaves.password": "not-the-password"})
        progress = stack.run(ORG, timeout_s=120)
        assert progress.status == "failed", progress
        try:
            posts = wait_for(lambda: _alert_posts(stack), timeout_s=DELIVERY_TIMEOUT_S, poll_s=0.5)
        except AssertionError:
            pytest.fail(f"{ALERT} did not reach both webhooks: {stack.messages()}")
        yield Delivered(stack, posts)


def test_the_alert_reaches_the_operators_and_its_orgs_channel(delivered: Delivered) -> None:
    for receiver in RECEIVERS:
        wanted = webhook_id(receiver)
        titles = [
            str(embed.get("title"))
            for post in delivered.posts
            if post["webhookId"] == wanted
            for embed in post["payload"].get("embeds") or ()
        ]
        # The title is the group's labels, alertname and org (route group_by), e.g.
        # "[FIRING:1] LoyaltyRunFailed org-1 (critical)".
        assert [t for t in titles if ALERT in t and ORG in t], f"{receiver}: {titles}"
    # org-1's channel hears only of org-1: whatever else posts there carries its label.
    assert all(ORG in text for text in delivered.texts(ORG))


def test_the_message_names_the_alert_and_the_org_and_nothing_secret(delivered: Delivered) -> None:
    texts = [text for receiver in RECEIVERS for text in delivered.texts(receiver)]
    for text in texts:
        if ALERT not in text:
            continue
        assert ORG in text, text
        assert "the last loyalty run failed" in text, text  # the rule's summary annotation
    secrets = [
        prometheus.TOKEN,
        PHONE_HASH_KEY,
        WEBHOOK_TOKEN,
        "not-the-password",
        *(webhook_token(receiver) for receiver in RECEIVERS),
    ]
    phones = {
        re.sub(r"\D", "", str(customer.get("phone") or ""))
        for org in delivered.stack.dataset["orgs"]
        for customer in org["customers"]
    } - {""}
    for text in texts:
        assert not [secret for secret in secrets if secret in text], text
        assert not [phone for phone in phones if phone in text], text
        assert not re.search(r"\d{7,}", text), text  # nothing phone-like
