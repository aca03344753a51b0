"""Logging for workers, the API and the CLI: secrets and phone numbers never reach a log line.

Every handler gets ``RedactingFilter``: it masks phone-like digit runs (``***-***-1234``), JWTs,
and every secret the process has registered (org credentials, webhook URLs, API keys) in the
final message, whatever logger or library wrote it.

Every handler also gets ``ContextFilter``: each record carries the ids of the task or request it
was written in (``log_context``: run, org, task, customer), whatever logger wrote it.
``LOYALTY_LOG_FORMAT=json`` writes one JSON object per line with those ids as fields (and an
``outcome`` a call passes as ``extra``); the text format ends each message with them in brackets,
``[run=... org=... customer=... task=...]``. The ids are not redacted: they are ids, and a
customer id of ten digits must stay whole to be found.
"""

from __future__ import annotations

import json
import logging
import re
import threading

from loyalty_worker import log_context
from loyalty_worker.domain.phone import mask_phones_in

_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
_MIN_SECRET_LEN = 4
_secrets: set[str] = set()
_secrets_lock = threading.Lock()

# The fields the JSON format shows: the context's ids (set by ``ContextFilter``, or passed as
# ``extra``, which wins), and the outcome a call may pass as ``extra``.
CONTEXT_FIELDS = (*log_context.FIELDS, "outcome")
# The text format's suffix: short names, in the order an operator reads them.
_SUFFIX_FIELDS = (("run", "run_id"), ("org", "org_id"), ("customer", "customer_id"))


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


class ContextFilter(logging.Filter):
    """Puts the context of the code logging (``log_context``) on each record: a handler runs in
    the thread that logs, so the context is that of the task or request writing the line. A
    field the call passed as ``extra`` is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_context.current().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


def context_suffix(record: logging.LogRecord) -> str:
    """``[run=... org=... customer=... task=...]`` of the ids ``record`` carries ("" if none):
    the task by its id, which Celery's own lines about it show too."""
    parts = [
        f"{short}={value}"
        for short, name in (*_SUFFIX_FIELDS, ("task", "task_id"))
        if (value := getattr(record, name, None)) is not None
    ]
    return f"[{' '.join(parts)}]" if parts else ""


class ContextSuffixFormatter(logging.Formatter):
    """The text format: ``inner``'s line (Celery's, the API's), its message followed by the
    record's ids (``context_suffix``), so that the ids sit before any traceback."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        suffix = context_suffix(record)
        if not suffix:
            return self.inner.format(record)
        msg, args = record.msg, record.args
        record.msg, record.args = f"{record.getMessage()} {suffix}", ()
        try:
            return self.inner.format(record)
        finally:
            record.msg, record.args = msg, args


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
    """Add the redacting and context filters to every handler of ``logger``, with the JSON
    format, or the handler's own format followed by the context (``ContextSuffixFormatter``).

    httpx's own line per request is left out (warnings only): a 100,000-customer run makes
    thousands of calls, which would drown the one line per task; retries and failures are
    logged by the clients themselves.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if json_format:
            handler.setFormatter(JsonFormatter())
        elif not isinstance(handler.formatter, ContextSuffixFormatter | JsonFormatter):
            handler.setFormatter(ContextSuffixFormatter(handler.formatter or logging.Formatter()))


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
