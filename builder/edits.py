"""Builder gestures as `builder.document.GraphDocument` edits.

The canvas and forms speak in gestures ("connect these two nodes", "add a
collect step after `route`", "clear this field"); this module decides which
fields they touch, then edits the document so comments and formatting stay.
Every function raises `EditError` (a `DocumentError`) with a message for the
user when the gesture cannot apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builder.document import DocumentError, GraphDocument
from builder.forms import REMOVE

EditError = DocumentError

#: The field a drawn edge fills first, per kind, then the alternatives.
_EDGE_ORDER: dict[str, tuple[str, ...]] = {
    "say": ("next",),
    "collect": ("next", "on_fail"),
    "tool": ("next", "on_error"),
    "route": ("fallback",),
    "llm": ("on_error",),
    "branch": ("default",),
    "handoff": ("return_to",),
    "return": ("otherwise",),
}
#: Kinds that continue with `next` (a node added after another takes its place).
_HAS_NEXT = ("say", "collect", "tool")


def _kind(doc: GraphDocument, node_id: str) -> str:
    return str(doc.node(node_id).get("type"))


def edge_label_for(doc: GraphDocument, source: str, target: str) -> str:
    """The field a new edge `source -> target` drawn on the canvas fills: the
    kind's first empty edge field, else a new intent/exit/case, else (for
    single-exit kinds) `next` again, which moves the edge."""
    kind = _kind(doc, source)
    if kind in ("end", "escalate"):
        raise EditError(f"{kind} node {source!r} ends the call: it cannot lead anywhere")
    held = {e.label for e in doc.edges() if e.source == source}
    for label in _EDGE_ORDER.get(kind, ()):
        if label not in held:
            return label
    node = doc.node(source)
    if kind == "route":
        return f"intent:{_fresh(node.get('intents'), f'to_{target}')}"
    if kind == "llm":
        return f"exit:{_fresh(node.get('exits'), f'to_{target}')}"
    if kind == "branch":
        cases = node.get("cases")
        return f"case:{len(cases) if isinstance(cases, list) else 0}"
    return _EDGE_ORDER[kind][0]


def _fresh(existing: Any, base: str) -> str:
    names = set(existing) if isinstance(existing, Mapping) else set()
    name, i = base, 2
    while name in names:
        name, i = f"{base}_{i}", i + 1
    return name


def connect(doc: GraphDocument, source: str, target: str) -> str:
    """Connect `source` to `target` as drawn on the canvas; returns the label used."""
    label = edge_label_for(doc, source, target)
    doc.connect(source, label, target)
    return label


def delete_edge(doc: GraphDocument, source: str, label: str) -> None:
    """Remove the field holding edge `label` of `source` (validation then shows
    the missing target when the field was required)."""
    doc.disconnect(source, label)


def delete_node(doc: GraphDocument, node_id: str) -> None:
    """Remove a node; edges into it dangle until reconnected (validation says where)."""
    doc.remove_node(node_id)


def add_node(
    doc: GraphDocument,
    node_id: str,
    kind: str,
    *,
    after: str | None = None,
    position: tuple[float, float] | None = None,
) -> None:
    """Add an empty node of `kind` (its required fields left for the form).

    With `after`, the node is inserted on `after`'s main edge (`next`, else its
    first edge): `after` now leads to the new node and, for kinds that continue
    with `next`, the new node leads where `after` led."""
    fields: dict[str, Any] = {}
    old_target: str | None = None
    label: str | None = None
    if after is not None:
        edges = [e for e in doc.edges() if e.source == after]
        main = next((e for e in edges if e.label == "next"), edges[0] if edges else None)
        if main is not None:
            label, old_target = main.label, main.target
            if kind in _HAS_NEXT:
                fields["next"] = old_target
    doc.add_node(node_id, kind, fields, after=after, position=position)
    if after is not None:
        if label is not None:
            doc.connect(after, label, node_id)
        elif _kind(doc, after) not in ("end", "escalate"):
            connect(doc, after, node_id)


def update_node(doc: GraphDocument, node_id: str, changes: Mapping[str, Any]) -> None:
    """Apply form changes to a node (`REMOVE` clears a field)."""
    doc.update_node(node_id, {k: None if v is REMOVE else v for k, v in changes.items()})


def update_settings(doc: GraphDocument, changes: Mapping[str, Any]) -> None:
    """Apply form changes to graph-level settings (`REMOVE` clears a setting)."""
    for key, value in changes.items():
        doc.set_setting(key, None if value is REMOVE else value)


def rename_node(doc: GraphDocument, old_id: str, new_id: str) -> None:
    """Rename a node and every reference to it."""
    doc.rename_node(old_id, new_id)


def set_layout(doc: GraphDocument, positions: Mapping[str, Mapping[str, float]]) -> None:
    """Store canvas positions ({id: {x, y}}) of the document's nodes in `layout`."""
    known = set(doc.node_ids())
    doc.set_positions({k: (p["x"], p["y"]) for k, p in positions.items() if k in known})
