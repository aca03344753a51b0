"""The loyalty HTTP API (FastAPI, served by uvicorn: ``loyalty-worker api``).

``app.create_app`` assembles it over injected services, ``wiring.build_app`` over the real
clients. ``routes/`` holds one router per concern (sync, runs, points, webhooks, health); ``deps``
the FastAPI dependencies (the app's parts from ``app.state``, the authenticated caller);
``state`` what is kept on ``app.state``; ``errors`` every error-to-status mapping.
"""
