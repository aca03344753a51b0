"""The one error tree of loyalty_worker.

Every error carries a ``reason``: the short code that a failed sync result, the batch summary
and the Discord alert count by. The split that matters to callers is transient vs permanent,
decided once, at the client boundary::

    LoyaltyError
    ├── TransientError          retry later: 429, 5xx, timeouts, connection errors
    │   ├── RateLimited         429; ``retry_after`` seconds when the service said so
    │   └── DeadlineExceeded    a task's own time budget ran out: the rest is handed on
    └── PermanentError          retrying will not help
        ├── AuthError           401/403: wrong credentials or API key (stops an org's run)
        ├── MalformedRecord     a record from a provider that cannot be trusted (reported by id)
        ├── SettingsInvalid     an org's loyalty settings document fails validation
        ├── UnknownOrg          no loyalty settings document for that org
        └── PhoneNotKept        a run's task must look a phone up that the run no longer keeps

Exceptions keep ``args`` complete (``super().__init__(*args)``) so that Celery can pickle or
serialise them across processes.
"""

from __future__ import annotations


class LoyaltyError(Exception):
    """Base of every error this package raises on purpose: the service (or part of the worker)
    that met it, and what happened."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(service, message)
        self.service = service
        self.message = message

    @property
    def reason(self) -> str:
        return "error"

    def __str__(self) -> str:
        return f"{self.service}: {self.message}"


class TransientError(LoyaltyError):
    """A call that may succeed when tried again (429, 5xx, timeout, connection refused)."""

    @property
    def reason(self) -> str:
        return f"{self.service}_unavailable"


class RateLimited(TransientError):
    """The service answered 429; ``retry_after`` is its Retry-After in seconds, if it sent one."""

    def __init__(self, service: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(service, message)
        self.args = (service, message, retry_after)
        self.retry_after = retry_after


class PermanentError(LoyaltyError):
    """A call that will fail the same way again (a 4xx other than 429, bad data)."""

    @property
    def reason(self) -> str:
        return f"{self.service}_rejected"


class AuthError(PermanentError):
    """Credentials or API key refused (401/403): an org's run stops and alerts once."""

    @property
    def reason(self) -> str:
        return f"{self.service}_auth"


class MalformedRecord(PermanentError):
    """A provider record that fails validation, named by its kind and id."""

    def __init__(
        self,
        service: str,
        kind: str,
        record_id: str,
        problem: str,
        customer_id: int | None = None,
    ) -> None:
        super().__init__(service, f"malformed {kind} {record_id}: {problem}")
        self.args = (service, kind, record_id, problem, customer_id)
        self.kind = kind
        self.record_id = record_id
        self.problem = problem
        # The customer a malformed order belongs to, when its id_customer could be read.
        self.customer_id = customer_id

    @property
    def reason(self) -> str:
        return "malformed"


class SettingsInvalid(PermanentError):
    """An org's loyalty settings document is invalid; names the org and the field."""

    def __init__(self, org_id: str, field: str, problem: str) -> None:
        super().__init__("settings", f"org {org_id}: loyalty settings field {field!r}: {problem}")
        self.args = (org_id, field, problem)
        self.org_id = org_id
        self.field = field
        self.problem = problem

    @property
    def reason(self) -> str:
        return "settings_invalid"


class UnknownOrg(PermanentError):
    """No ``loyalty_settings/{orgId}`` document exists for the org."""

    def __init__(self, org_id: str) -> None:
        super().__init__("settings", f"unknown org {org_id!r}: no loyalty settings document")
        self.args = (org_id,)
        self.org_id = org_id

    @property
    def reason(self) -> str:
        return "unknown_org"


class PhoneNotKept(PermanentError):
    """A run's customer needs a look-up by phone, but the run's phones (kept beside its task
    messages, ``ports.RunPhones``) no longer hold it: they expired, or Redis lost them."""

    def __init__(self, run_id: str | None, customer_id: int) -> None:
        super().__init__(
            "run_state", f"run {run_id}: customer {customer_id}: its phone is no longer kept"
        )
        self.args = (run_id, customer_id)
        self.run_id = run_id
        self.customer_id = customer_id

    @property
    def reason(self) -> str:
        return "phone_not_kept"


class DeadlineExceeded(TransientError):
    """A task's own time budget ran out before its work did (``services.sync.deadline``): the work
    left is handed on or tried again later, never run past the budget."""

    def __init__(self, what: str, budget_s: float) -> None:
        super().__init__("deadline", f"{what}: not done within {budget_s:g} s")
        self.args = (what, budget_s)
        self.what = what
        self.budget_s = budget_s

    @property
    def reason(self) -> str:
        return "deadline_exceeded"
