"""Load a graph file and run every static check on it: the one entry point
for the CLI, the builder and the service."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from schemas.catalog import GraphCatalog
from schemas.checks import check_graph
from schemas.diagnostics import Diagnostic, GraphError
from schemas.loader import LoadedGraph, load_graph_file
from schemas.spec import GraphSpec


def known_tools(graphs_dir: str | Path | None = None) -> list[str]:
    """Names of the tools a graph in `graphs_dir` (default: the graphs directory)
    may use: built-ins, the directory's declared tools and entry-point tools."""
    from tools.config import known_tool_names

    return known_tool_names(graphs_dir)


def validate_file(
    path: str | Path,
    *,
    tools: Collection[str] | None = None,
    catalog: GraphCatalog | None = None,
) -> LoadedGraph:
    """Load `path` and add static-check diagnostics (tools default to those
    known beside the file, handoff targets to the graphs beside the file)."""
    loaded = load_graph_file(path)
    if loaded.spec is None:
        return loaded
    cat = catalog or GraphCatalog(Path(path).parent)
    found = check_graph(
        loaded.spec,
        loaded.source,
        file=loaded.file,
        tools=known_tools(Path(path).parent) if tools is None else tools,
        graphs=cat.ids(),
        resolve=cat.resolve,
    )
    loaded.diagnostics = sorted(
        [*loaded.diagnostics, *found], key=lambda d: (d.line, d.column, d.code)
    )
    return loaded


def load_valid_graph(path: str | Path, *, catalog: GraphCatalog | None = None) -> GraphSpec:
    """The spec of a graph with no error diagnostics, else `GraphError`."""
    loaded = validate_file(path, catalog=catalog)
    errors: list[Diagnostic] = [d for d in loaded.diagnostics if d.severity == "error"]
    if errors or loaded.spec is None:
        raise GraphError(errors or loaded.diagnostics)
    return loaded.spec
