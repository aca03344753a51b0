"""The agents' look-up timed in the API process (``loyalty_lookup_duration_seconds``).

The one metric the API counts itself: every other family of ``GET /metrics`` is read from the
stored summaries when scraped. Each API process keeps its own histogram.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics

# No ``*_created`` series: nothing reads them, and they double what each scrape carries.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)

# The plan's target is 2 s at the 95th percentile: buckets around it.
LOOKUP_DURATION = Histogram(
    "loyalty_lookup_duration_seconds",
    "Time of the agents' look-up of a customer's points (GET /api/loyalty/points).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10),
    registry=REGISTRY,
)
