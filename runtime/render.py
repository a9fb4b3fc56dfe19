"""Draw a graph spec as Mermaid or Graphviz DOT text."""

from __future__ import annotations

import json

from schemas.spec import GraphSpec, HandoffNode, node_targets

SHAPES_MERMAID = {
    "say": ('["', '"]'),
    "collect": ('[/"', '"/]'),
    "route": ('{"', '"}'),
    "llm": ('(["', '"])'),
    "tool": ('[["', '"]]'),
    "branch": ('{{"', '"}}'),
    "handoff": ('>"', '"]'),
    "escalate": ('(("', '"))'),
    "end": ('((("', '")))'),
    "return": ('[\\"', '"/]'),
}
SHAPES_DOT = {
    "say": "box",
    "collect": "parallelogram",
    "route": "diamond",
    "llm": "ellipse",
    "tool": "box3d",
    "branch": "hexagon",
    "handoff": "cds",
    "escalate": "doublecircle",
    "end": "doublecircle",
    "return": "invhouse",
}


def _mid(node_id: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in node_id)


def _mlabel(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(spec: GraphSpec) -> str:
    """A `flowchart TD` with one shape per node kind and labelled edges."""
    lines = ["flowchart TD", f"  start((start)) --> {_mid(spec.start)}"]
    for node_id, node in spec.nodes.items():
        left, right = SHAPES_MERMAID[node.type]
        lines.append(f"  {_mid(node_id)}{left}{_mlabel(node_id)}<br/>{node.type}{right}")
    for node_id, node in spec.nodes.items():
        for label, target in node_targets(node).items():
            if target in spec.nodes:
                lines.append(f"  {_mid(node_id)} -->|{_mlabel(label)}| {_mid(target)}")
        if isinstance(node, HandoffNode):
            gid = "g_" + _mid(node.graph)
            lines.append(f'  {gid}[["agent {_mlabel(node.graph)}"]]')
            lines.append(f"  {_mid(node_id)} -.->|handoff| {gid}")
    for name, gi in spec.global_intents.items():
        if gi.goto and gi.goto in spec.nodes:
            lines.append(f"  any((any turn)) -.->|{_mlabel(name)}| {_mid(gi.goto)}")
    return "\n".join(lines) + "\n"


def to_dot(spec: GraphSpec) -> str:
    """A Graphviz digraph with one shape per node kind and labelled edges."""
    q = json.dumps
    lines = [
        f"digraph {q(spec.id)} {{",
        "  rankdir=TB;",
        '  "__start__" [shape=point];',
        f'  "__start__" -> {q(spec.start)};',
    ]
    for node_id, node in spec.nodes.items():
        lines.append(
            f"  {q(node_id)} [shape={SHAPES_DOT[node.type]}, "
            f"label={q(node_id + chr(10) + node.type)}];"
        )
    for node_id, node in spec.nodes.items():
        for label, target in node_targets(node).items():
            lines.append(f"  {q(node_id)} -> {q(target)} [label={q(label)}];")
        if isinstance(node, HandoffNode):
            lines.append(f"  {q('agent:' + node.graph)} [shape=component];")
            lines.append(
                f'  {q(node_id)} -> {q("agent:" + node.graph)} [style=dashed, label="handoff"];'
            )
    for name, gi in spec.global_intents.items():
        if gi.goto:
            lines.append(f'  "__any__" -> {q(gi.goto)} [style=dotted, label={q(name)}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
