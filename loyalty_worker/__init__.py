"""loyalty_worker: keeps dispensary customers' loyalty points right.

Alleaves orders in, Alpine IQ reconciled, Markitbot's Firestore profiles out.
"""


def enqueue_customer_sync(org_id: str, customer_id: int, *, dry_run: bool = False) -> str:
    """Enqueue one customer's sync through the broker; returns the Celery task id."""
    from loyalty_worker.celery_app import app

    result = app.send_task(
        "loyalty.sync_customer",
        args=[org_id, customer_id],
        kwargs={"dry_run": dry_run},
        queue="loyalty.customers",
    )
    return str(result.id)
