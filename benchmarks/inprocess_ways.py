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
from collections.abc import Awaitable, Collection, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict

import httpx
import msgspec
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
from loyalty_worker.adapters.wire import (
    AlpineContactRow,
    AlpineContactsPage,
    AlpineLoyalty,
    parse_customer,
    parse_order,
)
from loyalty_worker.config import Settings
from loyalty_worker.domain.models import AlpineProfile, Customer, Order
from loyalty_worker.domain.phone import normalize_phone
from loyalty_worker.domain.points import calculate_points
from loyalty_worker.domain.profile import ProfileUpdate, build_profile_update, profile_id
from loyalty_worker.domain.reconciliation import decide
from loyalty_worker.domain.results import SyncStatus
from loyalty_worker.errors import LoyaltyError, MalformedRecord
from loyalty_worker.org_settings import OrgSettings
from loyalty_worker.services.sync.customer import sync_customer
from loyalty_worker.services.sync.inputs import CustomerWork
from loyalty_worker.services.sync.listing import FIRST_ROUND_PAGES
from loyalty_worker.services.sync.order_history import OrderHistory, date_windows

RESULT_MARKER = "BENCH-RESULT "
# As the worker reads them (services/plan.py, adapters/alpine.py).
PROFILE_CHUNK = 300
CONTACTS_PAGE = 1000
MAX_ATTEMPTS = 4
# The worker's decoder (adapters/http.py): fractions as exact Decimal, from their text.
DECODER = msgspec.json.Decoder(float_hook=Decimal)


