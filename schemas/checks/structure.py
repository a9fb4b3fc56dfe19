"""Graph-shape checks on the networkx view of a spec: edge targets (E201, E210),
reachability (W202), dead ends (E203), traps without a terminal (E204) and loops
that never wait for the caller (E205)."""

from __future__ import annotations

import networkx as nx

from schemas.checks._report import Reporter, field_path, names, node_pointer, suggest
from schemas.source import pointer
from schemas.spec import TERMINAL_KINDS, WAITING_KINDS, GraphSpec, edge_pointer, node_targets

#: Virtual node of `graph_of` whose edges are the global intents' gotos; no node
#: may use this id (node ids are identifiers, `*` is not allowed in them).
GLOBAL_SOURCE = "*global*"


def graph_of(spec: GraphSpec) -> nx.MultiDiGraph:
    """The spec as a multigraph.

    Nodes are node ids with attribute `kind` (the node type); each edge is keyed
    and labelled (`label`) by the field holding it, as in `schemas.spec.node_targets`.
    When a global intent has a `goto` to an existing node, the virtual node
    `GLOBAL_SOURCE` (kind `global`) gets an edge labelled `global:<intent>` to it.
    Edges to ids that are not nodes are left out (E201 reports them).
    """
    g = nx.MultiDiGraph(id=spec.id)
    for node_id, node in spec.nodes.items():
        g.add_node(node_id, kind=node.type)
    for node_id, node in spec.nodes.items():
        for label, target in node_targets(node).items():
            if target in spec.nodes:
                g.add_edge(node_id, target, key=label, label=label)
    for name, intent in spec.global_intents.items():
        if intent.goto is not None and intent.goto in spec.nodes:
            g.add_node(GLOBAL_SOURCE, kind="global")
            label = f"global:{name}"
            g.add_edge(GLOBAL_SOURCE, intent.goto, key=label, label=label)
    return g


def check_targets(spec: GraphSpec, rep: Reporter) -> None:
    """E201 for every edge naming no node, E210 when `start` names no node."""
    for node_id, node in spec.nodes.items():
        for label, target in node_targets(node).items():
            if target not in spec.nodes:
                where = edge_pointer(label)
                rep.add(
                    "E201",
                    f"node {node_id!r} sends {field_path(where)!r} to {target!r}, which is "
                    f"not a node{suggest(target, spec.nodes)}",
                    node_pointer(node_id, where),
                    node=node_id,
                )
    for name, intent in spec.global_intents.items():
        if intent.goto is not None and intent.goto not in spec.nodes:
            rep.add(
                "E201",
                f"global intent {name!r} goes to {intent.goto!r}, which is not a node"
                f"{suggest(intent.goto, spec.nodes)}",
                pointer("global_intents", name, "goto"),
            )
    if spec.start not in spec.nodes:
        rep.add(
            "E210",
            f"'start' is {spec.start!r}, which is not a node; set it to the node the call "
            f"begins with{suggest(spec.start, spec.nodes)}",
            "/start",
        )


def reachable(spec: GraphSpec, g: nx.MultiDiGraph) -> set[str] | None:
    """Nodes reachable from `start` or a global intent's goto; None when `start`
    names no node (reachability is then unknown)."""
    if spec.start not in spec.nodes:
        return None
    seen: set[str] = {spec.start, *nx.descendants(g, spec.start)}
    if GLOBAL_SOURCE in g:
        seen |= nx.descendants(g, GLOBAL_SOURCE)
    seen.discard(GLOBAL_SOURCE)
    return seen


def check_unreachable(spec: GraphSpec, reach: set[str], rep: Reporter) -> None:
    """W202 for every node outside `reach`."""
    for node_id in spec.nodes:
        if node_id not in reach:
            rep.at_node(
                "W202",
                f"node {node_id!r} can never be reached from start {spec.start!r} or a global "
                "intent; send an edge to it from another node, or delete it",
                node_id,
            )


