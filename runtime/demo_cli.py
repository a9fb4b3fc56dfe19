"""`switchboard demo`: the product on the embedded defaults, for a new user.

Checks the example graphs, seeds the demo database with simulated calls when it
has none, starts the call service and the builder/dashboard on one SQLite
database (local checkpoints, offline voice, recordings on) with a demo
operator, prints the URLs and the operator's credentials, and runs until
Ctrl-C or SIGTERM, when it stops both. `--check` is the offline smoke test
instead: graphs checked, one scripted text call, the conversation tests.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from runtime.cli import (
    _chat,
    _graph_files,
    _print_diagnostics,
    _run_tests,
    app,
    err,
    out,
    resolve_graph_path,
)
from runtime.demo_stack import (
    DemoCancelled,
    DemoFailed,
    DemoPaths,
    DemoStack,
    PortTaken,
    check_port_free,
    demo_environment,
)
from schemas.catalog import default_graphs_dir
from schemas.diagnostics import GraphError

DEMO_SCRIPT = [
    "Hi, I need a cleaning",
    "next Tuesday if you have anything",
    "ten in the morning",
    "Maria Garcia",
]
DEMO_USER = "demo"
#: Calls seeded into an empty demo database (about a minute on two cores).
DEMO_CALLS = 300
PAGES = ("builder", "live", "calls", "analytics")


def _check_graphs(graphs_dir: Path) -> int:
    """Validate every graph file; print one line each. Returns how many fail."""
    from schemas.validate import validate_file

    bad = 0
    for f in _graph_files([graphs_dir]):
        diags = validate_file(f).diagnostics
        errors = [d for d in diags if d.severity == "error"]
        bad += bool(errors)
        out.print(
            f"{'[green]✓[/]' if not errors else '[red]✗[/]'} {f}  "
            f"({len(errors)} errors, {len(diags) - len(errors)} warnings)"
        )
    return bad


def _offline_check(graph: str, graphs_dir: Path) -> int:
    """The smoke test: graphs, one scripted text call, the conversation tests.
    Returns the exit code."""
    out.rule("1. Checking the example graphs")
    bad = _check_graphs(graphs_dir)
    out.rule(f"2. A text call to {graph!r}")
    try:
        outcome = asyncio.run(
            _chat(
                resolve_graph_path(graph),
                as_json=False,
                caller="+15551230001",
                call_id=None,
                checkpoint=None,
                keep_open=False,
                lines=iter(DEMO_SCRIPT),
                echo=True,
            )
        )
    except GraphError as exc:  # an invalid graph or tools file
        _print_diagnostics(exc.diagnostics)
        return 1
    out.print(f"outcome: [bold]{outcome}[/]")
    out.rule("3. Conversation tests")
    failed = asyncio.run(_run_tests([graphs_dir], verbose=False))
    return 1 if (bad or failed or outcome is None) else 0


async def _recorded_calls(database_url: str) -> int:
    from sqlalchemy import func, select

    from runtime.db.migrations import init_db
    from runtime.db.models import Call

    engine = await init_db(database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(Call))).scalar_one())
    finally:
        await engine.dispose()


def _seed_if_empty(paths: DemoPaths, graphs_dir: Path, calls: int) -> None:
    from runtime.seed import seed_demo

    existing = asyncio.run(_recorded_calls(paths.database_url))
    if existing:
        out.print(f"{existing} calls already recorded in {paths.database}: not seeding")
        return
    if calls == 0:
        out.print("--calls 0: not seeding")
        return
    out.print(f"Seeding {calls} simulated calls through the real runtime (text mode)...")
    began = time.monotonic()
    summary = asyncio.run(seed_demo(paths.database_url, calls=calls, graphs_dir=graphs_dir))
    out.print(
        f"{summary.calls} calls, {summary.steps} steps, {summary.barge_ins} barge-ins "
        f"recorded in {time.monotonic() - began:.0f} s"
    )


class _Stop:
    """SIGINT/SIGTERM set `event` (the main loop then stops the children)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signal = signum
        self.event.set()

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


