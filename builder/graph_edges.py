"""Where a graph's edges live: which field of which node holds each edge.

Edge labels are those of `schemas.spec.node_targets`: `next`, `on_fail`,
`on_error`, `fallback`, `default`, `return_to`, `otherwise`, `intent:NAME`,
`exit:NAME`, `case:N`. `edges_of` reads them from any plain graph mapping
(tolerant of invalid graphs); `edge_holder`/`set_edge` find or create the
round-trip mapping and key that hold one edge, for edits that keep comments.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from builder.document_errors import DocumentError

#: Edge fields holding one target directly on the node.
DIRECT_EDGES = ("next", "on_fail", "on_error", "fallback", "default", "return_to", "otherwise")


@dataclass(frozen=True)
class Edge:
    """One edge: the node holding it, the field (label) and the target node id."""

    source: str
    label: str
    target: str


def edges_of(data: Any) -> list[Edge]:
    """Every node-to-node edge of a plain graph mapping, in file order; tolerant
    of invalid graphs (malformed parts are skipped)."""
    nodes = data.get("nodes") if isinstance(data, Mapping) else None
    if not isinstance(nodes, Mapping):
        return []
    out: list[Edge] = []
    for source, node in nodes.items():
        if isinstance(node, Mapping):
            out += [Edge(str(source), label, target) for label, target in node_edges(node)]
    return out


def node_edges(node: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(label, target) of every edge a node mapping holds, in field order."""
    for key, value in node.items():
        if key in DIRECT_EDGES and isinstance(value, str):
            yield key, value
        elif key in ("intents", "exits") and isinstance(value, Mapping):
            prefix = "intent" if key == "intents" else "exit"
            for name, item in value.items():
                if isinstance(item, Mapping) and isinstance(item.get("next"), str):
                    yield f"{prefix}:{name}", item["next"]
        elif key == "cases" and isinstance(value, list):
            for i, case in enumerate(value):
                if isinstance(case, Mapping) and isinstance(case.get("next"), str):
                    yield f"case:{i}", case["next"]


def edge_holder(node: CommentedMap, label: str, *, create: bool) -> tuple[Any, str]:
    """The round-trip mapping and key that hold edge `label` of `node`. With
    `create`, a missing intent/exit entry is made, and `case:N` with N = number
    of cases appends a case (its conditions still to be written).
    DocumentError when the node cannot hold such an edge."""
    kind, _, name = label.partition(":")
    if label in DIRECT_EDGES:
        return node, label
    if kind in ("intent", "exit") and name:
        field = "intents" if kind == "intent" else "exits"
        group = node.get(field)
        if group is None and create:
            node[field] = group = CommentedMap()
        if isinstance(group, CommentedMap):
            if name not in group and create:
                group[name] = CommentedMap()
            if isinstance(group.get(name), CommentedMap):
                return group[name], "next"
    if kind == "case" and name.isdigit():
        cases = node.get("cases")
        if cases is None and create:
            node["cases"] = cases = CommentedSeq()
        index = int(name)
        if isinstance(cases, CommentedSeq):
            if index == len(cases) and create:
                cases.append(CommentedMap([("when", CommentedSeq())]))
            if index < len(cases) and isinstance(cases[index], CommentedMap):
                return cases[index], "next"
    raise DocumentError(
        f"{label!r} is not an edge this node can hold (labels: {', '.join(DIRECT_EDGES)}, "
        "intent:NAME, exit:NAME, case:N)"
    )


def set_edge(node: CommentedMap, label: str, target: str, *, create: bool = False) -> None:
    """Point edge `label` of round-trip `node` at `target`."""
    holder, key = edge_holder(node, label, create=create)
    holder[key] = target
