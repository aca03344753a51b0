"""Order pages decoded and parsed: the worker's way against the one before it, side by side.

``.venv/bin/python benchmarks/bench_decode.py`` generates sandbox orders (seed 1), serialises
them as Alleaves' pages of 100, and times, in interleaved rounds, the CPU per order of:

- ``json + pydantic (extras kept)``: ``json.loads(parse_float=Decimal)`` and the order model
  keeping every field it does not declare (as before msgspec);
- ``worker``: ``adapters.http.decode_json`` (msgspec, fractions as ``Decimal``) and
  ``adapters.wire.parse_order``.

It prints the median and the fastest round of each, and their ratio; both produce the same
orders (checked first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
from pydantic import ConfigDict, ValidationError

from loyalty_worker.adapters import wire
from loyalty_worker.adapters.http import decode_json
from loyalty_worker.domain.models import Order
from loyalty_worker.errors import MalformedRecord
from loyalty_worker.sandbox.data import generate_dataset

PAGE = 100


class _OrderKeepingExtras(wire.AlleavesOrder):
    model_config = ConfigDict(extra="allow")


def _before_parse(raw: Any, *, page: int, position: int) -> Order | MalformedRecord:
    try:
        return _OrderKeepingExtras.model_validate(raw).to_order()
    except ValidationError as exc:
        return MalformedRecord("alleaves", "order", "?", wire.describe_problem(exc))


def _before_decode(content: bytes) -> Any:
    return json.loads(content, parse_float=Decimal)


def _worker_decode(content: bytes) -> Any:
    return decode_json(httpx.Response(200, content=content), service="alleaves", label="GET /order")


Way = tuple[Callable[[bytes], Any], Callable[..., Order | MalformedRecord]]
WAYS: dict[str, Way] = {
    "json + pydantic (extras kept)": (_before_decode, _before_parse),
    "worker (msgspec + pydantic)": (_worker_decode, wire.parse_order),
}


def _parse_pages(way: Way, pages: list[bytes]) -> list[Order | MalformedRecord]:
    decode, parse = way
    out: list[Order | MalformedRecord] = []
    for number, content in enumerate(pages, start=1):
        out += [parse(raw, page=number, position=i) for i, raw in enumerate(decode(content))]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    customers = max(10, args.orders // 4)
    orders = generate_dataset(customers, 1)["orgs"][0]["orders"][: args.orders]
    pages = [json.dumps(orders[i : i + PAGE]).encode() for i in range(0, len(orders), PAGE)]
    results = {name: _parse_pages(way, pages) for name, way in WAYS.items()}
    first, *others = results.values()
    if any(other != first for other in others):
        raise SystemExit("the ways parsed different orders")
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(args.rounds):
        for name, way in WAYS.items():
            started = time.process_time()
            _parse_pages(way, pages)
            times[name].append((time.process_time() - started) * 1e6 / len(orders))
    print(f"{len(orders):,} orders in {len(pages)} pages, {args.rounds} interleaved rounds")
    for name, values in times.items():
        print(
            f"{name:32s} median {statistics.median(values):6.1f} us/order, "
            f"fastest {min(values):6.1f}"
        )
    before, after = (statistics.median(v) for v in times.values())
    print(f"ratio (before / worker): {before / after:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
