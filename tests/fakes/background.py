"""Run an ASGI app with uvicorn in a daemon thread on a free loopback port."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class BackgroundServer:
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Ask uvicorn to exit and wait (bounded) for its thread."""
        self.server.should_exit = True
        self.thread.join(10)


def serve_in_thread(
    app: Any, ready: threading.Event, what: str, *, log_level: str = "warning"
) -> BackgroundServer:
    """Start `app`; return once its lifespan has set `ready` (RuntimeError after
    10 s). The socket is bound first, so connections queue until uvicorn accepts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError(f"{what} did not start within 10 s")
    return BackgroundServer(port=sock.getsockname()[1], server=server, thread=thread)
