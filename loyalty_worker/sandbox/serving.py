"""Serving the sandbox's app with uvicorn, announcing where it listens."""

from __future__ import annotations

import socket
import sys

import uvicorn
from starlette.applications import Starlette


class _AnnouncingServer(uvicorn.Server):
    """Tells a parent process where to connect, once connections are accepted."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and sockets:
            host = self.config.host
            port = sockets[0].getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            sys.stdout.write(f"sandbox listening on http://{shown}:{port}\n")
            sys.stdout.flush()


def serve(app: Starlette, *, host: str, port: int) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; port 0 picks a free port (the line printed names it)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    server = _AnnouncingServer(config)
    # Binding here rather than inside uvicorn lets port 0 resolve to one known port.
    server.run(sockets=[config.bind_socket()])
