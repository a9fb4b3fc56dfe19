"""`switchboard intents ...`: measure how well a graph routes caller turns."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from runtime.cli import app, err, resolve_graph_path

intents_app = typer.Typer(
    name="intents",
    no_args_is_help=True,
    help="Intent routing: evaluate a route node on labelled utterances.",
)
app.add_typer(intents_app, name="intents")


@intents_app.command("eval")
def eval_cmd(
    graph: Annotated[str, typer.Argument(help="Graph file or id.")],
    data: Annotated[
        Path,
        typer.Argument(help='JSONL file: one {"text": ..., "intent": NAME or null} per line.'),
    ],
    node: Annotated[
        str | None, typer.Option("--node", "-n", help="Route node (default: the first one).")
    ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json")] = "text",
) -> None:
    """Evaluate a route node on labelled utterances with the classifier the graph
    uses: in-scope accuracy, out-of-scope recall, confusion counts and the time
    per classification. Exit 2 on bad input, 1 when the classifier cannot run."""
    from runtime.intents import EmbedderError, IntentConfigError
    from runtime.intents.eval import EvalInputError, evaluate_route, format_report, load_labelled
    from schemas.loader import load_graph_file

    if format not in ("text", "json"):
        err.print(f"[red]error:[/] --format must be text or json, not {escape(format)!r}")
        raise typer.Exit(2)
    loaded = load_graph_file(resolve_graph_path(graph))
    if loaded.spec is None:
        for d in loaded.diagnostics:
            err.print(f"[red]{escape(d.format())}[/]")
        raise typer.Exit(1)
    try:
        items = load_labelled(data)
        report = asyncio.run(evaluate_route(loaded.spec, items, node=node))
    except EvalInputError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except (EmbedderError, IntentConfigError) as exc:
        err.print(f"[red]error:[/] the intent classifier cannot run: {escape(str(exc))}")
        raise typer.Exit(1) from None
    if format == "json":
        sys.stdout.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_report(report))
