"""`say`: speak a templated line and move on without waiting."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.base import BuildEnv, NodeFn, entered, goto, say
from runtime.context import CallContext
from runtime.state import CallState
from schemas.spec import SayNode


def build(node_id: str, spec: SayNode, env: BuildEnv) -> NodeFn:
    graph = env.graph

    async def run(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        update: dict[str, Any] = entered(state, graph, node_id)
        update["messages"] = say(spec.text, state, graph, node_id)
        return Command(goto=goto(graph, spec.next), update=update)

    return run
