"""One router per concern; ``app.create_app`` includes them (a new concern is a new module)."""
