"""Celery configuration, read by ``loyalty_worker.celery_app`` through ``config_from_object``.

Every value that differs between deployments comes from the environment (see docs/settings.md).
"""

import math

from celery.schedules import crontab
from kombu import Queue

from loyalty_worker import names
from loyalty_worker.config import get_settings
from loyalty_worker.deadlines import deadlines

_settings = get_settings()
_deadlines = deadlines(_settings)

broker_url = _settings.redis_url
result_backend = _settings.redis_url
broker_connection_retry_on_startup = True

# JSON only: task arguments are ids and strings, never pickled objects.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

# The sync task is idempotent (a merge-write of values derived from its inputs), so a message is
# acknowledged only after it ran, and a worker lost mid-task gives it back to the queue.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1

# The work is I/O: threads overlap the waits on Alleaves, Alpine IQ and Firestore cheaply.
worker_pool = "threads"
worker_concurrency = _settings.worker_concurrency

# The threads pool enforces neither limit (nor the ones in tasks.py): every task bounds its own
# time (loyalty_worker.deadlines; docs/operations.md, "Deadlines"). They are set to the computed
# longest task, so that a prefork pool, should one be configured, would enforce the same bound.
task_soft_time_limit = math.ceil(_deadlines.longest_task_s)
task_time_limit = task_soft_time_limit + 30

# Redis redelivers an unacknowledged message after the visibility timeout (this is how a task
# of a killed worker comes back); it must exceed the longest task (checked at worker start) and
# the longest retry countdown (60 s), or tasks would run twice.
broker_transport_options = {"visibility_timeout": _settings.visibility_timeout_s}
result_backend_transport_options = {"visibility_timeout": _settings.visibility_timeout_s}
result_expires = 24 * 3600

task_default_queue = names.CUSTOMERS_QUEUE
task_queues = tuple(Queue(name) for name in names.WORKER_QUEUES)
task_routes = names.TASK_ROUTES

worker_send_task_events = True
task_send_sent_event = True

beat_schedule = {
    # Each org runs at its own 02:00 local time: the tick decides per org (see tasks.nightly_tick).
    "loyalty-nightly-tick": {
        "task": names.NIGHTLY_TICK,
        "schedule": 300.0,
        # A Beat that fell behind must not pile up ticks.
        "options": {"expires": 240},
    },
    # Idle runs get their lost work back within LOYALTY_REDISPATCH_S and half of it again.
    "loyalty-watchdog": {
        "task": names.WATCHDOG,
        "schedule": _settings.redispatch_s / 2,
        "options": {"expires": _settings.redispatch_s / 2},
    },
    # Once a day (13:15 UTC: daytime in the orgs' zones, away from their nightly runs), the
    # review audit entries and export records older than LOYALTY_AUDIT_RETENTION_DAYS go.
    "loyalty-audit-sweep": {
        "task": names.SWEEP_AUDIT,
        "schedule": crontab(hour=13, minute=15),
        "options": {"expires": 6 * 3600},
    },
}

if _settings.incremental_every_min is not None:
    beat_schedule["loyalty-incremental"] = {
        "task": names.INCREMENTAL_TICK,
        "schedule": _settings.incremental_every_min * 60.0,
        "options": {"expires": _settings.incremental_every_min * 60.0 * 0.8},
    }
