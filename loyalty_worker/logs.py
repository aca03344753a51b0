"""Logging for workers, the API and the CLI: secrets and phone numbers never reach a log line.

Every handler gets ``RedactingFilter``: it masks phone-like digit runs (``***-***-1234``), JWTs,
and every secret the process has registered (org credentials, webhook URLs, API keys) in the
final message, whatever logger or library wrote it. ``LOYALTY_LOG_FORMAT=json`` writes one JSON
object per line, with the run id, org and outcome that task logs pass as ``extra``.
"""

from __future__ import annotations

import json
import logging
import re
import threading

from loyalty_worker.domain.phone import mask_phones_in

_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
_MIN_SECRET_LEN = 4
_secrets: set[str] = set()
_secrets_lock = threading.Lock()

# Fields a log call may pass as ``extra`` that the JSON format shows.
CONTEXT_FIELDS = ("run_id", "org_id", "customer_id", "outcome", "task_id", "task_name")


def register_secret(value: str | None) -> None:
    """Never log ``value`` (too short a value would mask ordinary numbers, and is skipped)."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with registered secrets, JWTs and phone numbers masked."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return mask_phones_in(_JWT.sub("***jwt***", text))


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and exception text) redacted, before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the task's context."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, str | int] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, default=str)


def install(logger: logging.Logger, *, json_format: bool) -> None:
    """Add the redacting filter (and the JSON format) to every handler of ``logger``.

    httpx's own line per request is left out (warnings only): a 100,000-customer run makes
    thousands of calls, which would drown the one line per task; retries and failures are
    logged by the clients themselves.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
        if json_format:
            handler.setFormatter(JsonFormatter())


def configure_process(*, json_format: bool, level: int = logging.INFO) -> None:
    """Log to stderr through ``install`` in a process that Celery does not set up (the API).

    The handler is added even when the root logger has some already (``basicConfig`` would then
    do nothing), and every root handler gets the filter: uvicorn's loggers propagate to them.
    """
    root = logging.getLogger()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    install(root, json_format=json_format)
