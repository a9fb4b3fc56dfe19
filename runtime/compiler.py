"""Compile graph specs into one LangGraph state machine.

`compile_call(root, resolve=..., checkpointer=...)` gathers the root agent and
every agent reachable through handoffs, turns each spec node into a LangGraph
node (`<graph id>/<node id>`, built by the node kind's module in `nodes/`), adds
the shared `listen` node that waits for caller turns, and compiles with the
checkpointer it is given. Intent examples are embedded here, once, not per turn.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import CodeType
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from nodes import builder_for
from nodes.base import LISTEN, BuildEnv, IntentSetFactory, NodeFn, qualify
from nodes.globals import GlobalIntents
from nodes.handoff import target_id
from nodes.listen import build_listen
from runtime.context import CallContext
from runtime.state import CallState
from schemas.diagnostics import Diagnostic, GraphError
from schemas.spec import GraphSpec, HandoffNode, node_targets

GraphResolver = Callable[[str], GraphSpec]
#: Every node visit and every caller turn is one LangGraph step; a long call
#: stays far below this, a flow that loops without waiting hits it.
RECURSION_LIMIT = 500


@dataclass
class CompiledCall:
    """A runnable call flow: the root agent, every agent it can hand off to, and
    the compiled LangGraph graph."""

    root: GraphSpec
    agents: dict[str, GraphSpec]
    graph: CompiledStateGraph[Any, Any, Any, Any]

    def config(self, call_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": call_id}, "recursion_limit": RECURSION_LIMIT}


def default_intent_sets(graph: GraphSpec) -> IntentSetFactory:
    """The intent classifier a graph asks for in its `routing` settings."""
    from runtime.intents import make_intent_set

    if graph.routing.classifier == "llm":
        from runtime.intents_llm import make_llm_intent_set_factory

        return make_llm_intent_set_factory(graph)
    return make_intent_set


def gather_agents(root: GraphSpec, resolve: GraphResolver | None) -> dict[str, GraphSpec]:
    """The root and every graph reachable through handoff nodes, by agent key:
    the graph id, or `id@ref` for a version pinned to a git ref (its spec's id
    becomes that key, so its nodes are named `id@ref/node`)."""
    agents = {root.id: root}
    todo = [root]
    problems: list[Diagnostic] = []
    while todo:
        spec = todo.pop()
        for node_id, node in spec.nodes.items():
            if not isinstance(node, HandoffNode):
                continue
            tid = target_id(node)
            if tid in agents:
                continue
            try:
                if resolve is None:
                    raise KeyError(tid)
                target = resolve(node.graph)
            except (KeyError, FileNotFoundError, GraphError) as exc:
                detail = f": {_reason(exc)}" if isinstance(exc, GraphError) else ""
                problems.append(
                    Diagnostic(
                        code="E209",
                        severity="error",
                        node=node_id,
                        pointer=f"/nodes/{node_id}/graph",
                        file=spec.id,
                        message=f"handoff to graph {node.graph!r}, which could not be "
                        f"loaded{detail}",
                    )
                )
                continue
            if target.id != tid:  # a pinned version is its own agent, named `id@ref`
                target = target.model_copy(update={"id": tid})
            agents[tid] = target
            todo.append(target)
    if problems:
        raise GraphError(problems)
    return agents


def _reason(exc: GraphError) -> str:
    """The first diagnostic of a failed load, located when it names a file."""
    if not exc.diagnostics:
        return "invalid graph"
    first = exc.diagnostics[0]
    text = first.message if first.file == "<string>" else first.format()
    more = len(exc.diagnostics) - 1
    return text + (f" (+{more} more)" if more else "")


def _check_targets(spec: GraphSpec) -> None:
    bad = [
        Diagnostic(
            code="E201",
            severity="error",
            node=nid,
            file=spec.id,
            pointer=f"/nodes/{nid}",
            message=f"edge {label!r} goes to unknown node {t!r}",
        )
        for nid, node in spec.nodes.items()
        for label, t in node_targets(node).items()
        if t not in spec.nodes
    ]
    if spec.start not in spec.nodes:
        bad.append(
            Diagnostic(
                code="E210",
                severity="error",
                file=spec.id,
                pointer="/start",
                message=f"start node {spec.start!r} does not exist",
            )
        )
    bad += [
        Diagnostic(
            code="E201",
            severity="error",
            file=spec.id,
            pointer=f"/global_intents/{n}",
            message=f"global intent {n!r} goes to unknown node {gi.goto!r}",
        )
        for n, gi in spec.global_intents.items()
        if gi.goto and gi.goto not in spec.nodes
    ]
    if bad:
        raise GraphError(bad)


def compile_call(
    root: GraphSpec,
    *,
    resolve: GraphResolver | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    intent_sets: Callable[[GraphSpec], IntentSetFactory] | None = None,
) -> CompiledCall:
    """Compile `root` and its handoff targets into one checkpointed LangGraph.

    Raises `GraphError` when a node points nowhere or a handoff target cannot be
    loaded; run the static checks (`schemas.checks`) first for full diagnostics.
    """
    agents = gather_agents(root, resolve)
    factory_for = intent_sets or default_intent_sets
    builder: StateGraph[Any, Any, Any, Any] = StateGraph(CallState, context_schema=CallContext)
    for spec in agents.values():
        _check_targets(spec)
        factory = factory_for(spec)
        env = BuildEnv(
            graph=spec,
            intent_sets=factory,
            graphs=agents,
            globals=GlobalIntents.build(spec, factory),
        )
        for node_id, node in spec.nodes.items():
            fn = builder_for(node.type)(node_id, node, env)
            builder.add_node(qualify(spec.id, node_id), _opaque(fn))  # type: ignore[call-overload]
    builder.add_node(LISTEN, build_listen())  # type: ignore[call-overload]
    builder.add_edge(START, qualify(root.id, root.start))
    graph = builder.compile(checkpointer=checkpointer, name=root.id)
    return CompiledCall(root=root, agents=agents, graph=graph)


def _opaque(fn: NodeFn) -> NodeFn:
    """`fn` behind a `functools.partial`, which LangGraph runs exactly like the
    function (same signature, same injected `runtime`) but does not introspect
    when compiling: no type-hint evaluation for an input schema (every node
    takes `CallState`, the graph's state) and no bytecode walk of its closure
    looking for subgraphs (a call flow has none; handoffs are nodes of this one
    graph). That introspection was most of the compile time of a large graph.
    The signature is computed once per node kind's function, not per node."""
    opaque = functools.partial(fn)
    code = getattr(fn, "__code__", None)
    if code is not None:
        if code not in _SIGNATURES:
            _SIGNATURES[code] = inspect.signature(fn)
        opaque.__signature__ = _SIGNATURES[code]  # type: ignore[attr-defined]
    return opaque


_SIGNATURES: dict[CodeType, inspect.Signature] = {}


def initial_state(
    root: GraphSpec,
    *,
    call_id: str,
    caller: str | None,
    context: CallContext,
    variables: Mapping[str, Any] | None = None,
) -> CallState:
    """The state a new call starts from: the root's variables plus built-ins."""
    now = context.clock()
    builtins = {
        "call_id": call_id,
        "caller": caller or "",
        "agent": root.id,
        "now": now.isoformat(timespec="seconds"),
        "today": now.date().isoformat(),
        "last_utterance": "",
        "intent": "",
        "handoff_summary": "",
    }
    return {
        "messages": [],
        "vars": {**root.variables, **(variables or {}), **builtins},
        "agent": root.id,
        "node": root.start,
        "awaiting": None,
        "pending_input": None,
        "turn": 0,
        "consumed": {},
        "intent": None,
        "attempts": {},
        "visited": [],
        "tool_calls": [],
        "agents": [root.id],
        "saved_vars": {},
        "outcome": None,
        "agent_outcomes": {},
        "outcome_reason": None,
        "handoff_to": None,
    }
