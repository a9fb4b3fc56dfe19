"""`handoff`: transfer the call to another agent graph (multi-agent).

Every agent of a call is compiled into the same LangGraph graph, so the call
keeps one thread, one checkpoint and one transcript. The context contract: the
new agent starts with its own graph variables, the built-in variables, the
variables the handoff declares in `carry` (those that are set) and, with
`summary: true`, a conversation summary in `handoff_summary` (empty otherwise).
The caller's last turn travels with it, so the specialist's first routing step
can use it instead of asking again. Its own voice settings and prompts apply
from its first line: every agent line is tagged with the agent that said it,
and `state["agent"]` names the agent handling the call.

The handing agent's variables are kept in `saved_vars`, and the handoff is
pushed on `returns` with its `return_to` node, so a `return` node of the new
agent can hand the call back (see `nodes.return_`).

A target written `id@ref` is that graph as it was at a git ref: it is a
separate agent of the call (keyed and named `id@ref`, so it can run beside the
working-copy version of the same id), and the commit it ran is recorded in
`agent_commits`.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.base import BuildEnv, NodeFn, entered, qualify, say
from runtime.context import CallContext
from runtime.handoff_summary import summarise
from runtime.state import CallState, ReturnFrame
from schemas.diagnostics import Diagnostic, GraphError
from schemas.spec import BUILTIN_VARIABLES, GraphSpec, HandoffNode, PinnedGraphSpec


def target_id(spec: HandoffNode) -> str:
    """The key of the handoff target among the call's agents: its graph id, or
    `id@ref` for a version pinned to a git ref."""
    return spec.graph


def handed_vars(
    target: GraphSpec, variables: dict[str, Any], carry: list[str], summary: str
) -> dict[str, Any]:
    """The variables an agent starts with when a call is handed to it: its own
    graph variables, then the built-ins and carried variables of the handing
    agent (those that are set), its own key as `agent`, and the summary."""
    passed = {k: v for k, v in variables.items() if k in BUILTIN_VARIABLES}
    passed.update({k: variables[k] for k in carry if k in variables})
    passed["agent"] = target.id
    passed["handoff_summary"] = summary
    return {**target.variables, **passed}


def commit_update(target: GraphSpec) -> dict[str, str]:
    """`agent_commits` entry for an agent run from a git ref (else nothing)."""
    return {target.id: target.commit} if isinstance(target, PinnedGraphSpec) else {}


def build(node_id: str, spec: HandoffNode, env: BuildEnv) -> NodeFn:
    graph = env.graph
    target = env.graphs[target_id(spec)]
    entry = spec.entry or target.start
    if entry not in target.nodes:
        raise GraphError(
            [
                Diagnostic(
                    code="E201",
                    severity="error",
                    node=node_id,
                    file=graph.id,
                    pointer=f"/nodes/{node_id}/entry",
                    message=f"handoff entry {entry!r} is not a node of graph {target.id!r}",
                )
            ]
        )

    async def run(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        update: dict[str, Any] = entered(state, graph, node_id)
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
            )
        frame: ReturnFrame = {"agent": graph.id, "via": node_id, "node": spec.return_to}
        update["saved_vars"] = {**state.get("saved_vars", {}), graph.id: dict(variables)}
        update["returns"] = [*state.get("returns", []), frame]
        update["vars"] = handed_vars(target, variables, spec.carry, summary)
        update["agents"] = [target.id]
        update["handoff_to"] = target.id
        update["agent_outcomes"] = {graph.id: "handed_off"}
        update["agent_commits"] = commit_update(target)
        update["agent"] = target.id
        update["awaiting"] = None
        return Command(goto=qualify(target.id, entry), update=update)

    return run
