"""What the routes work with, built once per app and kept on ``app.state``.

``ApiServices`` is what a caller hands ``create_app`` (``wiring`` the real clients, tests fakes);
``ApiState`` adds what the API builds over them: the org directory and the webhook receiver, and
the public URL the app is served at (``LOYALTY_PUBLIC_URL``), read here by every part of the app.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from pydantic import ValidationError

from loyalty_worker.adapters.rate_limit import RedisSlidingWindow
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.adapters.sessions import RedisSessionStore
from loyalty_worker.adapters.webhook_ledger import RedisWebhookLedger
from loyalty_worker.api.errors import invalid_body
from loyalty_worker.api.models import WebhookEvent
from loyalty_worker.api.orgs import OrgDirectory
from loyalty_worker.api.session import served_securely
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.config import DEFAULT_PUBLIC_URL, base_url
from loyalty_worker.names import new_run_id
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.profiles import OrgStore
from loyalty_worker.ports.sources import LoyaltyLookup
from loyalty_worker.ports.triggers import Enqueuer
from loyalty_worker.services.lookup.webhooks import SignedEvent, WebhookReceiver

# The rate limits' window: LOYALTY_API_RATE_LIMIT_PER_MIN requests in any minute (and so on).
RATE_WINDOW_S = 60.0


@dataclass
class ApiServices:
    """What the routes work with; ``wiring.build_app`` builds the real ones."""

    store: OrgStore
    tracker: RunTracker
    enqueuer: Enqueuer
    redis: redis.Redis
    alpine_for: Callable[[OrgSettings], LoyaltyLookup | None]
    # Key of the profiles' phoneHash (``Settings.phone_key``), to find a profile by phone.
    phone_key: bytes | None = None
    clock: Callable[[], float] = time.time
    new_run_id: Callable[[str], str] = new_run_id


@dataclass(frozen=True, slots=True)
class ApiState:
    """One app's dependencies (``app.state.api``), read by the routes through ``deps``."""

    services: ApiServices
    settings: ApiSettings
    directory: OrgDirectory
    webhooks: WebhookReceiver
    # People's sessions, in Redis.
    sessions: RedisSessionStore
    # Each caller's requests per minute, and customer searches per minute, in Redis; None when
    # that limit is off. Sign-in attempts per client address and per account.
    limiter: RedisSlidingWindow | None
    search_limiter: RedisSlidingWindow | None
    sign_in_limiter: RedisSlidingWindow
    # Where people reach the app (``Settings.public_url``): ``scheme://host[:port]``, no path.
    # It decides the links the dashboard shows, HSTS, and which cookies are ``Secure``.
    public_url: str = DEFAULT_PUBLIC_URL

    @property
    def https(self) -> bool:
        """Whether the app is served over https (its public URL is)."""
        return served_securely(self.public_url)


def build_state(
    services: ApiServices, settings: ApiSettings, public_url: str = DEFAULT_PUBLIC_URL
) -> ApiState:
    """The app's dependencies over ``services``: nothing here opens a connection. ValueError
    when ``public_url`` is not an http(s) base URL (``config.base_url``)."""
    directory = OrgDirectory(services.store, fallback_secrets=settings.webhook_secrets)
    webhooks = WebhookReceiver(
        secrets=directory,
        ledger=RedisWebhookLedger(services.redis),
        enqueuer=services.enqueuer,
        parse=parse_event,
        replay_window_s=settings.webhook_replay_window_s,
        dedupe_window_s=settings.webhook_dedupe_window_s,
        clock=services.clock,
    )
    return ApiState(
        services=services,
        settings=settings,
        directory=directory,
        webhooks=webhooks,
        sessions=RedisSessionStore(
            services.redis, idle_s=settings.session_idle_s, max_s=settings.session_max_s
        ),
        limiter=_per_minute(services.redis, settings.rate_limit_per_min, "ratelimit"),
        search_limiter=_per_minute(services.redis, settings.search_limit_per_min, "searches"),
        sign_in_limiter=RedisSlidingWindow(
            services.redis,
            limit=settings.sign_in_limit_per_min,
            window_s=RATE_WINDOW_S,
            prefix="loyalty:api:sign-ins",
        ),
        public_url=base_url(public_url),
    )


def _per_minute(client: redis.Redis, per_min: int, name: str) -> RedisSlidingWindow | None:
    """A limit of ``per_min`` in any minute per key; None when it is 0 (off)."""
    if not per_min:
        return None
    return RedisSlidingWindow(
        client, limit=per_min, window_s=RATE_WINDOW_S, prefix=f"loyalty:api:{name}"
    )


def parse_event(body: bytes) -> SignedEvent:
    """A verified body as an event; RequestValidationError (a 422) when it is none."""
    try:
        return WebhookEvent.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_body(exc) from None
