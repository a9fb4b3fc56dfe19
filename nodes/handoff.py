"""`handoff`: transfer the call to another agent graph (multi-agent).

Every agent of a call is compiled into the same LangGraph graph, so the call
keeps one thread, one checkpoint and one transcript. The new agent starts with
its own graph variables, the built-in variables, and the variables the handoff
declares in `carry`; the caller's last turn travels with it, so the specialist's
first routing step can use it instead of asking again. The handing agent's
variables are kept in `saved_vars` for a later hand-back.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.base import BuildEnv, NodeFn, entered, qualify, say
from runtime.context import CallContext
from runtime.state import CallState
from schemas.spec import BUILTIN_VARIABLES, HandoffNode


def target_id(spec: HandoffNode) -> str:
    """Graph id of the handoff target, without any `@ref`."""
    return spec.graph.partition("@")[0]


def build(node_id: str, spec: HandoffNode, env: BuildEnv) -> NodeFn:
    graph = env.graph
    target = env.graphs[target_id(spec)]
    entry = spec.entry or target.start

    async def run(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        update: dict[str, Any] = entered(state, graph, node_id)
        update["messages"] = say(spec.say, state, graph, node_id)
        variables = state.get("vars", {})
        carried = {k: v for k, v in variables.items() if k in BUILTIN_VARIABLES}
        carried.update({k: variables[k] for k in spec.carry if k in variables})
        carried["agent"] = target.id
        update["saved_vars"] = {**state.get("saved_vars", {}), graph.id: dict(variables)}
        update["vars"] = {**target.variables, **carried}
        update["agents"] = [target.id]
        update["handoff_to"] = target.id
        update["agent_outcomes"] = {graph.id: "handed_off"}
        update["agent"] = target.id
        update["awaiting"] = None
        return Command(goto=qualify(target.id, entry), update=update)

    return run
