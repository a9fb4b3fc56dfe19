"""`switchboard serve`: run the call service with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from runtime.cli import app, err


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: $SWITCHBOARD_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default: $SWITCHBOARD_PORT, else 8000).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the call service (REST API under /api, docs at /docs, voice WebSocket
    at /ws/call/ID). Settings come from SWITCHBOARD_* variables (see README)."""
    import uvicorn

    from runtime.service.settings import ServiceSettings

    try:
        settings = ServiceSettings()
    except ValidationError as exc:
        for problem in exc.errors():
            where = ".".join(str(p) for p in problem["loc"])
            name = f"SWITCHBOARD_{where.upper()}"
            err.print(f"[red]error:[/] {escape(name)}: {escape(problem['msg'])}")
        raise typer.Exit(2) from None
    if workers > 1 and "jwt_secret" not in settings.model_fields_set:
        err.print("[red]error:[/] set SWITCHBOARD_JWT_SECRET when running several workers")
        raise typer.Exit(2)
    uvicorn.run(
        "runtime.service.app:serve_app",
        factory=True,
        host=host or settings.host,
        port=settings.port if port is None else port,
        workers=workers,
        log_level=log_level,
        # Compressed frames would let a few bytes on the wire expand into
        # megabytes queued by the server (and PCM audio barely compresses).
        ws_per_message_deflate=False,
    )
