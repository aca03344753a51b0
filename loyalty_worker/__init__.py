"""loyalty_worker: keeps dispensary customers' loyalty points right.

Alleaves orders in, Alpine IQ reconciled, Markitbot's Firestore profiles out.
"""


def enqueue_customer_sync(org_id: str, customer_id: int, *, dry_run: bool = False) -> str:
    """Enqueue one customer's sync through the broker; returns the Celery task id."""
    from loyalty_worker.adapters.publisher import TaskPublisher
    from loyalty_worker.celery_app import app

    return TaskPublisher(app).sync_customer(org_id, customer_id, dry_run=dry_run)
