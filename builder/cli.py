"""`switchboard diff` and `switchboard log`: graph versions from the command line.

GRAPH is a graph file path or a graph id in SWITCHBOARD_GRAPHS_DIR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from builder import versions
from builder.semantic_diff import DiffError, diff_texts
from runtime.cli import app, err, out, resolve_graph_path

_FORMATS = ("text", "json")


def _check_format(value: str) -> str:
    if value not in _FORMATS:
        raise typer.BadParameter(f"use one of: {', '.join(_FORMATS)}")
    return value


def _version_text(path: Path, rev: str | None) -> str | None:
    """The file at `rev` (None: the working copy); None when it did not exist."""
    if rev is None:
        return path.read_text("utf-8") if path.is_file() else None
    try:
        return versions.show_file(path, rev)
    except versions.NotAtRevision:
        return None


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(2)


@app.command()
def diff(
    graph: Annotated[str, typer.Argument(help="Graph file or graph id.")],
    rev_a: Annotated[str, typer.Argument(help="Old revision.")] = "HEAD",
    rev_b: Annotated[
        str | None, typer.Argument(help="New revision (default: the working copy).")
    ] = None,
    format: Annotated[
        str, typer.Option("--format", "-f", help="text or json", callback=_check_format)
    ] = "text",
) -> None:
    """Semantic diff of a graph between two versions: nodes, fields, edges, settings."""
    path = resolve_graph_path(graph)
    try:
        old = _version_text(path, rev_a)
        new = _version_text(path, rev_b)
        result = diff_texts(
            old, new, old_file=f"{path.name}@{rev_a}", new_file=f"{path.name}@{rev_b or 'working'}"
        )
    except (versions.VersionError, DiffError) as exc:
        raise _fail(str(exc)) from None
    if format == "json":
        body = {"graph": str(path), "rev_a": rev_a, "rev_b": rev_b, **result.to_json()}
        out.print_json(json.dumps(body, ensure_ascii=False))
        return
    out.print(f"{escape(path.name)}: {escape(rev_a)} -> {escape(rev_b or 'working copy')}")
    if old is None:
        out.print(f"(the file did not exist at {escape(rev_a)})")
    for line in result.lines():
        out.print(escape(line))


@app.command()
def log(
    graph: Annotated[str, typer.Argument(help="Graph file or graph id.")],
    limit: Annotated[int, typer.Option(min=1, help="Most versions to list.")] = 50,
    format: Annotated[
        str, typer.Option("--format", "-f", help="text or json", callback=_check_format)
    ] = "text",
) -> None:
    """Versions of a graph file: commit, date, author, message, tags."""
    path = resolve_graph_path(graph)
    try:
        found = versions.history(path, limit=limit)
    except versions.VersionError as exc:
        raise _fail(str(exc)) from None
    if format == "json":
        rows = [
            {
                "commit": v.commit,
                "author": v.author,
                "email": v.email,
                "date": v.date,
                "message": v.message,
                "tags": list(v.tags),
            }
            for v in found
        ]
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    if not found:
        out.print(f"{escape(path.name)} has no committed versions yet")
    for v in found:
        tags = f" ({', '.join(v.tags)})" if v.tags else ""
        out.print(escape(f"{v.short} {v.date} {v.author}: {v.message}{tags}"))
