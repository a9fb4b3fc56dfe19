"""The graph a recorded call ran, to draw its path on the canvas.

A call records its root agent's graph id, the SHA-256 of the file content it
ran and, when the file was committed, the git commit. The graph is looked up
in the graphs directory by id: when the file there still has that content it
is drawn as is; when it has changed, the version at the recorded commit is
read from git when possible, otherwise the current file is drawn with a note
that it differs. Agents reached by a handoff record no version of their own,
so their current file is used. Whatever happens, the visited nodes missing
from the drawn graph are named, so the path is never lost.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder import versions
from builder.document import DocumentError, GraphDocument
from runtime import gitrefs
from schemas.catalog import GraphCatalog

log = logging.getLogger("switchboard.dashboard.graph")


@dataclass(frozen=True)
class CallGraph:
    """One agent's graph for a call: the plain document (None when no file
    could be found or read), where it came from, and notes for the reader
    (changed file, missing nodes)."""

    agent: str
    document: dict[str, Any] | None
    source: str
    notes: list[str] = field(default_factory=list)
    path: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """Visited nodes that the drawn graph does not have."""
        nodes = (self.document or {}).get("nodes") or {}
        return [n for n in dict.fromkeys(self.path) if n not in nodes]


def _hash(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


def _document(text: str, file: str) -> dict[str, Any] | None:
    try:
        data = GraphDocument.from_text(text, file).data
    except DocumentError as exc:
        log.warning("%s cannot be read as a graph: %s", file, exc)
        return None
    return data if isinstance(data, dict) else None


def graph_index(graphs_dir: Path) -> dict[str, Path]:
    """Graph id -> file for the graphs that load in `graphs_dir` ({} when the
    directory does not exist)."""
    if not graphs_dir.is_dir():
        return {}
    return GraphCatalog(graphs_dir).index()


def call_graph(
    index: dict[str, Path],
    agent: str,
    path: Sequence[str],
    *,
    content_hash: str | None = None,
    git_commit: str | None = None,
) -> CallGraph:
    """The graph of `agent` as the call ran it, best effort (see module docstring);
    `path` is the call's visited nodes in this agent, in order."""
    file = index.get(agent)
    visited = list(path)
    if file is None:
        note = f"No graph file for agent {agent!r} in the graphs directory now; the path is listed."
        return CallGraph(agent, None, "none", [note], visited)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        return CallGraph(agent, None, "none", [f"{file.name} cannot be read: {exc}"], visited)
    notes: list[str] = []
    source = f"{file.name} (current)"
    document = _document(raw.decode("utf-8", "replace"), str(file))
    if content_hash is None:
        notes.append(f"The call recorded no version of {agent!r}; drawn as {file.name} is now.")
    elif _hash(raw) != content_hash:
        old = _at_commit(file, git_commit, content_hash)
        if old is not None:
            document, source = old, f"{file.name} at commit {git_commit and git_commit[:10]}"
            notes.append(
                f"{file.name} has changed since this call; drawn as it was at the call "
                f"(commit {git_commit and git_commit[:10]})."
            )
        else:
            notes.append(
                f"{file.name} has changed since this call (content {content_hash[:10]} then, "
                f"{_hash(raw)[:10]} now) and that version is not in git; drawn as it is now, "
                "so the highlighted path may not match."
            )
    result = CallGraph(agent, document, source, notes, visited)
    if document is None:
        result.notes.append(f"{file.name} cannot be parsed; the path is listed.")
    elif result.missing:
        result.notes.append(
            "Visited nodes not in the drawn graph: " + ", ".join(result.missing) + "."
        )
    return result


def _at_commit(file: Path, commit: str | None, content_hash: str) -> dict[str, Any] | None:
    if not commit:
        return None
    try:
        text = versions.show_file(file, commit)
    except (versions.VersionError, gitrefs.GitRefError, OSError) as exc:
        log.info("%s at %s is not available: %s", file, commit, exc)
        return None
    if _hash(text.encode("utf-8")) != content_hash:
        return None
    return _document(text, f"{file}@{commit[:10]}")


def paths_by_agent(visits: Sequence[Any]) -> dict[str, list[str]]:
    """The visited nodes per agent, in call order (agents in order of first visit)."""
    out: dict[str, list[str]] = {}
    for visit in visits:
        out.setdefault(visit.agent, []).append(visit.node)
    return out
