"""The commands that serve: the HTTP API and Flower."""

from __future__ import annotations

import argparse
import sys

from loyalty_worker.cli.arguments import Commands


def _cmd_flower(args: argparse.Namespace) -> int:  # noqa: RET503 - ends the process
    """Flower, with basic auth from the settings (passed in the environment, not the argv).

    Flower runs in this process: a signal meant for the command reaches Flower itself, and
    there is no wrapper left to outlive it or to die leaving it behind. Flower stops on SIGTERM
    by raising ``SystemExit`` wherever its main thread is; landing while its thread pool starts a
    thread, that leaves a pool thread nothing wakes, and the interpreter's exit would wait on it
    forever. So once Flower returns, the process ends at once: Flower keeps no state to save
    (it is never started ``--persistent``)."""
    import os

    from loyalty_worker.config import get_settings

    settings = get_settings()
    if settings.flower_password is not None:
        password = settings.flower_password.get_secret_value()
        os.environ["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{password}"
    elif not args.no_auth:
        print(
            "flower: set LOYALTY_FLOWER_PASSWORD (basic auth), or pass --no-auth for a "
            "loopback-only Flower",
            file=sys.stderr,
        )
        return 2
    elif not _is_loopback(args.address):
        # Flower's task view and controls would be open to anyone who reaches the address.
        print(
            f"flower: --no-auth serves only a loopback address (127.0.0.1, ::1), not "
            f"{args.address!r}; set LOYALTY_FLOWER_PASSWORD to serve it further",
            file=sys.stderr,
        )
        return 2
    from celery.bin.celery import celery as celery_command

    argv = ["-A", "loyalty_worker.celery_app", "flower"]
    argv += [f"--port={args.port}", f"--address={args.address}"]
    code: int | str | None = 0
    try:
        celery_command.main(args=argv, prog_name="celery", auto_envvar_prefix="CELERY")
    except SystemExit as stop:
        code = stop.code
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else int(code is not None))


def _is_loopback(address: str) -> bool:
    import ipaddress

    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def add_flower(commands: Commands) -> None:
    """``loyalty-worker flower``."""
    flower = commands.add_parser("flower", help="Flower with basic auth from the settings")
    flower.add_argument("--port", type=int, default=5555)
    flower.add_argument("--address", default="127.0.0.1")
    flower.add_argument("--no-auth", action="store_true", help="no basic auth (local use only)")
    flower.set_defaults(handler=_cmd_flower)


def _cmd_api(args: argparse.Namespace) -> int:
    """Serve the HTTP API (sync triggers, run status, points look-up, webhooks) with uvicorn."""
    import uvicorn
    from pydantic import ValidationError

    from loyalty_worker import logs
    from loyalty_worker.adapters.accounts import AccountsMisconfigured
    from loyalty_worker.api import wiring
    from loyalty_worker.api.settings import get_api_settings
    from loyalty_worker.config import get_settings

    try:
        api_settings = get_api_settings()
    except ValidationError as exc:  # the message never shows a token (hide_input_in_errors)
        print(f"api: invalid settings: {exc}", file=sys.stderr)
        return 2
    settings = get_settings()
    # Redacted like the workers' logs (httpx's request URLs hold phone numbers), tokens and
    # secrets masked wherever they appear, httpx's line per request left out.
    logs.configure_process(json_format=settings.log_format == "json")
    for grant in api_settings.tokens:
        logs.register_secret(grant.token.get_secret_value())
    for secret in api_settings.webhook_secrets.values():
        logs.register_secret(secret.get_secret_value())
    if settings.phone_hash_key is not None:
        logs.register_secret(settings.phone_hash_key.get_secret_value())
    if not api_settings.tokens:
        print(
            "api: no machine callers (LOYALTY_API_TOKENS is empty): people sign in to the "
            "dashboard; /api and /metrics answer no token",
            file=sys.stderr,
        )
    try:
        app = wiring.build_app(settings, api_settings)
    except AccountsMisconfigured as exc:
        print(f"api: {exc}", file=sys.stderr)
        return 2
    # uvicorn's access log prints query strings (phone numbers): the app logs paths instead.
    # Its proxy headers are off: whose X-Forwarded-For counts is LOYALTY_API_TRUSTED_PROXIES
    # alone (``edge.client_address``), and links follow LOYALTY_PUBLIC_URL, not X-Forwarded-Proto.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        access_log=False,
        log_config=None,
        proxy_headers=False,
    )
    return 0


def add_api(commands: Commands) -> None:
    """``loyalty-worker api``."""
    api = commands.add_parser(
        "api",
        help="serve the HTTP API (sync triggers, run status, points look-up, Alleaves webhooks)",
        description="Serve the loyalty API with uvicorn; callers' tokens come from "
        "LOYALTY_API_TOKENS. The OpenAPI schema is at /openapi.json.",
    )
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(handler=_cmd_api)
