"""Static checks of a graph spec, run before anything executes.

Each finding is a `Diagnostic` with a stable code; `E` codes are errors, `W`
codes warnings:

- E201 an edge (`next`, `on_fail`, `on_error`, intent/case/exit `next`, `fallback`,
  `default`, global intent `goto`, `return_to`, `otherwise`) names a node that does
  not exist, or a handoff's `entry` is not a node of the graph it hands off to
- W202 a node cannot be reached from `start` or from any global intent's goto
- E203 a non-terminal node has no outgoing edge (dead end)
- E204 no end, escalate or handoff node can be reached from a node (a trap)
- E205 a loop of nodes that never waits for the caller (no collect, route or llm)
- E206 a template variable is read before any path can set it
- W207 a template variable is read where only some paths set it
- E208 a tool node or llm node uses a tool that is not registered
- E209 a handoff names a graph that does not exist
- E210 `start` names a node that does not exist
- W212 a route or global intent has fewer than 2 example phrases
- W213 the same example phrase belongs to two intents
- E214 a `choice` collect node lists no `choices`
- W215 a collect node has no `on_fail`: when every attempt fails the call ends as failed
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from schemas.checks._report import Reporter
from schemas.checks.handoffs import check_handoff_targets
from schemas.checks.intents import check_intents
from schemas.checks.names import check_handoffs, check_tools
from schemas.checks.slots import check_collects
from schemas.checks.structure import (
    GLOBAL_SOURCE,
    check_dead_ends,
    check_spin_loops,
    check_targets,
    check_traps,
    check_unreachable,
    graph_of,
    reachable,
)
from schemas.checks.variables import check_variables
from schemas.diagnostics import Diagnostic
from schemas.source import SourceMap
from schemas.spec import GraphSpec

__all__ = ["CHECKS", "GLOBAL_SOURCE", "check_graph", "graph_of"]

#: Every check code with a one-line description.
CHECKS: dict[str, str] = {
    "E201": "an edge names a node that does not exist",
    "W202": "a node cannot be reached from start or from any global intent",
    "E203": "a non-terminal node has no outgoing edge (dead end)",
    "E204": "no end, escalate or handoff node can be reached from a node",
    "E205": "a loop of nodes never waits for the caller",
    "E206": "a template variable is read before any path can set it",
    "W207": "a template variable is read where only some paths set it",
    "E208": "a tool node or llm node uses a tool that is not registered",
    "E209": "a handoff names a graph that does not exist",
    "E210": "start names a node that does not exist",
    "W212": "a route or global intent has fewer than 2 example phrases",
    "W213": "the same example phrase belongs to two intents",
    "E214": "a choice collect node lists no choices",
    "W215": "a collect node has no on_fail, so the call ends as failed when every attempt fails",
}


def check_graph(
    spec: GraphSpec,
    source: SourceMap | None = None,
    *,
    file: str = "<string>",
    tools: Collection[str] | None = None,
    graphs: Collection[str] | None = None,
    resolve: Callable[[str], GraphSpec] | None = None,
) -> list[Diagnostic]:
    """Every static finding about `spec`, sorted by (line, column, code).

    Positions come from `source` (all 1:1 without it). Tool names are checked
    only when `tools` is given, handoff targets only when `graphs` (the ids of
    the graphs that exist) is given; with `resolve` (graph reference -> spec, as
    `GraphCatalog.resolve`) versions pinned to a git ref and handoff entries are
    checked too. Never raises for a valid `GraphSpec`.
    """
    rep = Reporter(source if source is not None else SourceMap(), file)
    g = graph_of(spec)
    reach = reachable(spec, g)
    check_targets(spec, rep)
    if reach is not None:
        check_unreachable(spec, reach, rep)
    check_dead_ends(spec, rep)
    check_traps(spec, g, reach, rep)
    check_spin_loops(spec, g, rep)
    check_variables(spec, rep)
    if tools is not None:
        check_tools(spec, tools, rep)
    if graphs is not None:
        check_handoffs(spec, graphs, rep)
    if resolve is not None:
        check_handoff_targets(spec, resolve, rep)
    check_intents(spec, rep)
    check_collects(spec, rep)
    return rep.sorted()
