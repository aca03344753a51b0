"""The use cases, grouped by capability; each reaches the outside world only through ``ports``.

Layers, highest first (``make check`` keeps them): ``dashboard`` and ``lookup`` (what people and
other services ask for) over ``people`` (who may ask: roles per org) over ``run`` (an org's batch)
over ``sync`` (one customer).
"""
