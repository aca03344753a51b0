"""The sandbox as a child process, and its control routes (faults, stats, Discord) as methods.

Its answers are typed where the sandbox gives them a shape (the faults in force, the Discord
posts it received); the dataset and the orders stay JSON documents, as the sandbox serves them
(``loyalty_worker.sandbox.data`` describes them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypedDict

import httpx

from loyalty_worker.devstack.processes import ChildProcess
from loyalty_worker.devstack.services import cli_argv
from loyalty_worker.sandbox.faults import Faults

if TYPE_CHECKING:  # a type only: nothing of the broker's side is imported
    from loyalty_worker.adapters.publisher import Json


class WebhookPost(TypedDict):
    """A Discord webhook post the sandbox received."""

    webhookId: str
    receivedAt: str  # ISO 8601, UTC
    payload: dict[str, Any]  # the message as posted: content, embeds


class Sandbox:
    """A running sandbox: its URLs, and its control routes (faults, stats, Discord) as methods."""

    def __init__(self, child: ChildProcess, base_url: str) -> None:
        self.child = child
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=60.0)

    @property
    def alleaves_url(self) -> str:
        return f"{self.base_url}/alleaves"

    @property
    def alpine_url(self) -> str:
        return f"{self.base_url}/alpine"

    def webhook_url(self, id: str = "1", token: str = "t") -> str:  # noqa: S107 - not a secret
        return f"{self.base_url}/discord/webhooks/{id}/{token}"

    def _call(self, method: str, path: str, body: object = None) -> Any:
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def messages(self) -> list[WebhookPost]:
        """Discord posts received, oldest first."""
        posts: list[WebhookPost] = self._call("GET", "/discord/messages")
        return posts

    def clear_messages(self) -> None:
        self._call("DELETE", "/discord/messages")

    def stats(self) -> dict[str, dict[str, int]]:
        """Per API: requests, rate_limited, server_errors, max_per_second (all credentials
        together), max_per_second_per_credential (what the rate limit counts), max_in_flight
        (and Alleaves logins)."""
        stats: dict[str, dict[str, int]] = self._call("GET", "/sandbox/stats")
        return stats

    def calls_by_org(self) -> dict[str, dict[str, int]]:
        """Per org, Alleaves and Alpine IQ requests since the last reset (a sandbox started
        with ``--count-calls-by-org``; ``sandbox.org_calls``)."""
        counts: dict[str, dict[str, int]] = self._call("GET", "/sandbox/stats/orgs")
        return counts

    def reset_stats(self) -> None:
        self._call("POST", "/sandbox/stats/reset")

    def set_faults(self, **changes: float | None) -> Faults:
        """Change some faults (latency_ms, error_rate, rate_limit, token_ttl_s, discord_status;
        None clears an optional one, a rate limit of 0 too); the faults now in force. With no
        arguments, just reads them."""
        return Faults(**self._call("POST", "/sandbox/faults", changes))

    def reset_faults(self) -> Faults:
        """Back to the faults the sandbox was started with."""
        return Faults(**self._call("DELETE", "/sandbox/faults"))

    def dataset(self) -> dict[str, Any]:
        """The dataset as currently served (orders upserted since start included)."""
        return dict(self._call("GET", "/sandbox/dataset"))

    def upsert_orders(self, org_id: str, orders: Sequence[Mapping[str, Json]]) -> dict[str, int]:
        """Add or replace flat orders by ``id_order``; returns ``{"created", "updated"}``."""
        counts: dict[str, int] = self._call("PUT", f"/sandbox/orgs/{org_id}/orders", list(orders))
        return counts

    def remove_customer(self, org_id: str, customer_id: int) -> int:
        """Alleaves lists that customer no more; how many rows went (0 or 1)."""
        answer = self._call("DELETE", f"/sandbox/orgs/{org_id}/customers/{customer_id}")
        return int(answer["removed"])

    def output(self) -> str:
        return self.child.output()

    def stop(self) -> None:
        """Stop the process; safe to call twice."""
        self._http.close()
        self.child.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sandbox(*args: str, timeout_s: float = 60.0) -> Sandbox:
    """``loyalty-worker sandbox --port 0 *args`` as a child, once it accepts connections.

    Large generated datasets take longer to start than the default allows: pass ``timeout_s``.
    """
    child = ChildProcess.start("sandbox", cli_argv("sandbox", "--port", "0", *args))
    match = child.wait_for_line(r"sandbox listening on (http://\S+)", timeout_s=timeout_s)
    return Sandbox(child, match.group(1))
