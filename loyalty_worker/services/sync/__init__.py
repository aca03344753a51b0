"""One customer: its inputs gathered, its points calculated and reconciled, its profile written.

- ``customer``: evaluate and write one customer, or a chunk of them (``sync_chunk``);
- ``inputs``: a customer's work and its compact form in a task message;
- ``lone``: the inputs of a customer synced on its own, found in Alleaves' listings;
- ``listing``, ``order_history``, ``paging``: Alleaves' customer listing and order history,
  read in parallel pages within a window, a page limit and a deadline (``deadline``);
- ``lookups``: Alpine IQ look-ups made ahead, side by side;
- ``retries``: the one rule for trying a transient error again, in this thread or by Celery.
"""
