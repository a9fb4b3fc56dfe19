"""Find graphs by id in a graphs directory (for handoffs and the CLI).

A graph's id is the `id` field inside the file, not its file name. Files are
loaded lazily and once. Names and refs coming from graph files or requests are
never used as paths: only files found by listing the directory are read, so an
id like `../../etc/passwd` can only fail to match.
"""

from __future__ import annotations

import os
from pathlib import Path

from schemas.diagnostics import Diagnostic, GraphError
from schemas.loader import LoadedGraph, load_graph_file
from schemas.spec import GraphSpec

GRAPH_SUFFIXES = (".yaml", ".yml", ".json")


def default_graphs_dir() -> Path:
    return Path(os.environ.get("SWITCHBOARD_GRAPHS_DIR", "graphs"))


class GraphCatalog:
    """The graph files of one directory (not recursive), indexed by graph id."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._by_id: dict[str, Path] | None = None
        self._loaded: dict[Path, LoadedGraph] = {}

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(
            p
            for p in self.directory.iterdir()
            if p.is_file() and p.suffix in GRAPH_SUFFIXES and not p.name.startswith(".")
        )

    def load(self, path: str | Path) -> LoadedGraph:
        p = Path(path).resolve()
        if p not in self._loaded:
            self._loaded[p] = load_graph_file(p)
        return self._loaded[p]

    def index(self) -> dict[str, Path]:
        """Graph id -> file, for every file in the directory that loads."""
        if self._by_id is None:
            self._by_id = {}
            for p in self.files():
                loaded = self.load(p)
                if loaded.spec is not None:
                    self._by_id.setdefault(loaded.spec.id, p)
        return self._by_id

    def ids(self) -> list[str]:
        return sorted(self.index())

    def resolve(self, ref: str) -> GraphSpec:
        """The spec of graph `id` (an `@ref` suffix selects a git version: see
        issue 4; here only the working copy exists). Raises KeyError or GraphError."""
        graph_id, _, rev = ref.partition("@")
        if rev:
            raise GraphError(
                [
                    Diagnostic(
                        code="E209",
                        severity="error",
                        pointer="/graph",
                        message=f"graph {ref!r}: pinned versions need the git-backed catalogue",
                    )
                ]
            )
        path = self.index().get(graph_id)
        if path is None:
            raise KeyError(graph_id)
        loaded = self.load(path)
        if loaded.spec is None:
            raise GraphError(loaded.diagnostics)
        return loaded.spec
