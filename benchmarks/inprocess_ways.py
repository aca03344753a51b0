"""The two single-process ways of the sync benchmark: the naive loop and the asyncio reference.

``bench_sync.py`` runs this file as a child process, one run per process::

    python benchmarks/inprocess_ways.py '{"way": "naive", ...}'

so that each way is measured like the Celery worker is: its own process tree, its own peak RSS,
its own imports and clients, and nothing of the benchmark's (the dataset, the samplers) in the
figures. The child prints one line ``BENCH-RESULT {json}`` at the end; everything else it prints
is diagnostics.

Both ways start from a freshly seeded Firestore project and do the same work per customer as the
worker's ``loyalty.sync_customer``: read the profile, look the phone up in Alpine IQ, apply the
rules, merge-write the profile when anything but the stamps changed.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict

import httpx
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from loyalty_worker.adapters.alleaves import AlleavesClient
from loyalty_worker.adapters.alpine import AlpineIQClient
from loyalty_worker.adapters.firestore import (
    PROFILES,
    SETTINGS,
    FirestoreProfileStore,
    build_firestore_client,
)
from loyalty_worker.adapters.http import RetryPolicy, build_http_client, retry_after_header
from loyalty_worker.adapters.wire import AlpineLoyalty, parse_customer, parse_order
from loyalty_worker.config import Settings
from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.domain.points import calculate_points
from loyalty_worker.domain.profile import build_profile_update, profile_id
from loyalty_worker.domain.reconciliation import decide
from loyalty_worker.errors import LoyaltyError, MalformedRecord
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.order_history import OrderHistory, date_windows
from loyalty_worker.services.results import SyncStatus
from loyalty_worker.services.sync_customer import sync_customer
from loyalty_worker.services.work import CustomerWork

RESULT_MARKER = "BENCH-RESULT "
# The worker proves the Alpine IQ key with this look-up before a batch (services/sync_org.py);
# the asyncio reference makes the same call so that both make the same calls per run.
PROBE_PHONE = "0000000000"
MAX_ATTEMPTS = 4


class WayConfig(TypedDict):
    """What the parent hands a child run (JSON on the command line)."""

    way: str  # "naive" or "asyncio"
    org_id: str
    run_id: str
    project: str  # the freshly seeded Firestore project (FIRESTORE_EMULATOR_HOST is in the env)
    alleaves_url: str
    alpine_url: str
    sandbox_url: str
    concurrency: int
    limit: int | None  # naive only: sync the first ``limit`` customers, then stop


def _history_end() -> date:
    # As the worker does: one day past today, for orders already dated tomorrow in UTC.
    return date.today() + timedelta(days=1)


def _sandbox_requests(sandbox_url: str) -> dict[str, int]:
    """Requests the sandbox has served per data API so far (its control routes are not counted)."""
    stats = httpx.get(f"{sandbox_url}/sandbox/stats", timeout=30.0).json()
    return {api: int(stats[api]["requests"]) for api in ("alleaves", "alpine")}


# --- naive: the seed plan's loop, on the project's own clients and services --------------------


def run_naive(config: WayConfig) -> dict[str, Any]:
    """List, read the whole history as one date range page by page, then sync one at a time.

    The plan phase (listing and history) is timed apart from the customer loop, so that a run
    limited to the first customers can be extrapolated: the plan is paid once, the loop per
    customer.
    """
    started = time.monotonic()
    settings = Settings(
        alleaves_base_url=config["alleaves_url"],
        alpine_base_url=config["alpine_url"],
        firestore_project=config["project"],
    )
    retry = RetryPolicy.from_settings(settings)
    store = FirestoreProfileStore(build_firestore_client(settings.firestore_project))
    org = store.get_org_settings(config["org_id"])
    if org.alleaves is None or org.alpine is None:
        raise SystemExit(f"org {config['org_id']} has no Alleaves/Alpine IQ credentials")
    with build_http_client(settings) as http:
        alleaves = AlleavesClient(
            http,
            base_url=settings.alleaves_base_url,
            username=org.alleaves.username,
            password=org.alleaves.password.get_secret_value(),
            pin=org.alleaves.pin.get_secret_value(),
            partner_id=org.alleaves.partner_id,
            page_size=settings.page_size,
            retry=retry,
        )
        alpine = AlpineIQClient(
            http,
            base_url=settings.alpine_base_url,
            uid=org.alpine.uid,
            api_key=org.alpine.api_key.get_secret_value(),
            retry=retry,
        )
        customers: list[Customer] = []
        malformed_customers = 0
        seen: set[int] = set()
        for record in alleaves.iter_customers():
            if isinstance(record, MalformedRecord):
                malformed_customers += 1
            elif record.customer_id not in seen:
                seen.add(record.customer_id)
                customers.append(record)
        history = OrderHistory()
        seen_orders: set[int] = set()
        for order in alleaves.iter_orders(settings.order_history_start, _history_end()):
            if isinstance(order, Order):
                if order.order_id in seen_orders:
                    continue
                seen_orders.add(order.order_id)
            history.add(order)
        plan_s = time.monotonic() - started
        plan_requests = _sandbox_requests(config["sandbox_url"])

        limit = config["limit"]
        chosen = customers if limit is None else customers[:limit]
        statuses: Counter[str] = Counter()
        loop_started = time.monotonic()
        for customer in chosen:
            work = CustomerWork(
                customer=customer,
                orders=tuple(history.orders.get(customer.customer_id, ())),
                malformed_orders=tuple(history.malformed.get(customer.customer_id, ())),
            )
            try:
                result = sync_customer(
                    org, work, store=store, alpine=alpine, run_id=config["run_id"]
                )
            except LoyaltyError as exc:
                # A transient error that outlived the HTTP retries: the loop has no task retry.
                statuses[f"failed:{exc.reason}"] += 1
                continue
            statuses[result.status.value] += 1
        loop_s = time.monotonic() - loop_started
    return {
        "wall_s": time.monotonic() - started,
        "plan_s": plan_s,
        "loop_s": loop_s,
        "plan_requests": plan_requests,
        "listed": len(customers) + malformed_customers,
        "measured_customers": len(chosen),
        "firestore_writes": statuses[SyncStatus.SYNCED.value],
        "statuses": dict(statuses),
        "orders_seen": history.orders_seen,
        "order_pages": "one date range",
    }


# --- asyncio reference: what a hand-written single-process script could reach ------------------


class AsyncApi:
    """``httpx.AsyncClient`` calls with the retries any real script needs (429, 5xx, timeouts).

    Kept close to the worker's policy (4 attempts, ``Retry-After`` honoured, jittered backoff) so
    that, under faults, the reference is not faster only because it gives up sooner.
    """

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def json(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        answers: Collection[int] = (),
    ) -> tuple[int, Any]:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self.http.request(
                    method, url, headers=headers, params=params, json=body
                )
            except httpx.TransportError:
                if attempt == MAX_ATTEMPTS:
                    raise
                await asyncio.sleep(random.uniform(0, 0.5 * 2 ** (attempt - 1)))
                continue
            status = response.status_code
            if response.is_success or status in answers:
                content = (
                    json.loads(response.content, parse_float=Decimal) if response.content else None
                )
                return status, content
            if (status == 429 or status >= 500) and attempt < MAX_ATTEMPTS:
                asked = retry_after_header(response) if status == 429 else None
                delay = random.uniform(0, 0.5 * 2 ** (attempt - 1)) if asked is None else asked
                await asyncio.sleep(delay)
                continue
            response.raise_for_status()
        raise AssertionError("unreachable: the last attempt returns or raises")


def _rows(payload: Any) -> list[Any]:
    """Alleaves' page shapes: ``[row]``, ``{"data": [row]}`` or ``{"0": row, "1": row}``."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        data = payload.get("data")
        if isinstance(data, list):
            return data
        return [row for _, row in sorted((int(k), v) for k, v in payload.items() if k.isdigit())]
    raise ValueError("unexpected page shape")


