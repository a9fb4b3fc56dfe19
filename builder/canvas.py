"""The graph document as a streamlit-flow canvas, and canvas edits back as changes.

The graph file is the source of truth; the canvas is a view built from the
plain (parsed) document, so a graph that fails its schema still shows. Edge
ids encode the field that holds the edge (`source|label`, labels as in
`schemas.spec.node_targets`), so a deleted edge maps back to one field; an edge
drawn on the canvas has a foreign id and maps to a new connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from streamlit_flow.elements import StreamlitFlowEdge, StreamlitFlowNode
from streamlit_flow.state import StreamlitFlowState

from schemas.diagnostics import Diagnostic

#: Fill colour per node kind (light, so the dark label text stays readable).
KIND_COLOURS: dict[str, str] = {
    "say": "#dbeafe",
    "collect": "#dcfce7",
    "route": "#fef3c7",
    "llm": "#ede9fe",
    "tool": "#cffafe",
    "branch": "#ffedd5",
    "handoff": "#fce7f3",
    "escalate": "#fee2e2",
    "end": "#e5e7eb",
    "return": "#f5f5f4",
}
UNKNOWN_KIND_COLOUR = "#ffffff"
#: Border colour per diff status (semantic diff highlighted on the canvas).
DIFF_COLOURS = {"added": "#16a34a", "removed": "#9ca3af", "changed": "#2563eb"}
ERROR_BORDER = "#dc2626"
WARNING_BORDER = "#d97706"
PATH_BORDER = "#7c3aed"

X_GAP = 175.0
Y_GAP = 100.0
EDGE_SEP = "|"


def edge_id(source: str, label: str) -> str:
    """The canvas id of the edge held by field `label` of node `source`."""
    return f"{source}{EDGE_SEP}{label}"


def parse_edge_id(value: str) -> tuple[str, str] | None:
    """(source, label) for an id made by `edge_id`, else None (a drawn edge)."""
    source, sep, label = value.partition(EDGE_SEP)
    return (source, label) if sep and source and label else None


def document_targets(node: Any) -> dict[str, str]:
    """Outgoing edges of a plain node mapping as {label: target}, in file order.

    Same labels as `schemas.spec.node_targets`, but tolerant of a node that is
    incomplete or invalid: a missing or non-string target is simply absent.
    """
    if not isinstance(node, Mapping):
        return {}
    out: dict[str, str] = {}

    def put(label: str, value: Any) -> None:
        if isinstance(value, str) and value:
            out[label] = value

    kind = node.get("type")
    if kind in ("say", "collect", "tool"):
        put("next", node.get("next"))
        if kind == "collect":
            put("on_fail", node.get("on_fail"))
        if kind == "tool":
            put("on_error", node.get("on_error"))
    elif kind == "route":
        for name, intent in _items(node.get("intents")):
            put(f"intent:{name}", intent.get("next") if isinstance(intent, Mapping) else None)
        put("fallback", node.get("fallback"))
    elif kind == "llm":
        for name, ex in _items(node.get("exits")):
            put(f"exit:{name}", ex.get("next") if isinstance(ex, Mapping) else None)
        put("on_error", node.get("on_error"))
    elif kind == "branch":
        cases = node.get("cases")
        for i, case in enumerate(cases if isinstance(cases, list) else []):
            put(f"case:{i}", case.get("next") if isinstance(case, Mapping) else None)
        put("default", node.get("default"))
    elif kind == "handoff":
        put("return_to", node.get("return_to"))
    elif kind == "return":
        put("otherwise", node.get("otherwise"))
    return out


def _items(value: Any) -> list[tuple[str, Any]]:
    return [(str(k), v) for k, v in value.items()] if isinstance(value, Mapping) else []


def edge_caption(node: Any, label: str) -> str:
    """What an edge shows on the canvas: intent/exit names, a branch case's
    conditions, `fallback`/`on_error`/...; a plain `next` shows nothing."""
    kind, _, name = label.partition(":")
    if label == "next":
        return ""
    if kind in ("intent", "exit"):
        return name
    if kind == "case" and isinstance(node, Mapping):
        cases = node.get("cases")
        if not isinstance(cases, list) or not name.isdigit() or int(name) >= len(cases):
            return label
        return _case_caption(cases[int(name)])
    return label


def _case_caption(case: Any) -> str:
    if not isinstance(case, Mapping) or not isinstance(case.get("when"), list):
        return "case"
    parts = []
    for cond in case["when"]:
        if not isinstance(cond, Mapping):
            continue
        op = cond.get("op", "eq")
        value = "" if op in ("exists", "missing") else f" {cond.get('value')!r}"
        parts.append(f"{cond.get('var')} {op}{value}")
    joiner = " or " if case.get("match") == "any" else " and "
    text = joiner.join(parts) or "case"
    return text if len(text) <= 40 else text[:37] + "..."


def graph_nodes(document: Any) -> dict[str, Any]:
    """The `nodes` mapping of a plain document ({} when absent or malformed)."""
    nodes = document.get("nodes") if isinstance(document, Mapping) else None
    return {str(k): v for k, v in nodes.items()} if isinstance(nodes, Mapping) else {}


def to_networkx(document: Any) -> nx.MultiDiGraph:
    """Nodes and edges of the document (edges to unknown nodes are left out)."""
    nodes = graph_nodes(document)
    g: nx.MultiDiGraph = nx.MultiDiGraph()
    g.add_nodes_from(nodes)
    for source, node in nodes.items():
        for label, target in document_targets(node).items():
            if target in nodes:
                g.add_edge(source, target, key=label)
    return g


def auto_layout(document: Any) -> dict[str, tuple[float, float]]:
    """Positions for every node: layers by distance from `start` (top to
    bottom), nodes of a layer side by side in file order; unreachable nodes
    form a last row. Deterministic for a given document."""
    nodes = list(graph_nodes(document))
    if not nodes:
        return {}
    g = to_networkx(document)
    start = document.get("start") if isinstance(document, Mapping) else None
    layers: list[list[str]] = []
    if start in g:
        layers = [sorted(layer, key=nodes.index) for layer in nx.bfs_layers(g, [start])]
    placed = {n for layer in layers for n in layer}
    rest = [n for n in nodes if n not in placed]
    if rest:
        layers.append(rest)
    out: dict[str, tuple[float, float]] = {}
    for row, layer in enumerate(layers):
        for col, node_id in enumerate(layer):
            out[node_id] = (col * X_GAP, row * Y_GAP)
    return out


def document_layout(document: Any) -> dict[str, tuple[float, float]]:
    """Positions from the document's `layout` section; nodes it misses (or all,
    when there is none) get `auto_layout` positions."""
    auto = auto_layout(document)
    saved = document.get("layout") if isinstance(document, Mapping) else None
    out = dict(auto)
    if isinstance(saved, Mapping):
        for node_id, pos in saved.items():
            if node_id in out and isinstance(pos, Mapping):
                x, y = pos.get("x"), pos.get("y")
                if isinstance(x, int | float) and isinstance(y, int | float):
                    out[node_id] = (float(x), float(y))
    return out


@dataclass(frozen=True)
class Overlay:
    """What the canvas highlights on top of the graph: diagnostics per node, a
    semantic diff (node id -> added/removed/changed), the path of a test call."""

    diagnostics: Sequence[Diagnostic] = ()
    diff: Mapping[str, str] = field(default_factory=dict)
    path: Sequence[str] = ()


def _node_label(node_id: str, node: Any, errors: int, warnings: int, status: str | None) -> str:
    kind = node.get("type") if isinstance(node, Mapping) else None
    lines = [f"**{node_id}**", f"*{kind or 'no type'}*"]
    badges = []
    if errors:
        badges.append(f"⛔ {errors} error{'s' if errors > 1 else ''}")
    if warnings:
        badges.append(f"⚠️ {warnings} warning{'s' if warnings > 1 else ''}")
    if status:
        badges.append(status)
    if badges:
        lines.append(" · ".join(badges))
    return "\n\n".join(lines)


def _node_style(kind: Any, errors: int, warnings: int, status: str | None, on_path: bool) -> dict:
    border = "1px solid #6b7280"
    if on_path:
        border = f"3px solid {PATH_BORDER}"
    if warnings:
        border = f"2px solid {WARNING_BORDER}"
    if errors:
        border = f"3px solid {ERROR_BORDER}"
    if status:
        dash = "dashed" if status == "removed" else "solid"
        border = f"3px {dash} {DIFF_COLOURS[status]}"
    style = {
        "background": KIND_COLOURS.get(str(kind), UNKNOWN_KIND_COLOUR),
        "border": border,
        "borderRadius": "8px",
        "padding": "4px 10px",
        "fontSize": "13px",
    }
    if status == "removed":
        style["opacity"] = "0.6"
    return style


def to_flow_state(
    document: Any,
    overlay: Overlay | None = None,
    *,
    removed: Mapping[str, Any] | None = None,
    positions: Mapping[str, tuple[float, float]] | None = None,
) -> StreamlitFlowState:
    """A fresh canvas state for the document: one node per graph node (coloured
    by kind, marked with its diagnostics and diff status) and one labelled edge
    per edge field. `removed` adds ghost nodes (from an older version) for a
    diff; `positions` overrides the document's layout (e.g. the live canvas)."""
    overlay = overlay or Overlay()
    nodes = graph_nodes(document)
    pos = dict(document_layout(document))
    if positions:
        kept = {k: v for k, v in positions.items() if k in nodes}
        pos.update(kept)
        for node_id in nodes:  # a node new to the canvas goes where no other node is
            if node_id not in kept:
                pos[node_id] = _free_spot(pos[node_id], [p for k, p in pos.items() if k != node_id])
    start = document.get("start") if isinstance(document, Mapping) else None
    errors: dict[str, int] = {}
    warnings: dict[str, int] = {}
    for d in overlay.diagnostics:
        if d.node:
            bucket = errors if d.severity == "error" else warnings
            bucket[d.node] = bucket.get(d.node, 0) + 1
    on_path = set(overlay.path)
    flow_nodes: list[StreamlitFlowNode] = []
    for node_id, node in nodes.items():
        kind = node.get("type") if isinstance(node, Mapping) else None
        status = overlay.diff.get(node_id)
        e, w = errors.get(node_id, 0), warnings.get(node_id, 0)
        flow_nodes.append(
            StreamlitFlowNode(
                id=node_id,
                pos=pos.get(node_id, (0.0, 0.0)),
                data={"content": _node_label(node_id, node, e, w, status), "kind": kind},
                node_type="input" if node_id == start else "default",
                source_position="bottom",
                target_position="top",
                selectable=True,
                connectable=True,
                deletable=True,
                style=_node_style(kind, e, w, status, node_id in on_path),
            )
        )
    ghost_y = max((p[1] for p in pos.values()), default=0.0) + Y_GAP * 1.2
    for i, (node_id, node) in enumerate((removed or {}).items()):
        if node_id in nodes:
            continue
        kind = node.get("type") if isinstance(node, Mapping) else None
        flow_nodes.append(
            StreamlitFlowNode(
                id=node_id,
                pos=(i * X_GAP, ghost_y),
                data={"content": _node_label(node_id, node, 0, 0, "removed"), "kind": kind},
                source_position="bottom",
                target_position="top",
                selectable=True,
                style=_node_style(kind, 0, 0, "removed", False),
            )
        )
    flow_edges: list[StreamlitFlowEdge] = []
    for source, node in nodes.items():
        for label, target in document_targets(node).items():
            if target not in nodes:
                continue
            red = label in ("on_error", "on_fail", "fallback", "default", "otherwise")
            flow_edges.append(
                StreamlitFlowEdge(
                    id=edge_id(source, label),
                    source=source,
                    target=target,
                    edge_type="smoothstep",
                    label=edge_caption(node, label),
                    label_show_bg=True,
                    marker_end={"type": "arrowclosed"},
                    deletable=True,
                    focusable=True,
                    animated=source in on_path and target in on_path,
                    style={"stroke": "#b45309" if red else "#374151"},
                )
            )
    return StreamlitFlowState(nodes=flow_nodes, edges=flow_edges)


