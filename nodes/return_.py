"""`return`: hand the call back to the agent that handed it over.

The agent on top of `returns` (pushed by its handoff node) takes the call back
when its handoff set `return_to`: its variables come back from `saved_vars`,
with the built-ins of the call as they are now, the variables this node names
in `carry` (those that are set) and, with `summary: true`, a summary of this
agent's part of the call in `handoff_summary`. The call continues at the
`return_to` node of that agent, on the same thread and transcript, and `agents`
records the way back (e.g. front-desk, billing-support, front-desk).

When no agent is waiting for the call (the graph was called directly, or the
handoff set no `return_to`), nothing is said and the call goes to `otherwise`.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.base import BuildEnv, NodeFn, entered, goto, qualify, say
from runtime.context import CallContext
from runtime.handoff_summary import summarise
from runtime.state import CallState, ReturnFrame
from schemas.spec import BUILTIN_VARIABLES, GraphSpec, ReturnNode


def returned_vars(
    caller: GraphSpec,
    saved: dict[str, Any] | None,
    variables: dict[str, Any],
    carry: list[str],
    summary: str,
) -> dict[str, Any]:
    """The variables the calling agent continues with: its saved ones (or its
    graph variables if none were saved), the call's current built-ins, the
    carried variables that are set, its own key as `agent`, and the summary."""
    restored = dict(saved) if saved is not None else dict(caller.variables)
    restored.update({k: v for k, v in variables.items() if k in BUILTIN_VARIABLES})
    restored.update({k: variables[k] for k in carry if k in variables})
    restored["agent"] = caller.id
    restored["handoff_summary"] = summary
    return restored


def build(node_id: str, spec: ReturnNode, env: BuildEnv) -> NodeFn:
    graph = env.graph

    def waiting_caller(state: CallState) -> tuple[GraphSpec, str] | None:
        """The agent and node the call goes back to, if one is waiting for it."""
        frames: list[ReturnFrame] = state.get("returns", [])
        if not frames:
            return None
        frame = frames[-1]
        caller = env.graphs.get(frame["agent"])
        back = frame["node"]
        if caller is None or back is None or back not in caller.nodes:
            return None
        return caller, back

    async def run(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        update: dict[str, Any] = entered(state, graph, node_id)
        found = waiting_caller(state)
        if found is None:
            update["awaiting"] = None
            return Command(goto=goto(graph, spec.otherwise), update=update)
        caller, back = found
        update["messages"] = say(spec.say, state, graph, node_id)
        variables = state.get("vars", {})
        summary = ""
        if spec.summary:
            summary = await summarise(
                graph,
                [*state.get("messages", []), *update["messages"]],
                variables,
                spec.carry,
                llm_factory=runtime.context.llm_factory,
                agent=graph.id,
            )
        saved = state.get("saved_vars", {})
        update["vars"] = returned_vars(caller, saved.get(caller.id), variables, spec.carry, summary)
        update["saved_vars"] = {**saved, graph.id: dict(variables)}
        update["returns"] = list(state.get("returns", []))[:-1]
        update["agents"] = [caller.id]
        update["handoff_to"] = caller.id
        update["agent_outcomes"] = {graph.id: "handed_off"}
        update["agent"] = caller.id
        update["awaiting"] = None
        # The turn that led here was this agent's; the calling agent asks afresh.
        update["pending_input"] = None
        return Command(goto=qualify(caller.id, back), update=update)

    return run
