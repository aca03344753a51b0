"""The real Alleaves, Alpine IQ and Discord clients pointed at a sandbox, and its dataset.

The session sandbox (``tests.fixtures.sandbox``) is generated from ``SESSION_DATASET``; a fake
loaded from ``session_dataset()`` holds the very same records, so one assertion holds for both.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any

import httpx

from loyalty_worker.adapters.alleaves import AlleavesAccount, AlleavesClient
from loyalty_worker.adapters.alpine import AlpineIQClient
from loyalty_worker.adapters.http import RetryPolicy
from loyalty_worker.devstack import Sandbox
from loyalty_worker.sandbox.data import generate_dataset
from loyalty_worker.sandbox.data.records import Dataset

# Short backoffs keep the fault tests quick; the sandbox's 429s ask for one second.
RETRY = RetryPolicy(max_attempts=8, max_total_s=30.0, base_delay_s=0.05, max_delay_s=0.5)

# What ``tests.fixtures.sandbox.sandbox`` starts with: --customers 60 --seed 7.
SESSION_DATASET = (60, 7)
# A sandbox of its own with broken records: --customers 40 --seed 3 --malformed-rate 0.1.
MALFORMED_DATASET = (40, 3, 0.1)


@cache
def session_dataset(as_of: date | None = None) -> Dataset:
    customers, seed = SESSION_DATASET
    return generate_dataset(customers, seed, as_of=as_of)


@cache
def malformed_dataset(as_of: date | None = None) -> Dataset:
    customers, seed, rate = MALFORMED_DATASET
    return generate_dataset(customers, seed, malformed_rate=rate, as_of=as_of)


def malformed_sandbox_args() -> tuple[str, ...]:
    customers, seed, rate = MALFORMED_DATASET
    return ("--customers", str(customers), "--seed", str(seed), "--malformed-rate", str(rate))


def alleaves_client(
    http: httpx.Client,
    sandbox: Sandbox,
    org: dict[str, Any],
    *,
    password: str | None = None,
    page_size: int = 25,
) -> AlleavesClient:
    credentials = org["alleaves"]
    return AlleavesClient(
        http,
        account=AlleavesAccount(
            base_url=sandbox.alleaves_url,
            username=credentials["username"],
            password=password if password is not None else credentials["password"],
            pin=str(credentials["pin"]),
        ),
        page_size=page_size,
        retry=RETRY,
    )


def alpine_client(
    http: httpx.Client, sandbox: Sandbox, org: dict[str, Any], *, api_key: str | None = None
) -> AlpineIQClient:
    return AlpineIQClient(
        http,
        base_url=sandbox.alpine_url,
        uid=str(org["alpine"]["uid"]),
        api_key=api_key if api_key is not None else org["alpine"]["apiKey"],
        retry=RETRY,
    )