def _free_spot(
    want: tuple[float, float], taken: Sequence[tuple[float, float]]
) -> tuple[float, float]:
    x, y = want
    while any(abs(x - tx) < X_GAP * 0.8 and abs(y - ty) < Y_GAP * 0.6 for tx, ty in taken):
        x += X_GAP
    return (x, y)


def flow_positions(state: StreamlitFlowState) -> dict[str, dict[str, float]]:
    """Node positions of a canvas state as a `layout` section (rounded)."""
    return {
        n.id: {"x": round(float(n.position["x"]), 1), "y": round(float(n.position["y"]), 1)}
        for n in state.nodes
    }


@dataclass(frozen=True)
class CanvasChanges:
    """Structural edits made on the canvas, relative to the document."""

    deleted_nodes: tuple[str, ...] = ()
    deleted_edges: tuple[tuple[str, str], ...] = ()
    new_edges: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.deleted_nodes or self.deleted_edges or self.new_edges)


def canvas_changes(
    document: Any, state: StreamlitFlowState, shown: StreamlitFlowState | None = None
) -> CanvasChanges:
    """Compare a canvas state returned by the component with the document.

    Deleted nodes are graph nodes missing from the canvas; deleted edges are
    edge fields whose canvas edge is gone (edges of deleted nodes excluded);
    new edges are canvas edges with a foreign id, as (source, target). A
    reconnected edge shows up as one deleted and one new edge.

    With `shown` (the state the component was given), only what the user
    changed since is reported: a node or edge the canvas was never shown (the
    document moved on while the value was in flight) is not "deleted", and an
    edge drawn before is not drawn again."""
    nodes = graph_nodes(document)
    on_canvas = {n.id for n in state.nodes}
    was_shown = {n.id for n in shown.nodes} if shown is not None else set(nodes)
    shown_edges = {e.id for e in shown.edges} if shown is not None else None
    deleted_nodes = tuple(n for n in nodes if n not in on_canvas and n in was_shown)
    edge_ids = {e.id for e in state.edges}
    deleted_edges = tuple(
        (source, label)
        for source, node in nodes.items()
        if source in on_canvas
        for label, target in document_targets(node).items()
        if target in nodes
        and target in on_canvas
        and edge_id(source, label) not in edge_ids
        and (shown_edges is None or edge_id(source, label) in shown_edges)
    )
    new_edges = tuple(
        (e.source, e.target)
        for e in state.edges
        if parse_edge_id(e.id) is None
        and e.source in nodes
        and e.target in nodes
        and (shown_edges is None or e.id not in shown_edges)
    )
    return CanvasChanges(deleted_nodes, deleted_edges, new_edges)


def node_ids(state: StreamlitFlowState) -> Iterable[str]:
    """Ids of the nodes on a canvas state."""
    return (n.id for n in state.nodes)


def canvas_layout_changes(
    document: Any, state: StreamlitFlowState, *, tolerance: float = 0.5
) -> dict[str, dict[str, float]]:
    """`layout_changes` for the node positions of a canvas state."""
    return layout_changes(document, flow_positions(state), tolerance=tolerance)


def layout_changes(
    document: Any, positions: Mapping[str, Mapping[str, float]], *, tolerance: float = 0.5
) -> dict[str, dict[str, float]]:
    """Positions to write to the `layout` section: every node's canvas position
    ({id: {x, y}}) when any node sits elsewhere than the document places it,
    else {} (a graph nobody moved keeps its file unchanged)."""
    nodes = graph_nodes(document)
    placed = document_layout(document)
    current = {k: {"x": v["x"], "y": v["y"]} for k, v in positions.items() if k in nodes}
    moved = any(
        abs(p["x"] - placed[k][0]) > tolerance or abs(p["y"] - placed[k][1]) > tolerance
        for k, p in current.items()
        if k in placed
    )
    return current if moved else {}
