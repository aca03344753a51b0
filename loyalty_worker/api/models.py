"""The API's wire formats: camelCase on the wire, described for the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from loyalty_worker.names import SYNC_CUSTOMER

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


class CalculatedView(_Out):
    """Points from Alleaves orders, as the last sync calculated them."""

    points: int = Field(description="Points from orders (pointsFromOrders).")
    tier: str | None = Field(description="The org's tier for these points.")
    source: str = Field(description="Always 'orders'.")


class AlpineView(_Out):
    """Alpine IQ's balance."""

    points: int = Field(description="Alpine IQ points.")
    tier: str | None = Field(
        description="Alpine's tier when it names one of the org's tiers, else the org's tier "
        "for these points."
    )
    source: str = Field(description="Always 'alpine_iq'.")
    live: bool = Field(description="True: read just now; false: as of the last sync.")
    last_visit: str | None = Field(default=None, description="Alpine IQ's last visit, if known.")


class DisplayedView(_Out):
    """What the customer's profile shows, by the org's source of truth."""

    points: int | None = Field(description="Points shown.")
    tier: str | None = Field(description="Tier shown.")
    source: str | None = Field(description="alpine_iq | calculated")


class PointsCheck(_Out):
    """A customer's loyalty by phone: calculated (orders) and Alpine IQ, reconciled."""

    calculated: CalculatedView | None = Field(
        description="Points from Alleaves orders as of the last sync; null: no synced profile."
    )
    alpine: AlpineView | None = Field(
        description="Alpine IQ's balance; null: no Alpine IQ account (or none known)."
    )
    reconciled: bool | None = Field(
        description="Within the org's tolerance; null without both sides."
    )
    discrepancy: int | None = Field(description="Alpine IQ minus calculated; null without both.")
    status: str = Field(
        description="matched | within_tolerance | alpine_higher | calculated_higher | "
        "no_alpine_account | not_synced | not_found | unknown"
    )
    displayed: DisplayedView | None = Field(description="The balance to tell the customer.")
    last_sync_at: str | None = Field(description="When the profile's points were calculated.")
    customer_id: int | str | None = Field(description="The Alleaves customer of the profile.")
    phone: str = Field(description="The phone, masked to its last four digits.")
    alpine_available: bool = Field(description="Whether Alpine IQ answered this look-up.")
    note: str | None = Field(default=None, description="Why some part is missing or stale.")


class WebhookEvent(BaseModel):
    """An Alleaves event, as signed by the sender."""

    model_config = ConfigDict(extra="allow")

    event: str = Field(description="order.created | order.updated | customer.updated | ...")
    data: dict[str, Any] = Field(
        description="The record: an order has id and id_customer; a customer has id."
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
