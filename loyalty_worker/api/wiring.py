"""The real clients behind the API, the look-up and the export, built from settings.

Built when a command starts (never at import): one Firestore client, one Redis client, one
publish-only Celery app, one set of connections for Alpine IQ look-ups (the workers'
``ConnectionStack``).
"""

from __future__ import annotations

import os

import httpx
import redis
from fastapi import FastAPI

from loyalty_worker.adapters.accounts import FirebaseAccounts
from loyalty_worker.adapters.alpine import AlpineIQClient
from loyalty_worker.adapters.audit_records import FirestoreActivityLog
from loyalty_worker.adapters.connections import ConnectionStack
from loyalty_worker.adapters.contacts import FirestoreContactStore
from loyalty_worker.adapters.dashboard_runs import RedisRunTriggers
from loyalty_worker.adapters.dashboard_store import FirestoreDashboardStore
from loyalty_worker.adapters.firestore import FirestoreProfileStore, build_firestore_client
from loyalty_worker.adapters.http import RetryPolicy
from loyalty_worker.adapters.members import FirestoreMemberStore
from loyalty_worker.adapters.publisher import TaskPublisher, broker_app
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.adapters.task_results import RedisTaskOutcomes
from loyalty_worker.api.dashboard_state import SignInConfig
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.config import Settings
from loyalty_worker.names import AUTH_EMULATOR_HOST_VAR
from loyalty_worker.org_settings import OrgSettings


class AlpineClients:
    """An Alpine IQ client for an org's credentials, tuned for a person waiting on the answer.

    The workers' policy (4 attempts in up to 30 s) suits a batch; an agent's look-up gets a
    short timeout and few attempts (total time bounded by the timeout), after which it answers
    from Firestore alone: the seed wants agents answered within 2 seconds.
    """

    def __init__(self, settings: Settings, api: ApiSettings) -> None:
        self._base_url = settings.alpine_base_url
        self._http = httpx.Client(
            timeout=httpx.Timeout(api.lookup_timeout_s, connect=min(api.lookup_timeout_s, 2.0)),
            transport=ConnectionStack(max_connections=settings.http_pool_size),
            headers={"User-Agent": "loyalty-worker-api"},
            follow_redirects=False,
        )
        self._retry = RetryPolicy(
            max_attempts=api.lookup_max_attempts,
            max_total_s=api.lookup_timeout_s,
            base_delay_s=0.05,
            max_delay_s=0.25,
        )

    def __call__(self, org: OrgSettings) -> AlpineIQClient | None:
        """The org's client; None when the org has no Alpine IQ credentials."""
        if org.alpine is None:
            return None
        return AlpineIQClient(
            self._http,
            base_url=self._base_url,
            uid=org.alpine.uid,
            api_key=org.alpine.api_key.get_secret_value(),
            retry=self._retry,
        )

    def close(self) -> None:
        self._http.close()


def build_queries(settings: Settings) -> FirestoreProfileStore:
    """Firestore reads for the look-up and the export (the emulator when configured)."""
    # Short timeouts: a person (an agent, a webhook sender) waits on these reads.
    client = build_firestore_client(settings.firestore_project)
    return FirestoreProfileStore(client, timeout_s=3.0, retry_budget_s=2.0)


def sign_in_config(settings: Settings) -> SignInConfig:
    """What the sign-in page's Firebase JS SDK needs: the project's public web config, and the
    local Auth emulator's address when ``FIREBASE_AUTH_EMULATOR_HOST`` names one."""
    emulator = os.environ.get(AUTH_EMULATOR_HOST_VAR)
    return SignInConfig(
        api_key=settings.firebase_api_key,
        project_id=settings.firebase_project_id,
        emulator_url=f"http://{emulator}" if emulator else None,
    )


def build_app(settings: Settings, api: ApiSettings) -> FastAPI:
    """The API over the real Firestore, Redis, broker and Alpine IQ."""
    from loyalty_worker.api.app import DashboardServices, create_app
    from loyalty_worker.api.state import ApiServices

    # First: AccountsMisconfigured before any client is built (see ``adapters.accounts``).
    accounts = FirebaseAccounts.from_settings(settings)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=3)
    tracker = RunTracker(client)
    publisher = TaskPublisher(broker_app(settings.redis_url))
    services = ApiServices(
        store=build_queries(settings),
        tracker=tracker,
        enqueuer=publisher,
        redis=client,
        alpine_for=AlpineClients(settings, api),
        phone_key=settings.phone_key,
    )
    firestore_client = build_firestore_client(settings.firestore_project)
    retention = settings.audit_retention
    dashboard = DashboardServices(
        store=FirestoreDashboardStore(firestore_client, retention=retention),
        contacts=FirestoreContactStore(firestore_client, retention=retention),
        activity=FirestoreActivityLog(firestore_client, retention=retention),
        tasks=RedisTaskOutcomes(client),
        triggers=RedisRunTriggers(client, tracker),
        nightly_hour=settings.nightly_hour,
        audit_retention=retention,
        accounts=accounts,
        members=FirestoreMemberStore(firestore_client),
        sign_in=sign_in_config(settings),
    )
    return create_app(services, api, dashboard, public_url=settings.public_url)
