"""What changed between two versions of a graph, in the graph's own terms.

Nodes added, removed and changed field by field; edges (by label, as in
`schemas.spec.node_targets`) added and removed; graph-level settings changed;
nodes moved on the canvas. Works on the plain documents, so a version that
does not validate (a draft) can still be compared; only text that does not
parse as a mapping is refused (`DiffError`, with the loader's diagnostics).

API: `diff_graphs(old, new) -> GraphDiff` on plain mappings (None for a missing
version), `diff_texts(old_text, new_text)`; `GraphDiff.lines()` for a readable
list, `GraphDiff.to_json()` for the canvas (`highlights`: node id -> added,
removed or changed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from builder.document import Edge, edges_of
from schemas.diagnostics import Diagnostic
from schemas.parsing import parse_document

NodeStatus = Literal["added", "removed", "changed"]
_NOT_SETTINGS = ("nodes", "layout")


class DiffError(Exception):
    """A version's text cannot be read as a graph document."""

    def __init__(self, message: str, diagnostics: list[Diagnostic]):
        super().__init__(message)
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: dotted path (`prompt`, `intents.book.examples`,
    `cases.0.next`), old and new value (None when absent)."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class NodeChange:
    node_id: str
    status: NodeStatus
    kind: str | None
    fields: tuple[FieldChange, ...] = ()


