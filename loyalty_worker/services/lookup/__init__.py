"""What other systems ask of the worker: the agents' look-up, Alleaves webhooks, the export."""
