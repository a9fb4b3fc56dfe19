"""The `switchboard` command line."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from runtime.session import CallEvent
from schemas.catalog import GRAPH_SUFFIXES, TOOL_FILE_NAMES, GraphCatalog, default_graphs_dir
from schemas.diagnostics import Diagnostic, GraphError

app = typer.Typer(
    name="switchboard",
    no_args_is_help=True,
    add_completion=False,
    help="Build, check and run voice call agents described as YAML graphs.",
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _graph_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(
                q
                for q in p.iterdir()
                if q.suffix in GRAPH_SUFFIXES and q.is_file() and q.name not in TOOL_FILE_NAMES
            )
        elif p.name not in TOOL_FILE_NAMES:
            files.append(p)
    return files


def resolve_graph_path(graph: str) -> Path:
    """A graph argument is a file path or a graph id in SWITCHBOARD_GRAPHS_DIR."""
    p = Path(graph)
    if p.is_file():
        return p
    index = GraphCatalog(default_graphs_dir()).index()
    if graph in index:
        return index[graph]
    err.print(
        f"[red]error:[/] no graph file {graph!r} and no graph with that id in "
        f"{default_graphs_dir()}/ (known: {', '.join(sorted(index)) or 'none'})"
    )
    raise typer.Exit(2)


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Graph files or directories.")],
    format: Annotated[str, typer.Option("--format", "-f", help="text or json")] = "text",
    strict: Annotated[bool, typer.Option(help="Warnings fail too.")] = False,
) -> None:
    """Check graph files: schema and static checks. Exit 1 on any error."""
    from schemas.validate import validate_file
    from tools.config import iter_tool_files, load_tool_file

    diagnostics: list[Diagnostic] = []
    files = _graph_files(paths)
    for f in files:
        diagnostics += validate_file(f).diagnostics
    for t in iter_tool_files(paths):
        files.append(t)
        diagnostics += load_tool_file(t).diagnostics
    failing = [d for d in diagnostics if d.severity == "error" or strict]
    if format == "json":
        out.print_json(json.dumps([d.as_dict() for d in diagnostics]))
    else:
        for d in diagnostics:
            colour = "red" if d.severity == "error" else "yellow"
            out.print(f"[{colour}]{escape(d.format())}[/]")
        status = "[red]invalid[/]" if failing else "[green]valid[/]"
        out.print(
            f"{len(files)} file(s) checked: {status} "
            f"({sum(d.severity == 'error' for d in diagnostics)} errors, "
            f"{sum(d.severity == 'warning' for d in diagnostics)} warnings)"
        )
    raise typer.Exit(1 if failing else 0)


@app.command()
def show(
    graph: Annotated[str, typer.Argument(help="Graph file or id.")],
    format: Annotated[str, typer.Option("--format", "-f", help="mermaid or dot")] = "mermaid",
) -> None:
    """Print the graph as a Mermaid flowchart or Graphviz DOT."""
    from runtime.render import to_dot, to_mermaid
    from schemas.loader import load_graph_file

    loaded = load_graph_file(resolve_graph_path(graph))
    if loaded.spec is None:
        _print_diagnostics(loaded.diagnostics)
        raise typer.Exit(1)
    if format not in ("mermaid", "dot"):
        err.print(f"[red]error:[/] --format must be mermaid or dot, not {format!r}")
        raise typer.Exit(2)
    sys.stdout.write(to_mermaid(loaded.spec) if format == "mermaid" else to_dot(loaded.spec))


def _print_diagnostics(diags: list[Diagnostic]) -> None:
    for d in diags:
        err.print(f"[red]{escape(d.format())}[/]")


def _print_event(e: CallEvent, *, as_json: bool, verbose: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(e.as_dict(), default=str) + "\n")
        sys.stdout.flush()
        return
    if e.type == "agent":
        if verbose:
            out.print(f"[bold cyan]{escape(e.data['text'])}[/]")
        else:
            sys.stdout.write(e.data["text"] + "\n")
            sys.stdout.flush()
    elif verbose and e.type == "node":
        out.print(f"[dim]  → {e.data['agent']}/{e.data['node']}[/]")
    elif verbose and e.type == "slot" and e.data["name"] not in ("intent",):
        shown = repr(e.data["value"])
        shown = shown if len(shown) <= 90 else shown[:87] + "..."
        out.print(f"[dim]  {e.data['name']} = {escape(shown)}[/]")
    elif verbose and e.type == "intent":
        out.print(f"[dim]  intent {e.data['name']} ({e.data['confidence']:.2f})[/]")
    elif verbose and e.type == "tool":
        status = f"error: {e.data['error']}" if e.data.get("error") else "ok"
        out.print(f"[dim]  tool {e.data['name']}({escape(str(e.data['args']))}) {status}[/]")
    elif e.type == "outcome":
        reason = f": {e.data['reason']}" if e.data.get("reason") else ""
        line = escape(f"[call {e.data['outcome']}{reason}]")
        err.print(f"[magenta]{line}[/]")


async def _chat(
    graph_path: Path,
    *,
    as_json: bool,
    caller: str | None,
    call_id: str | None,
    checkpoint: str | None,
    keep_open: bool,
    lines: Iterable[str] | None,
    echo: bool = False,
) -> str | None:
    from runtime.checkpoint import CheckpointerUnavailable, open_checkpointer
    from runtime.compiler import compile_call
    from runtime.context import CallContext
    from runtime.session import CallSession
    from schemas.validate import load_valid_graph
    from tools.config import build_registry

    catalog = GraphCatalog(graph_path.parent)
    spec = load_valid_graph(graph_path, catalog=catalog)
    tools = await asyncio.to_thread(build_registry, graph_path.parent)
    interactive = lines is None
    async with AsyncExitStack() as stack:
        try:
            saver = await stack.enter_async_context(open_checkpointer(checkpoint or "memory://"))
        except (ValueError, CheckpointerUnavailable) as exc:  # a bad URL or an unreachable store
            err.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(2) from None
        compiled = compile_call(spec, resolve=catalog.resolve, checkpointer=saver)
        kwargs: dict[str, Any] = {
            "compiled": compiled,
            "caller": caller,
            "context": CallContext(tools=tools),
        }
        if call_id:
            kwargs["call_id"] = call_id
        session = CallSession(**kwargs)
        verbose = (interactive or echo) and not as_json

        def show_all(events: list[CallEvent]) -> None:
            for e in events:
                _print_event(e, as_json=as_json, verbose=verbose)

        if not await session.started():
            show_all(await session.start())
        elif not as_json:
            err.print(f"[dim](resuming call {session.call_id})[/]")
        source = lines if lines is not None else _prompt_lines()
        for line in source:
            if await session.ended():
                break
            if echo:
                out.print(f"[bold green]caller:[/] {escape(line)}")
            show_all(await session.send(line.rstrip("\n")))
        if not keep_open:
            show_all(await session.hangup())
        state = await session.state()
        return state.get("outcome")


def _prompt_lines() -> Iterable[str]:
    while True:
        try:
            yield out.input("[bold green]you> [/]")
        except (EOFError, KeyboardInterrupt):
            return


@app.command()
def chat(
    graph: Annotated[str, typer.Argument(help="Graph file or id.")],
    json_events: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
    caller: Annotated[str | None, typer.Option(help="Caller phone number.")] = None,
    call_id: Annotated[str | None, typer.Option(help="Resume or name this call.")] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(help="Checkpointer URL: memory://, sqlite:///file.db, redis://host:6379/0."),
    ] = None,
    keep_open: Annotated[
        bool,
        typer.Option(help="Leave the call open at end of input (resume later with --call-id)."),
    ] = False,
) -> None:
    """A text conversation with an agent. Reads one caller line per line when
    stdin is not a terminal."""
    lines = None if sys.stdin.isatty() else iter(sys.stdin.readline, "")
    try:
        asyncio.run(
            _chat(
                resolve_graph_path(graph),
                as_json=json_events,
                caller=caller,
                call_id=call_id,
                checkpoint=checkpoint,
                keep_open=keep_open,
                lines=lines,
            )
        )
    except GraphError as exc:
        _print_diagnostics(exc.diagnostics)
        raise typer.Exit(1) from None


@app.command("test")
def test_cmd(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Conversation test files or directories (default: the graphs dir)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show transcripts.")] = False,
) -> None:
    """Run conversation tests. Exit 1 on any failure."""
    failed = asyncio.run(_run_tests(paths or [default_graphs_dir()], verbose=verbose))
    raise typer.Exit(1 if failed else 0)


async def _run_tests(paths: list[Path], *, verbose: bool) -> int:
    from runtime.convtest import ConversationFileError, discover, run_file

    files = discover(paths)
    if not files:
        err.print(f"[red]no conversation tests found in {', '.join(map(str, paths))}[/]")
        return 1
    passed = failed = 0
    for f in files:
        try:
            results = await run_file(f)
        except (ConversationFileError, GraphError) as exc:
            failed += 1
            out.print(f"[red]ERROR[/] {escape(f'{f}: {exc}')}")
            continue
        for r in results:
            ok = r.passed
            passed += ok
            failed += not ok
            out.print(
                f"{'[green]PASS[/]' if ok else '[red]FAIL[/]'} {escape(f'{f.name} :: {r.name}')}"
            )
            for fail in r.failures:
                out.print(f"    [red]{escape(fail)}[/]")
            if verbose or not ok:
                for line in r.transcript:
                    out.print(f"    [dim]{escape(line)}[/]")
    out.print(f"{passed} passed, {failed} failed")
    return failed


#: Modules that add their commands to `app` when imported (one per feature).
COMMAND_MODULES: tuple[str, ...] = (
    "runtime.db.cli",
    "runtime.intents.cli",
    "runtime.voice.cli",
    "runtime.service.cli",
    "runtime.seed_cli",
    "runtime.demo_cli",
    "builder.cli",
    "builder.launch",
    "benchmarks.cli",
    "runtime.reliability_cli",
)
for _module in COMMAND_MODULES:
    importlib.import_module(_module)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
