"""Latency of the agent's points look-up (``check_points``) on the local stack.

``.venv/bin/python benchmarks/bench_check_points.py`` starts a Firestore emulator, the sandbox
(``--customers N``, seed 1), a Redis (the machine's, database 12, or a private one) and one
Celery worker with ``LOYALTY_PHONE_HASH_KEY`` set; syncs ``org-1`` through the worker, so the
profiles (and their ``phoneHash``) are the sync's own; then sets the sandbox's latency to
``--latency-ms`` (50) per call. It then times ``--calls`` (200) look-ups of random customers'
phones, one after another, in each mode:

- ``by_contact_id``: no phone key: the Alpine IQ look-up, then profiles by ``alpineUserId``;
- ``by_phone_hash``: with the key: the Alpine IQ look-up, then profiles by ``phoneHash``;
- ``http_api``: ``GET /api/loyalty/points`` on a real uvicorn server (auth, cached settings);
- ``alpine_down``: every Alpine IQ call answers 503: two attempts, then Firestore alone.

Each row prints p50, p95 and max in milliseconds, and how many look-ups found the customer's
profile; the goal is a p95 under 200 ms. The sandbox's latency is a floor of every mode but
``alpine_down`` (one Alpine IQ call each); the rest is Firestore and our code.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import redis
import uvicorn
from celery import Celery
from google.cloud import firestore

from loyalty_worker import devstack
from loyalty_worker.adapters.alpine import AlpineIQClient
from loyalty_worker.adapters.firestore import FirestoreProfileStore
from loyalty_worker.adapters.publisher import TaskPublisher, broker_app
from loyalty_worker.adapters.run_state import RunTracker
from loyalty_worker.adapters.seed import seed_firestore
from loyalty_worker.api.app import ApiServices, create_app
from loyalty_worker.api.settings import ApiSettings
from loyalty_worker.api.wiring import AlpineClients
from loyalty_worker.config import Settings
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.firestore_emulator import start_emulator
from loyalty_worker.progress import watch_run
from loyalty_worker.services.lookup.points import check_points
from loyalty_worker.services.lookup.points_answer import PointsCheck

ORG_ID = "org-1"
BENCH_REDIS_DB = 12
TARGET_P95_MS = 200.0
TOKEN = "bench-points-Wq4Er7Ty1Ui9"
PHONE_KEY = b"bench-phone-key-Op3As6Df8Gh2"


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile, interpolated between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def timed(
    calls: int, phones: Sequence[str], call: Callable[[str], PointsCheck]
) -> tuple[list[float], int]:
    """Milliseconds per look-up of a random phone, and how many found a synced profile."""
    rng = random.Random(7)
    timings = []
    found = 0
    for _ in range(calls):
        phone = rng.choice(phones)
        started = time.perf_counter()
        answer = call(phone)
        timings.append((time.perf_counter() - started) * 1000)
        found += answer.customer_id is not None
    return timings, found


class ApiServer:
    """The API on a real uvicorn server in a thread, on a free port."""

    def __init__(self, app: Any) -> None:
        self.port = devstack.free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM, SIGHUP and Ctrl-C stop every child started below.
    return devstack.run_supervised("bench", lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--redis-url", default=os.environ.get("LOYALTY_REDIS_URL"))
    args = parser.parse_args(argv)
    # One retry warning per look-up in the alpine_down mode would bury the table.
    logging.getLogger("loyalty_worker.adapters.http").setLevel(logging.ERROR)

    redis_url, redis_child = devstack.ensure_redis(
        devstack.redis_database(args.redis_url or "redis://127.0.0.1:6379/0", BENCH_REDIS_DB)
    )
    emulator = start_emulator()
    sandbox = devstack.start_sandbox(
        "--customers", str(args.customers), "--seed", "1", timeout_s=180.0
    )
    worker = None
    client: firestore.Client | None = None
    try:
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
        project = f"bench-points-{uuid.uuid4().hex[:8]}"
        client = firestore.Client(project=project)
        dataset = sandbox.dataset()
        seed_firestore(client, dataset)
        redis_client = redis.Redis.from_url(redis_url)
        redis_client.flushdb()
        env = {
            "LOYALTY_REDIS_URL": redis_url,
            "FIRESTORE_EMULATOR_HOST": emulator.host,
            "LOYALTY_FIRESTORE_PROJECT": project,
            "LOYALTY_ALLEAVES_BASE_URL": sandbox.alleaves_url,
            "LOYALTY_ALPINE_BASE_URL": sandbox.alpine_url,
            "LOYALTY_DISCORD_WEBHOOK_URL": sandbox.webhook_url(),
            # The sync writes each profile's phoneHash with it; the look-ups below use the same.
            "LOYALTY_PHONE_HASH_KEY": PHONE_KEY.decode(),
        }
        worker = devstack.start_worker(env, concurrency=16)
        celery = Celery("bench", broker=redis_url, backend=redis_url)
        run_id = f"bench-{uuid.uuid4().hex[:8]}"
        celery.send_task(
            "loyalty.sync_org", args=[ORG_ID], kwargs={"run_id": run_id}, queue="loyalty.runs"
        )
        tracker = RunTracker(redis_client)
        progress = watch_run(tracker, run_id, out=sys.stderr, timeout_s=900)
        if progress.status != "completed":
            print(f"bench: the sync ended {progress.status}: {progress.error}", file=sys.stderr)
            return 1

        org = next(o for o in dataset["orgs"] if o["orgId"] == ORG_ID)
        all_phones = sorted(
            {phone for c in org["customers"] if (phone := normalize_phone(c.get("phone")))}
        )
        with_account = [
            normalize_phone(c["phone"]) or ""
            for c in org["customers"]
            if c.get("alpine_user_code") and normalize_phone(c.get("phone"))
        ]
        sandbox.set_faults(latency_ms=args.latency_ms)

        queries = FirestoreProfileStore(client, timeout_s=3.0, retry_budget_s=2.0)
        # One token makes every call: the per-token rate limit would turn --calls > 600 into 429s.
        api_settings = ApiSettings(tokens={TOKEN: [ORG_ID]}, rate_limit_per_min=0)
        settings = Settings(alpine_base_url=sandbox.alpine_url)
        alpine_clients = AlpineClients(settings, api_settings)
        alpine: AlpineIQClient | None = alpine_clients(queries.get_org_settings(ORG_ID))

        def by_contact_id(phone: str) -> PointsCheck:
            return check_points(ORG_ID, phone, store=queries, alpine=alpine)

        def by_phone_hash(phone: str) -> PointsCheck:
            return check_points(ORG_ID, phone, store=queries, alpine=alpine, phone_key=PHONE_KEY)

        rows: list[tuple[str, tuple[list[float], int]]] = []
        # a few warm-up calls: connections, gRPC channel
        timed(5, all_phones, by_phone_hash)
        rows.append(("by_contact_id", timed(args.calls, with_account, by_contact_id)))
        rows.append(("by_phone_hash", timed(args.calls, all_phones, by_phone_hash)))

        services = ApiServices(
            store=queries,
            tracker=tracker,
            enqueuer=TaskPublisher(broker_app(redis_url)),
            redis=redis_client,
            alpine_for=alpine_clients,
            phone_key=PHONE_KEY,
        )
        with (
            ApiServer(create_app(services, api_settings)) as server,
            httpx.Client(
                base_url=f"http://127.0.0.1:{server.port}",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10.0,
            ) as http,
        ):

            def over_http(phone: str) -> PointsCheck:
                response = http.get("/api/loyalty/points", params={"orgId": ORG_ID, "phone": phone})
                response.raise_for_status()
                return PointsCheck.model_validate_json(response.content)

            timed(5, all_phones, over_http)
            rows.append(("http_api", timed(args.calls, all_phones, over_http)))

        sandbox.set_faults(error_rate=1.0)
        rows.append(("alpine_down", timed(args.calls, all_phones, by_phone_hash)))
        sandbox.reset_faults()
        alpine_clients.close()

        print(
            f"\ncheck_points, org {ORG_ID}: {args.customers} customers, {len(all_phones)} with a "
            f"phone, sandbox latency {args.latency_ms:g} ms, {args.calls} calls per mode"
        )
        print(
            f"{'mode':<15} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'found':>9}  "
            f"p95 < {TARGET_P95_MS:g} ms"
        )
        for mode, (timings, found) in rows:
            p50 = statistics.median(timings)
            p95 = percentile(timings, 0.95)
            verdict = "yes" if p95 < TARGET_P95_MS else "no"
            print(
                f"{mode:<15} {p50:>8.1f} {p95:>8.1f} {max(timings):>8.1f} "
                f"{f'{found}/{len(timings)}':>9}  {verdict}"
            )
        return 0
    finally:
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]  # before the emulator stops
        if worker is not None:
            worker.stop()
        sandbox.stop()
        emulator.stop()
        if redis_child is not None:
            redis_child.stop()


if __name__ == "__main__":
    raise SystemExit(main())