@dataclass
class GraphDiff:
    """Every semantic difference between two versions (see the module doc)."""

    nodes: list[NodeChange] = field(default_factory=list)
    edges_added: list[Edge] = field(default_factory=list)
    edges_removed: list[Edge] = field(default_factory=list)
    settings: list[FieldChange] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)  # nodes placed elsewhere on the canvas

    @property
    def empty(self) -> bool:
        """True when nothing but formatting or comments changed."""
        return not (
            self.nodes or self.edges_added or self.edges_removed or self.settings or self.moved
        )

    def by_status(self, status: NodeStatus) -> list[NodeChange]:
        return [n for n in self.nodes if n.status == status]

    @property
    def highlights(self) -> dict[str, NodeStatus]:
        """Node id -> added/removed/changed, for colouring the canvas."""
        return {n.node_id: n.status for n in self.nodes}

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form of the diff."""

        def edge(e: Edge) -> dict[str, str]:
            return {"source": e.source, "label": e.label, "target": e.target}

        def change(c: FieldChange) -> dict[str, Any]:
            return {"path": c.path, "old": c.old, "new": c.new}

        return {
            "empty": self.empty,
            "nodes": {
                status: [
                    {"id": n.node_id, "type": n.kind, "fields": [change(c) for c in n.fields]}
                    for n in self.by_status(status)
                ]
                for status in ("added", "removed", "changed")
            },
            "edges": {
                "added": [edge(e) for e in self.edges_added],
                "removed": [edge(e) for e in self.edges_removed],
            },
            "settings": [change(c) for c in self.settings],
            "moved": list(self.moved),
            "highlights": dict(self.highlights),
        }

    def lines(self) -> list[str]:
        """One readable line per change, nodes first."""
        if self.empty:
            return ["no changes to the graph"]
        out = []
        for n in self.by_status("added"):
            out.append(f"+ node {n.node_id} ({n.kind or 'no type'}) added")
        for n in self.by_status("removed"):
            out.append(f"- node {n.node_id} ({n.kind or 'no type'}) removed")
        for n in self.by_status("changed"):
            out.append(f"~ node {n.node_id} changed")
            out += [f"    {_describe(c)}" for c in n.fields]
        out += [f"+ edge {e.source} --{e.label}--> {e.target}" for e in self.edges_added]
        out += [f"- edge {e.source} --{e.label}--> {e.target}" for e in self.edges_removed]
        out += [f"~ setting {_describe(c)}" for c in self.settings]
        if self.moved:
            out.append(f"~ layout: moved {', '.join(self.moved)}")
        return out


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(c: FieldChange) -> str:
    if c.old is None:
        return f"{c.path}: added {_show(c.new)}"
    if c.new is None:
        return f"{c.path}: removed (was {_show(c.old)})"
    if isinstance(c.old, list) and isinstance(c.new, list):
        added = [v for v in c.new if v not in c.old]
        removed = [v for v in c.old if v not in c.new]
        if added or removed:
            parts = [f"+{_show(v)}" for v in added] + [f"-{_show(v)}" for v in removed]
            return f"{c.path}: {' '.join(parts)}"
    return f"{c.path}: {_show(c.old)} -> {_show(c.new)}"


def field_changes(old: Any, new: Any, prefix: str = "") -> list[FieldChange]:
    """Differences between two plain values, walking into mappings (lists of
    mappings are walked by position; other lists compare whole)."""
    if old == new:
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[FieldChange] = []
        for key in [*old, *(k for k in new if k not in old)]:
            out += field_changes(old.get(key), new.get(key), _join(prefix, key))
        return out
    both_lists = isinstance(old, list) and isinstance(new, list)
    if both_lists and any(isinstance(v, Mapping) for v in [*old, *new]):
        out = []
        for i in range(max(len(old), len(new))):
            a = old[i] if i < len(old) else None
            b = new[i] if i < len(new) else None
            out += field_changes(a, b, _join(prefix, i))
        return out
    return [FieldChange(prefix or "(document)", old, new)]


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def diff_graphs(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> GraphDiff:
    """The semantic diff from plain graph mapping `old` to `new` (None: absent)."""
    old, new = old or {}, new or {}
    out = GraphDiff()
    old_nodes, new_nodes = _mapping(old.get("nodes")), _mapping(new.get("nodes"))
    for node_id, node in new_nodes.items():
        kind = _mapping(node).get("type")
        kind = kind if isinstance(kind, str) else None
        if node_id not in old_nodes:
            out.nodes.append(NodeChange(node_id, "added", kind))
        elif old_nodes[node_id] != node:
            changes = field_changes(old_nodes[node_id], node)
            out.nodes.append(NodeChange(node_id, "changed", kind, tuple(changes)))
    for node_id, node in old_nodes.items():
        if node_id not in new_nodes:
            kind = _mapping(node).get("type")
            out.nodes.append(
                NodeChange(node_id, "removed", kind if isinstance(kind, str) else None)
            )
    old_edges, new_edges = edges_of(old), edges_of(new)
    out.edges_added = [e for e in new_edges if e not in old_edges]
    out.edges_removed = [e for e in old_edges if e not in new_edges]
    old_settings = {k: v for k, v in old.items() if k not in _NOT_SETTINGS}
    new_settings = {k: v for k, v in new.items() if k not in _NOT_SETTINGS}
    out.settings = field_changes(old_settings, new_settings)
    old_layout, new_layout = _mapping(old.get("layout")), _mapping(new.get("layout"))
    out.moved = [
        node_id
        for node_id in [*old_layout, *(k for k in new_layout if k not in old_layout)]
        if old_layout.get(node_id) != new_layout.get(node_id)
        and node_id in old_layout
        and node_id in new_layout
        and node_id in new_nodes
    ]
    return out


def parse_plain(text: str | None, file: str = "<string>") -> dict[str, Any] | None:
    """The plain mapping of a graph text (None for None); DiffError when it does
    not parse as a mapping."""
    if text is None:
        return None
    parsed = parse_document(text, file)
    if isinstance(parsed, Diagnostic):
        raise DiffError(f"{file}: line {parsed.line}: {parsed.message}", [parsed])
    return parsed.plain


def diff_texts(
    old_text: str | None, new_text: str | None, *, old_file: str = "old", new_file: str = "new"
) -> GraphDiff:
    """The semantic diff between two graph texts (None for a version where the
    file did not exist)."""
    return diff_graphs(parse_plain(old_text, old_file), parse_plain(new_text, new_file))