async def run_asyncio(config: WayConfig) -> dict[str, Any]:
    """The same run in one event loop: ``concurrency`` slots shared by every call.

    A slot is what a worker thread is: during the plan each API call holds one; during the
    customer phase each customer holds one for its whole sync (profile read, Alpine IQ look-up,
    write), exactly as one ``loyalty.sync_customer`` task holds a thread.
    """
    started = time.monotonic()
    concurrency = config["concurrency"]
    org_id = config["org_id"]
    slots = asyncio.Semaphore(concurrency)
    db = firestore.AsyncClient(project=config["project"])
    settings = Settings()  # defaults only: history start, window size, page size
    page_size = settings.page_size
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(settings.http_timeout_s, connect=settings.http_connect_timeout_s)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        api = AsyncApi(http)
        snapshot = await db.collection(SETTINGS).document(org_id).get()
        org = OrgSettings.parse(org_id, snapshot.to_dict() or {})
        if org.alleaves is None or org.alpine is None:
            raise SystemExit(f"org {org_id} has no Alleaves/Alpine IQ credentials")
        rules = org.rules()
        alleaves_url, alpine_url = config["alleaves_url"], config["alpine_url"]
        credentials = {
            "username": org.alleaves.username,
            "password": org.alleaves.password.get_secret_value(),
            "pin": org.alleaves.pin.get_secret_value(),
        }
        _, login = await api.json("POST", f"{alleaves_url}/auth", body=credentials)
        bearer = {"Authorization": f"Bearer {login['token']}"}
        alpine_key = {"X-APIKEY": org.alpine.api_key.get_secret_value()}

        async def limited(call: Callable[[], Awaitable[tuple[int, Any]]]) -> tuple[int, Any]:
            async with slots:
                return await call()

        def lookup_status(phone: str) -> Awaitable[tuple[int, Any]]:
            return api.json(
                "GET",
                f"{alpine_url}/v2/loyalty/lookup/{phone}",
                headers=alpine_key,
                answers=(404,),
            )

        async def lookup(phone: str) -> AlpineProfile | None:
            status, body = await lookup_status(phone)
            if status == 404:
                return None
            return AlpineLoyalty.model_validate(body["data"]).to_profile()

        async def list_customers() -> list[Customer | MalformedRecord]:
            records: list[Customer | MalformedRecord] = []
            page = 1
            while True:
                _, payload = await limited(
                    lambda page=page: api.json(
                        "POST",
                        f"{alleaves_url}/customer/search",
                        headers=bearer,
                        body={"page": page, "pageSize": page_size},
                    )
                )
                rows = _rows(payload)
                records += [parse_customer(r, page=page, position=i) for i, r in enumerate(rows)]
                if len(rows) < page_size:
                    return records
                page += 1

        async def read_window(start: date, end: date) -> list[Order | MalformedRecord]:
            records: list[Order | MalformedRecord] = []
            page = 1
            while True:
                params = {
                    "page": page,
                    "pageSize": page_size,
                    "startDate": start.isoformat(),
                    "endDate": end.isoformat(),
                }
                _, payload = await limited(
                    lambda params=params: api.json(
                        "GET", f"{alleaves_url}/order", headers=bearer, params=params
                    )
                )
                rows = _rows(payload)
                records += [parse_order(r, page=page, position=i) for i, r in enumerate(rows)]
                if len(rows) < page_size:
                    return records
                page += 1

        # The worker's plan: the key probe, then the listing beside the windows of the history.
        await limited(lambda: lookup_status(PROBE_PHONE))
        windows = date_windows(
            settings.order_history_start, _history_end(), settings.order_window_days
        )
        listing, *window_records = await asyncio.gather(
            list_customers(), *(read_window(start, end) for start, end in windows)
        )
        history = OrderHistory()
        seen_orders: set[int] = set()
        for records in window_records:
            for order in records:
                if isinstance(order, Order):
                    if order.order_id in seen_orders:
                        continue
                    seen_orders.add(order.order_id)
                history.add(order)
        customers: list[Customer] = []
        seen: set[int] = set()
        malformed_customers = 0
        for record in listing:
            if isinstance(record, MalformedRecord):
                malformed_customers += 1
            elif record.customer_id not in seen:
                seen.add(record.customer_id)
                customers.append(record)
        plan_s = time.monotonic() - started

        profiles = db.collection(PROFILES)

        async def sync_one(customer: Customer) -> str:
            """``services.sync_customer`` step for step, with awaits where it does I/O."""
            now = datetime.now(UTC)
            phone = normalize_phone(customer.phone)
            if history.malformed.get(customer.customer_id):
                return "failed:malformed"
            reference = profiles.document(profile_id(org_id, customer.customer_id))
            snapshot = await reference.get()
            profile = snapshot.to_dict() if snapshot.exists else None
            equity = bool(profile and profile.get("equityStatus") is True)
            orders = history.orders.get(customer.customer_id, [])
            calculation = calculate_points(orders, rules, equity=equity)
            alpine_profile = await lookup(phone) if phone else None
            outcome = decide(calculation, alpine_profile, rules)
            update = build_profile_update(
                org_id, customer, outcome, run_id=config["run_id"], now=now
            )
            if not update.changes(profile):
                return SyncStatus.UNCHANGED.value
            data = {**dict.fromkeys(update.deletes, firestore.DELETE_FIELD), **update.fields}
            await reference.set(data, merge=[FieldPath(name) for name in data])
            return SyncStatus.SYNCED.value

        statuses: Counter[str] = Counter()
        in_flight: set[asyncio.Task[str]] = set()

        def done(task: asyncio.Task[str]) -> None:
            in_flight.discard(task)
            slots.release()
            error = task.exception()
            statuses[f"failed:{type(error).__name__}" if error else task.result()] += 1

        # Tasks are created only when a slot is free, so 100,000 customers never mean 100,000
        # pending coroutines: memory stays bounded as it does with a worker's threads.
        for customer in customers:
            await slots.acquire()
            task = asyncio.create_task(sync_one(customer))
            in_flight.add(task)
            task.add_done_callback(done)
        while in_flight:
            await asyncio.wait(set(in_flight))
    db.close()
    return {
        "wall_s": time.monotonic() - started,
        "plan_s": plan_s,
        "listed": len(customers) + malformed_customers,
        "measured_customers": len(customers),
        "firestore_writes": statuses[SyncStatus.SYNCED.value],
        "statuses": dict(statuses),
        "orders_seen": history.orders_seen,
        "order_pages": f"{len(windows)} windows in parallel",
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} CONFIG_JSON (run by bench_sync.py)", file=sys.stderr)
        return 2
    config: WayConfig = json.loads(argv[1])
    if config["way"] == "naive":
        result = run_naive(config)
    elif config["way"] == "asyncio":
        result = asyncio.run(run_asyncio(config))
    else:
        print(f"unknown way {config['way']!r}", file=sys.stderr)
        return 2
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