def _print_ready(stack: DemoStack, user: str, password: str) -> None:
    out.rule("Switchboard is running")
    out.print(f"API docs:   {stack.api_url}/docs")
    for page in PAGES:
        out.print(f"{page.capitalize() + ':':11} {stack.builder_url}/{page}")
    out.print(f"operator:   user [bold]{escape(user)}[/]  password [bold]{escape(password)}[/]")
    out.print(f"data:       {stack.paths.data_dir} (logs in {stack.paths.logs})")
    out.print("Press Ctrl-C to stop.", style="dim")


def _port_taken(exc: PortTaken) -> NoReturn:
    err.print(f"[red]error:[/] {escape(str(exc))}")
    err.print("choose other ports with --api-port and --builder-port")
    raise typer.Exit(2)


@app.command()
def demo(
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Offline smoke test instead: graphs, a scripted call, the tests."
        ),
    ] = False,
    graph: Annotated[str, typer.Option(help="Graph the --check call uses.")] = "front-desk",
    host: Annotated[str, typer.Option(help="Interface both servers bind.")] = "127.0.0.1",
    api_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the API.")] = 8000,
    builder_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of the builder and dashboard.")
    ] = 8501,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Database, checkpoints, recordings, logs (default: <data dir>/demo)."),
    ] = None,
    calls: Annotated[
        int, typer.Option(min=0, help="Simulated calls to seed into an empty database.")
    ] = DEMO_CALLS,
    user: Annotated[str, typer.Option(help="The demo operator's user name.")] = DEMO_USER,
    password: Annotated[
        str | None,
        typer.Option(help="The demo operator's password (default: a new random one)."),
    ] = None,
) -> None:
    """Run Switchboard on the embedded defaults: the call service and the
    builder/dashboard on one SQLite database, seeded with simulated calls.
    No key, no network."""
    graphs_dir = default_graphs_dir().resolve()
    if check:
        raise typer.Exit(_offline_check(graph, graphs_dir))
    if api_port == builder_port:
        err.print("[red]error:[/] --api-port and --builder-port must differ")
        raise typer.Exit(2)
    if not graphs_dir.is_dir():
        err.print(f"[red]error:[/] graphs directory {graphs_dir} does not exist")
        raise typer.Exit(2)
    try:  # before anything slow; checked again as the servers start
        check_port_free(host, api_port, "the API")
        check_port_free(host, builder_port, "the builder")
    except PortTaken as exc:
        _port_taken(exc)
    from runtime.db.engine import default_data_dir

    paths = DemoPaths((data_dir or default_data_dir() / "demo").expanduser().resolve())
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    out.rule("Checking the example graphs")
    if _check_graphs(graphs_dir):
        err.print("[red]error:[/] fix the graphs above first (switchboard validate graphs/)")
        raise typer.Exit(1)
    out.rule("Demo data")
    _seed_if_empty(paths, graphs_dir, calls)
    password = password or secrets.token_urlsafe(12)
    env = demo_environment(
        paths,
        graphs_dir=graphs_dir,
        user=user,
        password=password,
        jwt_secret=secrets.token_urlsafe(48),
    )
    stack = DemoStack(host, api_port, builder_port, graphs_dir, paths, env)
    stop = _Stop()
    stop.install()
    out.rule("Starting the service and the builder")
    try:
        stack.start(cancel=stop.event)
    except DemoCancelled:
        out.print("Stopped.")
        raise typer.Exit(0) from None
    except PortTaken as exc:
        _port_taken(exc)
    except DemoFailed as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    _print_ready(stack, user, password)
    code = 0
    try:
        while not stop.event.wait(0.5):
            gone = stack.exited()
            if gone is not None:
                err.print(f"[red]error:[/] the {gone.name} stopped; log:\n{escape(gone.tail())}")
                code = 1
                break
    finally:
        out.print("Stopping...")
        stack.stop()
    out.print("Stopped.")
    raise typer.Exit(code)
