"""The loyalty HTTP API (FastAPI, served by uvicorn: ``loyalty-worker api``).

``app.create_app`` builds it over injected services; ``wiring.build_app`` over the real clients.
"""
