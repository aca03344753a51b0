"""Builds the adapters from settings, once per process, lazily (after a worker forks).

gRPC (Firestore) and open sockets do not survive ``fork``: nothing here is built at import, and
Celery's ``worker_process_init`` calls ``reset()`` in every child before its first task.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import httpx
import redis

from loyalty_worker import names
from loyalty_worker.adapters.alleaves import AlleavesAccount, AlleavesClient
from loyalty_worker.adapters.alpine import AlpineIQClient
from loyalty_worker.adapters.audit_records import FirestoreActivityLog
from loyalty_worker.adapters.contacts import FirestoreContactStore
from loyalty_worker.adapters.dashboard_store import FirestoreDashboardStore
from loyalty_worker.adapters.discord import ConsoleNotifier, DiscordNotifier
from loyalty_worker.adapters.fair_share import RedisFairShare
from loyalty_worker.adapters.firestore import FirestoreProfileStore, build_firestore_client
from loyalty_worker.adapters.http import RetryPolicy, build_http_client
from loyalty_worker.adapters.order_slices import RedisOrderSlices
from loyalty_worker.adapters.rate_limit import RateLimit, RedisRateLimiter
from loyalty_worker.adapters.run_phones import RedisRunPhones
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.adapters.sync_slots import RedisSyncSlots
from loyalty_worker.config import Settings, get_settings
from loyalty_worker.errors import PermanentError
from loyalty_worker.logs import register_secret
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.ports.notify import Notifier
from loyalty_worker.services.run.context import BatchOptions, RunPorts
from loyalty_worker.services.run.heartbeat import Heartbeat
from loyalty_worker.turn_pool import TurnPool

SETTINGS_TTL_S = 60.0


@dataclass(frozen=True)
class OrgClients:
    settings: OrgSettings
    alleaves: AlleavesClient
    alpine: AlpineIQClient
    notifier: Notifier


class Container:
    """The process's clients: one httpx pool, one Firestore client, one Redis client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        for secret in (
            settings.discord_webhook_url,
            settings.flower_password,
            settings.phone_hash_key,
        ):
            if secret is not None:
                register_secret(secret.get_secret_value())
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None
        self._store: FirestoreProfileStore | None = None
        self._tracker: RunTracker | None = None
        self._redis: redis.Redis | None = None
        self._lookups: TurnPool | None = None
        self._heartbeat: Heartbeat | None = None
        self._orgs: dict[str, tuple[float, OrgClients]] = {}

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.settings.http_max_attempts,
            max_total_s=self.settings.http_max_retry_s,
        )

    @property
    def redis(self) -> redis.Redis:
        with self._lock:
            if self._redis is None:
                self._redis = redis.Redis.from_url(self.settings.redis_url)
            return self._redis

    @property
    def http(self) -> httpx.Client:
        """The process's pool; a request sent for an org's account goes inside a slot of its
        rate limit (``Container.org``)."""
        client = self.redis
        with self._lock:
            if self._http is None:
                limiter = RedisRateLimiter(client)
                self._http = build_http_client(self.settings, limiter=limiter)
            return self._http

    @property
    def store(self) -> FirestoreProfileStore:
        with self._lock:
            if self._store is None:
                client = build_firestore_client(self.settings.firestore_project)
                self._store = FirestoreProfileStore(
                    client,
                    timeout_s=self.settings.firestore_timeout_s,
                    retry_budget_s=self.settings.firestore_retry_s,
                )
            return self._store

    @property
    def dashboard_store(self) -> FirestoreDashboardStore:
        """The reviews and their audit (the retention's sweep), on the process's client."""
        return FirestoreDashboardStore(
            self.store.client,
            timeout_s=self.settings.firestore_timeout_s,
            retention=self.settings.audit_retention,
        )

    @property
    def contact_store(self) -> FirestoreContactStore:
        """Contacts and the export records, on the process's client."""
        return FirestoreContactStore(
            self.store.client,
            timeout_s=self.settings.firestore_timeout_s,
            retention=self.settings.audit_retention,
        )

    @property
    def activity_log(self) -> FirestoreActivityLog:
        """The dashboard's activity records (the retention's sweep), on the process's client."""
        return FirestoreActivityLog(
            self.store.client,
            timeout_s=self.settings.firestore_timeout_s,
            retention=self.settings.audit_retention,
        )

    @property
    def tracker(self) -> RunTracker:
        client = self.redis
        with self._lock:
            if self._tracker is None:
                self._tracker = RunTracker(client, results_keep_s=self.settings.run_results_keep_s)
            return self._tracker

    @property
    def heartbeat(self) -> Heartbeat:
        """The process's heartbeat: runs with a task here stay alive and keep their lock."""
        tracker = self.tracker
        with self._lock:
            if self._heartbeat is None:
                self._heartbeat = Heartbeat(
                    tracker,
                    interval_s=self.settings.heartbeat_s,
                    lock_ttl_s=self.settings.run_lock_ttl_s,
                )
            return self._heartbeat

    def queued_messages(self) -> int:
        """Task messages waiting in the workers' queues (not yet taken by a worker), the
        chunks waiting their turn for the batch queue included."""
        pipe = self.redis.pipeline(transaction=False)
        for queue in names.WORKER_QUEUES:
            pipe.llen(queue)
        return sum(int(n) for n in pipe.execute()) + self.fair_share.waiting()

    @property
    def fair_share(self) -> RedisFairShare:
        """The runs' chunks waiting their turn (``services.run.fair``), kept as long as a run's
        phones are."""
        ttl_s = int(self.settings.run_stall_s) + self.settings.visibility_timeout_s
        return RedisFairShare(self.redis, batch_queue=names.BATCH_QUEUE, ttl_s=ttl_s)

    @property
    def run_phones(self) -> RedisRunPhones:
        """The runs' phones kept beside their task messages, for as long as a run may last
        (the stall timeout after its last chunk) plus the broker's redelivery of a lost
        worker's last message."""
        ttl_s = int(self.settings.run_stall_s) + self.settings.visibility_timeout_s
        return RedisRunPhones(self.redis, ttl_s=ttl_s)

    def org(self, org_id: str) -> OrgClients:
        """The org's settings and clients, re-read from Firestore at most once a minute."""
        cached = self._orgs.get(org_id)
        if cached is not None and time.monotonic() - cached[0] < SETTINGS_TTL_S:
            return cached[1]
        org = self.store.get_org_settings(org_id)
        _register_secrets(org)
        if org.alleaves is None or org.alpine is None:
            raise PermanentError("settings", f"org {org_id} has no alleaves/alpine credentials")
        clients = OrgClients(
            settings=org,
            alleaves=self._alleaves(org, cached[1] if cached else None),
            alpine=AlpineIQClient(
                self.http,
                base_url=self.settings.alpine_base_url,
                uid=org.alpine.uid,
                api_key=org.alpine.api_key.get_secret_value(),
                retry=self.retry,
                max_pages=self.settings.max_pages,
                rate_limit=RateLimit.of_org(
                    "alpine", org_id, org.alpine_rate_limit or self.settings.alpine_rate_limit
                ),
            ),
            notifier=self._notifier(org),
        )
        self._orgs[org_id] = (time.monotonic(), clients)
        return clients

    def _alleaves(self, org: OrgSettings, previous: OrgClients | None) -> AlleavesClient:
        # Keep the logged-in client while the credentials and the limit are unchanged: one login
        # per process.
        if (
            previous is not None
            and previous.settings.alleaves == org.alleaves
            and previous.settings.alleaves_rate_limit == org.alleaves_rate_limit
        ):
            return previous.alleaves
        assert org.alleaves is not None
        return AlleavesClient(
            self.http,
            account=AlleavesAccount(
                base_url=self.settings.alleaves_base_url,
                username=org.alleaves.username,
                password=org.alleaves.password.get_secret_value(),
                pin=org.alleaves.pin.get_secret_value(),
                partner_id=org.alleaves.partner_id,
                rate_limit=RateLimit.of_org(
                    "alleaves",
                    org.org_id,
                    org.alleaves_rate_limit or self.settings.alleaves_rate_limit,
                ),
            ),
            page_size=self.settings.page_size,
            retry=self.retry,
            max_pages=self.settings.max_pages,
        )

    def notifier_for(self, org_id: str) -> Notifier:
        """The org's notifier; for an org that cannot be served (unknown, invalid settings, no
        credentials), its own webhook if its settings name one, else the default one: the run
        that failed for it still alerts."""
        try:
            return self.org(org_id).notifier
        except PermanentError:
            pass
        try:
            return self._notifier(self.store.get_org_settings(org_id))
        except PermanentError:
            return self._notifier(None)

    @property
    def lookups(self) -> TurnPool:
        """The process's pool for chunks' and plans' Alpine IQ look-ups: as many threads as the
        worker has, so that a process never has more look-ups in flight than task threads,
        shared by the runs going in turn (``turn_pool``)."""
        with self._lock:
            if self._lookups is None:
                self._lookups = TurnPool(
                    self.settings.worker_concurrency, thread_name_prefix="lookup"
                )
            return self._lookups

    def run_ports(self) -> RunPorts:
        """What the run's services read and write through, with the batch options of the
        settings."""
        settings = self.settings
        options = BatchOptions(
            history_start=settings.order_history_start,
            window_days=settings.order_window_days,
            parallelism=settings.order_fetch_parallelism,
            lock_ttl_s=settings.run_lock_ttl_s,
            chunk_size=settings.sync_chunk_size,
            overlap_days=settings.incremental_overlap_days,
            phone_key=settings.phone_key,
            customer_page_limit=settings.single_sync_max_customer_pages,
            single_sync_concurrency=settings.single_sync_concurrency,
            single_sync_slot_ttl_s=settings.single_sync_slot_ttl_s,
            task_budget_s=settings.task_budget_s,
            plan_budget_s=settings.plan_budget_s,
            max_pages=settings.max_pages,
            planner_stale_s=settings.redispatch_s,
            plan_slices=settings.plan_slices,
            plan_lookups=settings.plan_lookups,
        )
        return RunPorts(
            org_for=self.org,
            store=self.store,
            ledger=self.tracker,
            options=options,
            single_syncs=RedisSyncSlots(self.redis),
            lookups=self.lookups,
            slices=RedisOrderSlices(self.redis),
            contacts=self.contact_store,
        )

    def _notifier(self, org: OrgSettings | None) -> Notifier:
        url = (org.discord_webhook_url if org else None) or self.settings.discord_webhook_url
        if url is None:
            return ConsoleNotifier(public_url=self.settings.public_url)
        return DiscordNotifier(
            self.http,
            webhook_url=url.get_secret_value(),
            retry=self.retry,
            public_url=self.settings.public_url,
        )


def _register_secrets(org: OrgSettings) -> None:
    """Whatever an org's settings hold as a secret is masked in every log line."""
    for secret in org.secrets():
        register_secret(secret)


_container: Container | None = None
_container_pid: int | None = None
_container_lock = threading.Lock()


def container() -> Container:
    """This process's container; a forked child gets its own."""
    global _container, _container_pid
    with _container_lock:
        if _container is None or _container_pid != os.getpid():
            _container = Container(get_settings())
            _container_pid = os.getpid()
        return _container


def reset() -> None:
    """Forget every client (a new worker process, or a test changing settings)."""
    global _container, _container_pid
    with _container_lock:
        _container = None
        _container_pid = None
    get_settings.cache_clear()