def check_dead_ends(spec: GraphSpec, rep: Reporter) -> None:
    """E203 for every non-terminal node that declares no outgoing edge."""
    for node_id, node in spec.nodes.items():
        if node.type in TERMINAL_KINDS or node_targets(node):
            continue
        hint = (
            "add an exit (exits: {NAME: {description: ..., next: NODE}}) or 'on_error'"
            if node.type == "llm"
            else "give it an edge to the next node"
        )
        rep.at_node(
            "E203",
            f"{node.type} node {node_id!r} has no outgoing edge, so the call can never leave "
            f"it; {hint}",
            node_id,
        )


def flow_graph(spec: GraphSpec, g: nx.MultiDiGraph) -> nx.DiGraph:
    """Where a call can go next from each node: the declared edges plus, from every
    waiting node, each global intent's goto (global intents are checked on every
    caller turn)."""
    fg = nx.DiGraph()
    fg.add_nodes_from(spec.nodes)
    fg.add_edges_from((u, v) for u, v in g.edges() if u != GLOBAL_SOURCE)
    gotos = list(g.successors(GLOBAL_SOURCE)) if GLOBAL_SOURCE in g else []
    for node_id, node in spec.nodes.items():
        if node.type in WAITING_KINDS:
            fg.add_edges_from((node_id, target) for target in gotos)
    return fg


def check_traps(spec: GraphSpec, g: nx.MultiDiGraph, reach: set[str] | None, rep: Reporter) -> None:
    """E204 once per trap: a closed set of reachable nodes (a strongly connected
    component with no way out) from which no terminal node can be reached.

    Single nodes without any valid edge are left to E201/E203.
    """
    fg = flow_graph(spec, g)
    terminals = [n for n, node in spec.nodes.items() if node.type in TERMINAL_KINDS]
    can_finish: set[str] = set(terminals)
    for t in terminals:
        can_finish |= nx.ancestors(fg, t)
    scope = reach if reach is not None else set(spec.nodes)
    trapped = scope - can_finish
    if not trapped:
        return
    order = {n: i for i, n in enumerate(spec.nodes)}
    sub = fg.subgraph(trapped)
    cond = nx.condensation(sub)
    for comp in cond.nodes:
        if cond.out_degree(comp) != 0:
            continue
        members = sorted(cond.nodes[comp]["members"], key=order.__getitem__)
        first = members[0]
        if len(members) == 1 and fg.out_degree(first) == 0:
            continue
        feeders = sorted(nx.ancestors(sub, first) - set(members), key=order.__getitem__)
        loop = f" (nor from {names(members[1:])}, in the same loop)" if members[1:] else ""
        verb = "leads" if len(feeders) == 1 else "lead"
        lead = f"; {names(feeders)} {verb} only into it" if feeders else ""
        rep.at_node(
            "E204",
            f"no end, escalate or handoff node can be reached from node {first!r}{loop}, so "
            f"the call can never finish{lead}; give the loop an edge towards a terminal node",
            first,
        )


def check_spin_loops(spec: GraphSpec, g: nx.MultiDiGraph, rep: Reporter) -> None:
    """E205 once per strongly connected group of non-waiting nodes that forms a
    loop (including a node sending an edge to itself)."""
    order = {n: i for i, n in enumerate(spec.nodes)}
    busy = {n: None for n, node in spec.nodes.items() if node.type not in WAITING_KINDS}
    # Built edge by edge: copying a filtered subgraph view costs several times more.
    sub = nx.DiGraph()
    sub.add_nodes_from(busy)  # in file order, as the view gave them
    sub.add_edges_from((u, v) for u, v in g.edges() if u in busy and v in busy)
    for scc in nx.strongly_connected_components(sub):
        first = min(scc, key=order.__getitem__)
        if len(scc) == 1 and not sub.has_edge(first, first):
            continue
        cycle = _cycle_through(sub.subgraph(scc), first)
        path = " -> ".join(repr(n) for n in [*cycle, first])
        rep.at_node(
            "E205",
            f"the loop {path} never waits for the caller (no collect, route or llm node), "
            "so the call would spin forever; add a waiting node to the loop or a way out "
            "of it",
            first,
        )


def _cycle_through(scc: nx.DiGraph, first: str) -> list[str]:
    """Shortest cycle through `first` inside its strongly connected component."""
    if scc.has_edge(first, first):
        return [first]
    paths = [nx.shortest_path(scc, succ, first) for succ in scc.successors(first)]
    return [first, *min(paths, key=len)[:-1]]
