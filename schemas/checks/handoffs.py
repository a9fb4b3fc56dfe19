"""Checks that need the graphs a handoff names, loaded: a version pinned to a git
ref that cannot be read (E209) and an `entry` that is not a node of the target
(E201).

Handing the call back needs no cross-graph check: the handing graph's own
`return_to` is an ordinary edge (E201, W202 and the variable checks cover it),
and a `return` node always has its `otherwise` edge for calls nobody handed
over. Variables across graphs are a contract, not inferred: the target sees its
own `variables`, the built-ins (`handoff_summary` among them) and what `carry`
passes when set, so a graph that reads a carried variable declares it under
`variables` with a default, and its own checks then accept the read.
"""

from __future__ import annotations

from collections.abc import Callable

from schemas.checks._report import Reporter, node_pointer, suggest
from schemas.diagnostics import GraphError
from schemas.spec import GraphSpec, HandoffNode

Resolver = Callable[[str], GraphSpec]


def check_handoff_targets(spec: GraphSpec, resolve: Resolver, rep: Reporter) -> None:
    """E209 for a handoff to `id@ref` whose version cannot be read; E201 for an
    `entry` that the target graph does not have. Targets that do not exist or
    whose working-copy file is invalid are left to E209 (names) and that file's
    own diagnostics."""
    for node_id, node in spec.nodes.items():
        if not isinstance(node, HandoffNode):
            continue
        try:
            target = resolve(node.graph)
        except KeyError:
            continue
        except GraphError as exc:
            if "@" in node.graph:
                first = exc.diagnostics[0] if exc.diagnostics else None
                reason = "invalid graph" if first is None else first.message
                if first is not None and first.file != "<string>":
                    reason = first.format()
                rep.add(
                    "E209",
                    f"handoff node {node_id!r} hands the call to {node.graph!r}, which cannot "
                    f"be loaded: {reason}",
                    node_pointer(node_id, "/graph"),
                    node=node_id,
                )
            continue
        if node.entry is not None and node.entry not in target.nodes:
            rep.add(
                "E201",
                f"handoff node {node_id!r} enters graph {node.graph!r} at {node.entry!r}, which "
                f"is not one of its nodes{suggest(node.entry, target.nodes)}",
                node_pointer(node_id, "/entry"),
                node=node_id,
            )
