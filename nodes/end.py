"""`end`: say goodbye and complete the call."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.base import BuildEnv, NodeFn, entered, finish, say
from runtime.context import CallContext
from runtime.state import CallState
from schemas.spec import EndNode


def build(node_id: str, spec: EndNode, env: BuildEnv) -> NodeFn:
    graph = env.graph

    async def run(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        update: dict[str, Any] = entered(state, graph, node_id)
        update["messages"] = say(spec.text, state, graph, node_id)
        update["outcome"] = "completed"
        return finish(update)

    return run
