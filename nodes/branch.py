"""`branch`: go to the first case whose conditions hold (no eval, see
runtime.conditions)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.base import BuildEnv, NodeFn, entered, goto
from runtime.conditions import choose
from runtime.context import CallContext
from runtime.state import CallState
from schemas.spec import BranchNode


def build(node_id: str, spec: BranchNode, env: BuildEnv) -> NodeFn:
    graph = env.graph

    async def run(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        update: dict[str, Any] = entered(state, graph, node_id)
        target, _case = choose(spec.cases, spec.default, state.get("vars", {}))
        return Command(goto=goto(graph, target), update=update)

    return run
