"""`switchboard builder`: start the Streamlit builder app on a graphs directory."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from runtime.cli import app, err

APP_FILE = Path(__file__).with_name("app.py")
DEFAULT_HOST = "127.0.0.1"
#: A host name or an IPv4/IPv6 address (no scheme, port or spaces).
HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.:-]{0,252}[A-Za-z0-9])?|::")


def builder_command(
    graphs_dir: Path, port: int, *, headless: bool, host: str = DEFAULT_HOST
) -> list[str]:
    """The `streamlit run` command line that serves the builder on `host`:`port`."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true" if headless else "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--server.fileWatcherType",
        "none",
        "--",
        "--graphs-dir",
        str(graphs_dir),
    ]


@app.command()
def builder(
    port: Annotated[int, typer.Option(help="Port to serve the builder on.")] = 8501,
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")
    ] = DEFAULT_HOST,
    graphs_dir: Annotated[
        Path | None,
        typer.Option(help="Graphs directory (default: SWITCHBOARD_GRAPHS_DIR or graphs/)."),
    ] = None,
    headless: Annotated[bool, typer.Option(help="Do not open a browser.")] = False,
) -> None:
    """Open the visual builder (a Streamlit app) on the graphs directory."""
    from schemas.catalog import default_graphs_dir

    directory = (graphs_dir or default_graphs_dir()).resolve()
    if not directory.is_dir():
        err.print(f"[red]error:[/] graphs directory {directory} does not exist")
        raise typer.Exit(2)
    if not 0 < port < 65536:
        err.print(f"[red]error:[/] --port must be between 1 and 65535, not {port}")
        raise typer.Exit(2)
    if not HOST.fullmatch(host):
        err.print(f"[red]error:[/] --host must be a host name or IP address, not {host!r}")
        raise typer.Exit(2)
    env = {**os.environ, "SWITCHBOARD_GRAPHS_DIR": str(directory)}
    # Replace this process with the server, so signals (Ctrl-C, SIGTERM) reach it.
    command = builder_command(directory, port, headless=headless, host=host)
    os.execve(command[0], command, env)
