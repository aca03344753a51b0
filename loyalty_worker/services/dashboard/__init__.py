"""What the loyalty dashboard shows and does, one module per page or concern.

- ``overview``: the org at a glance (tiers, statuses, liability, last runs, trend).
- ``run_page``: a run's progress, then its summary.
- ``discrepancies``: the discrepancies to review, a page at a time, and their CSV rows.
- ``reviews``: a person's review moves and the syncs' (``domain.review`` decides them).
- ``no_account``: the customers without an Alpine IQ account, and their CSV rows.
- ``customers`` and ``search``: a customer's page and history; finding a customer.
- ``actions``: the run buttons, Sync Now and what became of it.
- ``cursors``, ``csv_export``, ``formatting``, ``page``: keyset cursors, CSV, how values are
  written for people, the page models' base.
- ``metrics``: the same numbers for Prometheus.
"""
