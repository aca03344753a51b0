"""The API's wire formats: camelCase on the wire, described for the OpenAPI schema.

Two are the services' own, so that a service's value and the API's schema are one: the agents'
look-up's answer (``services.lookup.points_answer``) and an event's record (``EventRecord``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from loyalty_worker.names import SYNC_CUSTOMER
from loyalty_worker.services.lookup.webhooks import EventRecord

ORG_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"


class _Out(BaseModel):
    """Responses: built from Python names, written in camelCase."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class SyncRequest(BaseModel):
    """Trigger an org's run, or one customer's sync."""

    # Unknown fields are refused: a mistyped ``customerId`` must not start a whole org's run.
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel)

    org_id: str = Field(
        pattern=ORG_ID_PATTERN, description="The org (dispensary), as in loyalty_settings/{orgId}."
    )
    customer_id: int | None = Field(
        default=None,
        gt=0,
        description="Sync only this Alleaves customer (id_customer); absent: the whole org.",
    )
    dry_run: bool = Field(
        default=False, strict=True, description="Calculate and reconcile, write nothing."
    )


class RunAccepted(_Out):
    """An org's run was enqueued."""

    run_id: str = Field(description="Id of the run, for GET /api/loyalty/runs/{runId}.")
    status_url: str = Field(description="Where the run's progress is read.")


class TaskAccepted(_Out):
    """One customer's sync was enqueued."""

    task_id: str = Field(description=f"Celery task id of the customer's {SYNC_CUSTOMER}.")


class RunStatus(_Out):
    """A run's progress, and its summary once it has one."""

    run_id: str = Field(description="The run.")
    org_id: str = Field(description="The org the run syncs.")
    status: str = Field(
        description="queued | listing | syncing | summarizing | completed | failed | "
        "incomplete | duplicate"
    )
    listed: int | None = Field(description="Customers the run will sync (null while listing).")
    done: int = Field(description="Customers finished so far (synced, unchanged or failed).")
    failed: int = Field(description="Customers whose sync failed so far.")
    error: str | None = Field(default=None, description="Why the run failed or was refused.")
    summary: dict[str, Any] | None = Field(
        default=None, description="The run summary (as in loyalty_sync_runs/{runId}) when done."
    )


class WebhookEvent(BaseModel):
    """An Alleaves event, as signed by the sender."""

    model_config = ConfigDict(extra="allow")

    event: str = Field(description="order.created | order.updated | customer.updated | ...")
    # Read as an EventRecord, documented as what it accepts: any object (an id that is no usable
    # id reads as none; the event is acknowledged).
    data: Annotated[
        EventRecord, WithJsonSchema({"type": "object", "additionalProperties": True})
    ] = Field(
        title="Data",
        description="The record: an order has id and id_customer; a customer has id.",
    )
    timestamp: int | float | str = Field(
        description="When it was sent: epoch seconds (or milliseconds) or ISO-8601."
    )


class WebhookAccepted(_Out):
    """What the webhook did with the event."""

    enqueued: bool = Field(description="Whether a customer sync was enqueued for this event.")
    task_id: str | None = Field(default=None, description="The enqueued task, when one was.")
    reason: str | None = Field(default=None, description="Why nothing was enqueued.")


class ErrorBody(BaseModel):
    """An error that is not a validation error."""

    detail: str = Field(description="What went wrong.")


class FieldError(BaseModel):
    """One invalid input."""

    field: str = Field(description="The field, parameter or header at fault.")
    loc: list[str | int] = Field(description="Where it is: body, query, path or header, then name.")
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="The kind of error.")


class ValidationErrorBody(BaseModel):
    """Invalid input (422); values are never echoed (they may be phone numbers)."""

    detail: list[FieldError] = Field(description="Every invalid input.")
