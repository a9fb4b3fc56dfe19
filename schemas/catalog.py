"""Find graphs by id in a graphs directory (for handoffs and the CLI).

A graph's id is the `id` field inside the file, not its file name. Files are
loaded lazily and once. Names and refs coming from graph files or requests are
never used as paths: only files found by listing the directory are read, so an
id like `../../etc/passwd` can only fail to match. A reference `id@ref` reads
the graph as committed at a git ref (`runtime.gitrefs`), again by listing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from runtime import gitrefs
from schemas.diagnostics import Diagnostic, GraphError
from schemas.loader import LoadedGraph, load_graph_file, load_graph_text
from schemas.spec import GraphSpec, PinnedGraphSpec

GRAPH_SUFFIXES = (".yaml", ".yml", ".json")
#: Files of a graphs directory that declare tools (see `tools.config`), not graphs.
TOOL_FILE_NAMES = ("tools.yaml", "tools.yml")


def default_graphs_dir() -> Path:
    return Path(os.environ.get("SWITCHBOARD_GRAPHS_DIR", "graphs"))


class GraphCatalog:
    """The graph files of one directory (not recursive), indexed by graph id."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._by_id: dict[str, Path] | None = None
        self._loaded: dict[Path, LoadedGraph] = {}
        self._pinned: dict[tuple[str, str], PinnedGraphSpec] = {}

    def files(self) -> list[Path]:
        """The graph files directly in the directory; a symlink counts only when
        it points to a file in the same directory (a link out is never read)."""
        if not self.directory.is_dir():
            return []
        inside = self.directory.resolve()
        return sorted(
            p
            for p in self.directory.iterdir()
            if p.is_file()
            and p.suffix in GRAPH_SUFFIXES
            and not p.name.startswith(".")
            and p.name not in TOOL_FILE_NAMES
            and (not p.is_symlink() or p.resolve().parent == inside)
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
        """The spec of graph `id`, or of `id@gitref` as it was at that git ref (a
        `PinnedGraphSpec`). Raises KeyError when no graph has the id, GraphError
        when its file is invalid or the version cannot be read."""
        graph_id, _, rev = ref.partition("@")
        if rev:
            return self.pinned(graph_id, rev)
        path = self.index().get(graph_id)
        if path is None:
            raise KeyError(graph_id)
        loaded = self.load(path)
        if loaded.spec is None:
            raise GraphError(loaded.diagnostics)
        return loaded.spec

    def pinned(self, graph_id: str, rev: str) -> PinnedGraphSpec:
        """Graph `graph_id` as committed at git ref `rev` in the repository holding
        this directory: the file (in this directory at that commit) whose `id` is
        `graph_id`. Loaded once per (id, ref). Blocking: runs `git`.

        Raises GraphError (E209) when the directory is not in a git repository,
        the ref is unknown, or no graph has that id at that ref; GraphError with
        the file's own diagnostics when that version is invalid."""
        key = (graph_id, rev)
        if key not in self._pinned:
            self._pinned[key] = self._load_pinned(graph_id, rev)
        return self._pinned[key]

    def _load_pinned(self, graph_id: str, rev: str) -> PinnedGraphSpec:
        name = f"{graph_id}@{rev}"
        try:
            snap = gitrefs.snapshot(self.directory, rev, suffixes=GRAPH_SUFFIXES)
        except gitrefs.GitRefError as exc:
            raise GraphError([_pinned_error(f"graph {name!r}: {exc}")]) from None
        # A file named after the id is the likely one; every file is still checked.
        files = sorted(snap.files, key=lambda f: f.name.rsplit(".", 1)[0] != graph_id)
        for f in files:
            loaded = load_graph_text(f.data, file=f"{f.path}@{rev}")
            found = loaded.spec.id if loaded.spec is not None else _document_id(loaded.document)
            if found != graph_id:
                continue
            if loaded.spec is None:
                raise GraphError(loaded.diagnostics)
            data = loaded.spec.model_dump(by_alias=True)
            return PinnedGraphSpec.model_validate(
                {**data, "ref": rev, "commit": snap.commit, "path": f.path}
            )
        where = snap.prefix or "the repository root"
        raise GraphError(
            [
                _pinned_error(
                    f"graph {name!r}: no graph file in {where} has id {graph_id!r} at {rev} "
                    f"(commit {snap.commit[:12]}, {len(snap.files)} graph file(s) there)"
                )
            ]
        )


def _document_id(document: Any) -> Any:
    return document.get("id") if isinstance(document, dict) else None


def _pinned_error(message: str) -> Diagnostic:
    return Diagnostic(code="E209", severity="error", pointer="/graph", message=message)