class WayConfig(TypedDict):
    """What the parent hands a child run (JSON on the command line)."""

    way: str  # "naive", "asyncio" or "asyncio_per_customer"
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
        for order in alleaves.iter_orders(settings.order_history_start, _history_end()):
            history.add(order)
        history.finish()
        plan_s = time.monotonic() - started
        plan_requests = _sandbox_requests(config["sandbox_url"])

        limit = config["limit"]
        chosen = customers if limit is None else customers[:limit]
        statuses: Counter[str] = Counter()
        loop_started = time.monotonic()
        for customer in chosen:
            work = CustomerWork(
                customer=customer,
                orders=tuple(history.orders_of(customer.customer_id)),
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
        "reads": "per customer, history as one date range",
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
                content = DECODER.decode(response.content) if response.content else None
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


async def run_asyncio(config: WayConfig, *, bulk: bool) -> dict[str, Any]:
    """The same run in one event loop, at the worker's concurrency.

    The plan reads side by side as the worker's does (customer pages, history windows, contacts
    pages, then profile chunks), at most ``LOYALTY_ORDER_FETCH_PARALLELISM`` HTTP calls at once
    in all: httpx's async connection pool costs sharply more CPU per request past about 32
    connections (measured: 600 calls at 50 ms took 1.1 s on 32 connections, 5.2 s on 64), so
    wider would be slower, not faster. Then ``concurrency`` slots: each unit of work (a chunk
    of customers with ``bulk``, else one customer) holds one for its whole sync, as one Celery
    task holds one of the workers' threads.

    ``bulk`` reads as the worker's plan does (``services/plan.py``): the Alpine IQ contacts
    listing (which phones have an account; balances only with the sandbox's shortcut),
    profiles in chunks of 300, one batched commit per chunk of ``LOYALTY_SYNC_CHUNK_SIZE``
    customers. With the documented listing each customer with an account is looked up by
    phone; a unit's look-ups run side by side, at most ``concurrency`` in flight in all, as a
    worker's chunk hands them to its process's pool. Unlike the worker's plan, it makes none of
    them while the history is read: tried (beside the history, on the plan's gate or on the
    look-ups' own), that made this one event loop slower, 5.0 s median against 6.3-7.3 s at
    1,000 customers and 32 slots, so the reference keeps its faster way. Bodies are decoded as
    the worker decodes them (msgspec, fractions as ``Decimal``). Without it, every customer
    costs a profile read, an Alpine IQ look-up and a write of its own, as
    ``services.sync.customer`` does alone.
    """
    started = time.monotonic()
    concurrency = config["concurrency"]
    org_id = config["org_id"]
    slots = asyncio.Semaphore(concurrency)
    db = firestore.AsyncClient(project=config["project"])
    # Read from the environment as the workers read it: the same windows, pages and chunks.
    settings = Settings()
    page_size = settings.page_size
    chunk_size = settings.sync_chunk_size if bulk else 1
    parallelism = settings.order_fetch_parallelism
    connections = max(concurrency, parallelism)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    # The plan's HTTP streams share one gate; the profile reads (Firestore) have their own.
    http_gate, profiles_gate = asyncio.Semaphore(parallelism), asyncio.Semaphore(parallelism)
    timeout = httpx.Timeout(settings.http_timeout_s, connect=settings.http_connect_timeout_s)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        api = AsyncApi(http)
        snapshot = await db.collection(SETTINGS).document(org_id).get()
        org = OrgSettings.parse(org_id, snapshot.to_dict() or {})
        if org.alleaves is None or org.alpine is None:
            raise SystemExit(f"org {org_id} has no Alleaves/Alpine IQ credentials")
        rules = org.rules()
        alleaves_url, alpine_url = config["alleaves_url"], config["alpine_url"]
        alpine_uid = org.alpine.uid
        credentials = {
            "username": org.alleaves.username,
            "password": org.alleaves.password.get_secret_value(),
            "pin": org.alleaves.pin.get_secret_value(),
        }
        _, login = await api.json("POST", f"{alleaves_url}/auth", body=credentials)
        bearer = {"Authorization": f"Bearer {login['token']}"}
        alpine_key = {"X-APIKEY": org.alpine.api_key.get_secret_value()}
        profiles_ref = db.collection(PROFILES)

        async def limited(
            gate: asyncio.Semaphore, call: Awaitable[tuple[int, Any]]
        ) -> tuple[int, Any]:
            """Await ``call`` (a coroutine not started yet) while holding a place at ``gate``."""
            async with gate:
                return await call

        async def lookup(phone: str) -> AlpineProfile | None:
            status, body = await api.json(
                "GET",
                f"{alpine_url}/v2/loyalty/lookup/{phone}",
                headers=alpine_key,
                answers=(404,),
            )
            if status == 404:
                return None
            return AlpineLoyalty.model_validate(body["data"]).to_profile()

        async def customer_page(page: int) -> list[Customer | MalformedRecord]:
            _, payload = await limited(
                http_gate,
                api.json(
                    "POST",
                    f"{alleaves_url}/customer/search",
                    headers=bearer,
                    body={"page": page, "pageSize": page_size},
                ),
            )
            rows = _rows(payload)
            return [parse_customer(r, page=page, position=i) for i, r in enumerate(rows)]

        async def list_customers() -> list[Customer | MalformedRecord]:
            # No total: pages go in rounds, the round with a short page is the last (as the
            # worker lists them: rounds of FIRST_ROUND_PAGES doubling to its fetch parallelism).
            records: list[Customer | MalformedRecord] = []
            first, size = 1, min(FIRST_ROUND_PAGES, parallelism)
            while True:
                pages = await asyncio.gather(
                    *(customer_page(n) for n in range(first, first + size))
                )
                for page in pages:
                    records += page
                    if len(page) < page_size:
                        return records
                first += size
                size = min(size * 2, parallelism)

        async def read_window(start: date, end: date) -> list[Order | MalformedRecord]:
            records: list[Order | MalformedRecord] = []
            page = 1
            while True:
                params: dict[str, str | int] = {
                    "page": page,
                    "pageSize": page_size,
                    "startDate": start.isoformat(),
                    "endDate": end.isoformat(),
                }
                _, payload = await limited(
                    http_gate,
                    api.json("GET", f"{alleaves_url}/order", headers=bearer, params=params),
                )
                rows = _rows(payload)
                records += [parse_order(r, page=page, position=i) for i, r in enumerate(rows)]
                if len(rows) < page_size:
                    return records
                page += 1

        async def read_history() -> OrderHistory:
            windows = date_windows(
                settings.order_history_start, _history_end(), settings.order_window_days
            )
            pages = await asyncio.gather(*(read_window(start, end) for start, end in windows))
            history = OrderHistory()
            for records in pages:
                for order in records:
                    history.add(order)
            history.finish()
            return history

        async def contacts_page(start: int) -> AlpineContactsPage:
            _, body = await limited(
                http_gate,
                api.json(
                    "GET",
                    f"{alpine_url}/v1.1/piis/{alpine_uid}",
                    headers=alpine_key,
                    params={"start": start, "limit": CONTACTS_PAGE},
                ),
            )
            return AlpineContactsPage.model_validate(body["data"])

        async def read_balances() -> dict[str, AlpineProfile | None]:
            # The first page tells the total; the rest can then be fetched side by side.
            first = await contacts_page(0)
            size = first.size if first.size is not None else len(first.results)
            pages = [first]
            if first.total is not None and size > 0:
                pages += await asyncio.gather(
                    *(contacts_page(start) for start in range(size, first.total, size))
                )
            balances: dict[str, AlpineProfile | None] = {}
            for page in pages:
                for raw in page.results:
                    contact = AlpineContactRow.model_validate(raw).to_contact()
                    if contact.phone is not None:
                        balances[contact.phone] = contact.profile
            return balances

        async def read_profiles(ids: list[int]) -> dict[int, dict[str, Any]]:
            async def chunk(part: list[int]) -> list[tuple[int, dict[str, Any]]]:
                references = [profiles_ref.document(profile_id(org_id, cid)) for cid in part]
                async with profiles_gate:
                    snapshots = [snapshot async for snapshot in db.get_all(references)]
                by_document = {profile_id(org_id, cid): cid for cid in part}
                return [
                    (by_document[snap.id], snap.to_dict() or {})
                    for snap in snapshots
                    if snap.exists
                ]

            parts = [ids[i : i + PROFILE_CHUNK] for i in range(0, len(ids), PROFILE_CHUNK)]
            found = await asyncio.gather(*(chunk(part) for part in parts))
            return dict(pair for pairs in found for pair in pairs)

        # The plan: listing, history and (bulk) balances side by side; the profiles once the
        # listing has named the customers, while the history is still coming in.
        history_task = asyncio.create_task(read_history())
        balances_task = asyncio.create_task(read_balances()) if bulk else None
        listing = await list_customers()
        customers: list[Customer] = []
        seen: set[int] = set()
        malformed_customers = 0
        for record in listing:
            if isinstance(record, MalformedRecord):
                malformed_customers += 1
            elif record.customer_id not in seen:
                seen.add(record.customer_id)
                customers.append(record)
        profiles = await read_profiles([c.customer_id for c in customers]) if bulk else None
        history = await history_task
        balances = await balances_task if balances_task is not None else None
        plan_s = time.monotonic() - started

        # A unit's look-ups run side by side (as a worker's chunk hands them to its pool), at
        # most ``concurrency`` in flight in all.
        lookup_gate = asyncio.Semaphore(concurrency)

        def needs_lookup(customer: Customer) -> str | None:
            phone = normalize_phone(customer.phone)
            if phone is None or history.malformed.get(customer.customer_id):
                return None
            if balances is None or (phone in balances and balances[phone] is None):
                return phone
            return None

        async def lookup_gated(phone: str) -> AlpineProfile | None:
            async with lookup_gate:
                return await lookup(phone)

        async def evaluate(
            customer: Customer, now: datetime, ahead: Mapping[str, AlpineProfile | None]
        ) -> tuple[str, ProfileUpdate | None]:
            """``services.sync.customer.evaluate_customer``, with awaits where it does I/O."""
            if history.malformed.get(customer.customer_id):
                return "failed:malformed", None
            if profiles is not None:
                profile = profiles.get(customer.customer_id)
            else:
                reference = profiles_ref.document(profile_id(org_id, customer.customer_id))
                snapshot = await reference.get()
                profile = snapshot.to_dict() if snapshot.exists else None
            equity = bool(profile and profile.get("equityStatus") is True)
            orders = history.orders_of(customer.customer_id)
            calculation = calculate_points(orders, rules, equity=equity)
            phone = normalize_phone(customer.phone)
            alpine_profile: AlpineProfile | None = None
            if phone is None:
                pass
            elif phone in ahead:
                alpine_profile = ahead[phone]
            elif balances is None:
                alpine_profile = await lookup(phone)
            elif phone in balances:
                # Listed without a balance: only a look-up tells (as the worker's plan rules).
                known = balances[phone]
                alpine_profile = known if known is not None else await lookup(phone)
            # else: every loyalty account is a contact, so no contact means no account.
            outcome = decide(calculation, alpine_profile, rules)
            update = build_profile_update(
                org_id, customer, outcome, run_id=config["run_id"], now=now
            )
            if not update.changes(profile):
                return SyncStatus.UNCHANGED.value, None
            return SyncStatus.SYNCED.value, update

        async def sync_unit(unit: list[Customer]) -> Counter[str]:
            """One task's worth: evaluate each customer, then one commit of the changed ones."""
            now = datetime.now(UTC)
            statuses: Counter[str] = Counter()
            updates: list[ProfileUpdate] = []
            phones = {p for p in map(needs_lookup, unit) if p is not None}
            answers = await asyncio.gather(
                *(lookup_gated(p) for p in phones), return_exceptions=True
            )
            # A failed look-up is made again by the customer's own evaluation.
            ahead = {
                p: a
                for p, a in zip(phones, answers, strict=True)
                if not isinstance(a, BaseException)
            }
            for customer in unit:
                try:
                    status, update = await evaluate(customer, now, ahead)
                except Exception as exc:
                    # Counted as a failed customer, as the worker's results count it; the run
                    # goes on.
                    statuses[f"failed:{type(exc).__name__}"] += 1
                    continue
                statuses[status] += 1
                if update is not None:
                    updates.append(update)
            if updates:
                # FieldPath, as the worker's store writes: a field name is never parsed as a path.
                batch = db.batch()
                for update in updates:
                    data = {
                        **dict.fromkeys(update.deletes, firestore.DELETE_FIELD),
                        **update.fields,
                    }
                    reference = profiles_ref.document(update.document_id)
                    batch.set(reference, data, merge=[FieldPath(name) for name in data])
                await batch.commit()
            return statuses

        statuses: Counter[str] = Counter()
        in_flight: set[asyncio.Task[Counter[str]]] = set()

        def done(task: asyncio.Task[Counter[str]]) -> None:
            in_flight.discard(task)
            slots.release()
            error = task.exception()
            if error is not None:
                statuses[f"failed:commit:{type(error).__name__}"] += 1
            else:
                statuses.update(task.result())

        # A task is created only when a slot is free, so 100,000 customers never mean 100,000
        # pending coroutines: memory stays bounded, as with a worker's threads.
        for first in range(0, len(customers), chunk_size):
            await slots.acquire()
            task = asyncio.create_task(sync_unit(customers[first : first + chunk_size]))
            in_flight.add(task)
            task.add_done_callback(done)
        while in_flight:
            await asyncio.wait(set(in_flight))
    return {
        "wall_s": time.monotonic() - started,
        "plan_s": plan_s,
        "listed": len(customers) + malformed_customers,
        "measured_customers": len(customers),
        "firestore_writes": statuses[SyncStatus.SYNCED.value],
        "statuses": dict(statuses),
        "orders_seen": history.orders_seen,
        "reads": (
            f"bulk: contacts listing, profiles by {PROFILE_CHUNK}, commits by {chunk_size}"
            if bulk
            else "per customer: profile read, Alpine IQ look-up, commit"
        ),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} CONFIG_JSON (run by bench_sync.py)", file=sys.stderr)
        return 2
    config: WayConfig = json.loads(argv[1])
    if config["way"] == "naive":
        result = run_naive(config)
    elif config["way"] in ("asyncio", "asyncio_per_customer"):
        result = asyncio.run(run_asyncio(config, bulk=config["way"] == "asyncio"))
    else:
        print(f"unknown way {config['way']!r}", file=sys.stderr)
        return 2
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
