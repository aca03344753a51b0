"""``python -m loyalty_worker.cli``: ``loyalty-worker`` as the stack's child processes run it."""

from loyalty_worker.cli import main

raise SystemExit(main())
