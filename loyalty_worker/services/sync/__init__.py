"""One customer: its inputs gathered, its points calculated and reconciled, its profile written."""
