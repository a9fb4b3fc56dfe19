"""Slot-filling settings of collect nodes: a `choice` without choices (E214) and
no `on_fail` for when every attempt fails (W215)."""

from __future__ import annotations

from schemas.checks._report import Reporter, node_pointer
from schemas.spec import CollectNode, GraphSpec


def check_collects(spec: GraphSpec, rep: Reporter) -> None:
    """E214 for a `choice` collect without choices; W215 for a collect without
    `on_fail`."""
    for node_id, node in spec.nodes.items():
        if not isinstance(node, CollectNode):
            continue
        if node.kind == "choice" and not node.choices:
            rep.add(
                "E214",
                f"collect node {node_id!r} asks for a choice but lists no 'choices'; add "
                "choices: [...] with the accepted answers",
                node_pointer(node_id, "/kind"),
                node=node_id,
            )
        if node.on_fail is None:
            rep.at_node(
                "W215",
                f"collect node {node_id!r} has no 'on_fail': after {node.max_attempts} failed "
                f"attempts the agent says the fallback line and the call ends as failed; add "
                f"on_fail: NODE (for example an escalate node) to handle it",
                node_id,
            )
