"""`escalate`: tell the caller, then hand the call to a human (outcome escalated).

The transport performs the actual transfer (a SIP REFER, a Twilio `<Dial>`, a
queue); the graph records why and to which queue.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.base import BuildEnv, NodeFn, entered, finish, say
from runtime.context import CallContext
from runtime.state import CallState
from runtime.templates import render
from schemas.spec import EscalateNode


def build(node_id: str, spec: EscalateNode, env: BuildEnv) -> NodeFn:
    graph = env.graph

    async def run(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        update: dict[str, Any] = entered(state, graph, node_id)
        update["messages"] = say(spec.say, state, graph, node_id)
        update["outcome"] = "escalated"
        reason = render(spec.reason, state.get("vars", {}))
        update["outcome_reason"] = f"{reason} (queue {spec.queue})" if spec.queue else reason
        return finish(update)

    return run
