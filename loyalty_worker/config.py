"""Process settings from the environment (every variable is listed in docs/settings.md)."""

from __future__ import annotations

import urllib.parse
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from loyalty_worker.names import DEMO_FIREBASE_PROJECT
from loyalty_worker.secret_strength import KEY, PASSWORD, check_secret

ENV_PREFIX = "LOYALTY_"
# Where the dashboard is served when no public URL is given: the API's own default address.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class Settings(BaseSettings):
    """Where the worker finds its services; per-org rules and credentials live in Firestore."""

    # Errors never echo a value (keys, webhook URLs): they are printed at start-up.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    redis_url: str = "redis://127.0.0.1:6379/0"
    firestore_project: str = "markitbot-local"
    alleaves_base_url: str = "https://app.alleaves.com/api"
    alpine_base_url: str = "https://lab.alpineiq.com/api"
    discord_webhook_url: SecretStr | None = None
    # The dashboard's public base URL (scheme and host, no path): the runs' alerts link to
    # their run's page and the org's discrepancy queue under it.
    public_url: str = DEFAULT_PUBLIC_URL
    # Markitbot's Firebase project, whose Authentication accounts sign in to the dashboard, and
    # its public web API key, which the browser SDK sends (it names the project; not a secret).
    # ``demo-`` projects exist only in the emulators (FIREBASE_AUTH_EMULATOR_HOST).
    firebase_project_id: str = Field(default=DEMO_FIREBASE_PROJECT, min_length=1)
    firebase_api_key: str = Field(default="demo-api-key", min_length=1)

    http_timeout_s: float = Field(default=10.0, gt=0)
    http_connect_timeout_s: float = Field(default=5.0, gt=0)
    http_pool_size: int = Field(default=64, ge=1)
    http_max_attempts: int = Field(default=4, ge=1)
    http_max_retry_s: float = Field(default=30.0, ge=0)
    # A response body larger than this is refused (a provider gone wrong cannot fill memory).
    http_max_response_bytes: int = Field(default=16 * 2**20, ge=1024)
    # Every Firestore call: the deadline of one RPC, and the time its retries may take.
    firestore_timeout_s: float = Field(default=10.0, gt=0)
    firestore_retry_s: float = Field(default=3.0, ge=0)
    # The most pages one listing is read (the customers, one date window of orders, Alpine IQ's
    # contacts): a provider that keeps answering full pages stops the run here, reported.
    max_pages: int = Field(default=5000, ge=1)

    # Requests per second each org's account may make to each API, shared by all worker
    # processes, for an org whose settings set none (alleavesRateLimit, alpineRateLimit; unset:
    # no limit).
    alleaves_rate_limit: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    alpine_rate_limit: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    order_history_start: date = date(2018, 1, 1)
    order_window_days: int = Field(default=14, ge=1)
    order_fetch_parallelism: int = Field(default=32, ge=1)
    # A run's order history is cut into this many slices (every n-th date window), read by
    # whichever worker processes take them (1: its planner reads it alone).
    plan_slices: int = Field(default=8, ge=1, le=64)
    # A full run's Alpine IQ look-ups start while its plan reads the history (off: every
    # look-up is made by the customers' chunk tasks).
    plan_lookups: bool = True
    page_size: int = Field(default=100, ge=1, le=1000)

    # Redis redelivers a message whose worker died unacknowledged after this many seconds.
    # The deadlines must hold together (docs/operations.md "Deadlines"; checked at worker start):
    # longest task < visibility timeout < stall timeout.
    visibility_timeout_s: int = Field(default=1800, ge=10)
    # A customer task starts no new customer (a chunk) or page (a single sync) after this
    # long; a run's planning reads no new page after ``plan_budget_s``.
    task_budget_s: float = Field(default=120.0, gt=0)
    plan_budget_s: float = Field(default=1200.0, gt=0)
    # "enforce": a worker refuses to start with deadlines out of order; "warn": it logs them
    # (test stacks that shrink one timeout on purpose).
    deadline_check: Literal["enforce", "warn"] = "enforce"
    worker_concurrency: int = Field(default=16, ge=1)
    # Threads of each worker process that never take batch work (planning, chunks): a person's
    # Sync Now, a webhook's sync or another service's send_task finds one free (``lanes``).
    interactive_threads: int = Field(default=2, ge=0)
    # A run's chunks wait in Redis and go to the broker's batch queue in turn across the runs
    # going, so that it holds at most this many (``services.run.fair``).
    batch_queue_depth: int = Field(default=8, ge=1)
    # Customers per batch task: one message, one batched Firestore write, one result record.
    # Each chunk costs its task's bookkeeping (events, the message, the profile read and write
    # round trips): 100 spends a fifth less of the worker's CPU than 25 (docs/performance.md).
    sync_chunk_size: int = Field(default=100, ge=1, le=500)
    sync_max_retries: int = Field(default=5, ge=0)
    # Every task of a run beats this often (the run is alive, the org's lock kept); a run with
    # no beat, no result and no queued work for ``redispatch_s`` has lost work: the watchdog
    # (Beat, every ``redispatch_s`` / 2) re-sends it, at most ``recovery_attempts`` times, then
    # closes the run as incomplete, naming the customers still missing.
    heartbeat_s: float = Field(default=10.0, gt=0)
    redispatch_s: float = Field(default=60.0, gt=0)
    recovery_attempts: int = Field(default=3, ge=0)
    # The backstop: a run with no progress at all for this long is closed as incomplete.
    run_stall_s: float = Field(default=3600.0, gt=0)
    # A closed run keeps its per-customer results in Redis this long for inspection (0: they go
    # with the summary write; the summary holds their totals).
    run_results_keep_s: int = Field(default=0, ge=0)
    # An org's run lock lives this long after its run's last heartbeat (a dead run frees it).
    run_lock_ttl_s: int = Field(default=180, ge=30)
    # Incremental runs: every N minutes from Beat (unset: none), re-reading orders created up
    # to this many days before the last successful run.
    incremental_every_min: int | None = Field(default=None, ge=1)
    incremental_overlap_days: int = Field(default=14, ge=1)
    nightly_hour: int = Field(default=2, ge=0, le=23)
    # A Beat that was down at 02:00 still starts the night's run until 02:00 + this many hours.
    nightly_window_h: int = Field(default=4, ge=1, le=12)

    # A customer synced on its own (another service, a webhook): Alleaves has no get-by-id, so
    # the customer listing is read at most this many pages deep to find them; at most this many
    # such syncs of one org run at once (the others wait their turn, retried); the slot of a
    # worker that died mid-sync frees itself after this many seconds.
    single_sync_max_customer_pages: int = Field(default=200, ge=1)
    single_sync_concurrency: int = Field(default=2, ge=1)
    single_sync_slot_ttl_s: int = Field(default=900, ge=10)

    # The dashboard's audit (each review change, each export of contact details) is kept this
    # many days: written with an ``expireAt`` for Firestore's TTL, never shown once older, and
    # deleted by the daily sweep (Beat).
    audit_retention_days: int = Field(default=730, ge=1)

    log_format: Literal["text", "json"] = "text"

    # Each worker process serves its metrics (Prometheus) on this port; a second process on the
    # same host needs another (9809, ...). 0: no metrics endpoint.
    metrics_port: int | None = Field(default=9808, ge=0, le=65535)

    # Key of the profiles' phoneHash (agents find a profile by phone); unset: none written, and
    # the hashes already written are left as they are.
    phone_hash_key: SecretStr | None = None

    flower_user: str = "admin"
    flower_password: SecretStr | None = None

    # Every secret we choose is checked (secret_strength: length, placeholder words, entropy);
    # the Discord webhook URL is not: Discord issues it, token and all.
    @field_validator("phone_hash_key", "flower_password")
    @classmethod
    def _strong_secret(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if secret is not None:
            field = str(info.field_name)
            strength = PASSWORD if field == "flower_password" else KEY
            # the message names the variable, never the value: settings errors are printed
            check_secret(secret.get_secret_value(), ENV_PREFIX + field.upper(), strength)
        return secret

    @field_validator("alleaves_base_url", "alpine_base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("must be an http(s) URL with a host")
        if parsed.query or parsed.fragment or parsed.username or parsed.password:
            raise ValueError("must hold no query, fragment or credentials")
        return url

    @field_validator("public_url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        return base_url(url)

    @property
    def audit_retention(self) -> timedelta:
        return timedelta(days=self.audit_retention_days)

    @property
    def phone_key(self) -> bytes | None:
        """The ``phoneHash`` key as bytes, when configured."""
        return (
            None if self.phone_hash_key is None else self.phone_hash_key.get_secret_value().encode()
        )


def base_url(url: str) -> str:
    """``url`` as a base URL, ``scheme://host[:port]`` (a trailing ``/`` dropped); ValueError
    unless it is http(s) with a host and nothing else (no path, query, fragment or credentials).
    ``LOYALTY_PUBLIC_URL`` is one, and the API checks the one it is given again."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("must be an http(s) URL with a host")
    if parsed.query or parsed.fragment or parsed.username or parsed.password:
        raise ValueError("must hold no query, fragment or credentials")
    if parsed.path not in ("", "/"):
        raise ValueError("must be the dashboard's base URL: scheme and host, no path")
    try:
        _ = parsed.port  # a port that is not a number raises here
    except ValueError:
        raise ValueError("must have a numeric port") from None
    return f"{parsed.scheme}://{parsed.netloc}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once; tests call ``get_settings.cache_clear()``."""
    return Settings()
