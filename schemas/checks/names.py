"""Names that must exist outside the graph: tools (E208) and graphs handed off
to (E209)."""

from __future__ import annotations

from collections.abc import Collection

from schemas.checks._report import Reporter, node_pointer, suggest
from schemas.spec import GraphSpec, HandoffNode, LLMNode, ToolNode


def check_tools(spec: GraphSpec, tools: Collection[str], rep: Reporter) -> None:
    """E208 for a tool node's `tool` or an llm node's `tools[]` entry that is not in
    `tools`."""
    for node_id, node in spec.nodes.items():
        used: list[tuple[str, str]] = []
        if isinstance(node, ToolNode):
            used.append((node.tool, "/tool"))
        elif isinstance(node, LLMNode):
            used += [(name, f"/tools/{i}") for i, name in enumerate(node.tools)]
        for name, where in used:
            if name not in tools:
                rep.add(
                    "E208",
                    f"{node.type} node {node_id!r} uses tool {name!r}, which is not a "
                    f"registered tool{suggest(name, tools)}",
                    node_pointer(node_id, where),
                    node=node_id,
                )


def graph_ref(ref: str) -> str:
    """The graph id of a handoff target, without any `@version` suffix."""
    return ref.partition("@")[0]


def check_handoffs(spec: GraphSpec, graphs: Collection[str], rep: Reporter) -> None:
    """E209 for a handoff whose graph id (before any `@ref`) is not in `graphs`."""
    for node_id, node in spec.nodes.items():
        if isinstance(node, HandoffNode) and graph_ref(node.graph) not in graphs:
            target = graph_ref(node.graph)
            rep.add(
                "E209",
                f"handoff node {node_id!r} hands the call to graph {target!r}, which does not "
                f"exist{suggest(target, graphs)}",
                node_pointer(node_id, "/graph"),
                node=node_id,
            )
