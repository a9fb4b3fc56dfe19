"""`route`: classify the caller's turn into one of the node's intents.

The intent set is prepared once at compile time (examples embedded then); a
turn below the confidence threshold goes to `fallback`. A turn handed on by an
earlier node (a handoff from a front-desk agent) is classified without asking
again. On a match the turn stays available to the next node of the same turn,
so a following date question can take "next Tuesday" from "a cleaning next
Tuesday".
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.base import (
    BuildEnv,
    NodeFn,
    carried_input,
    consumed,
    entered,
    goto,
    resuming,
    say,
    wait_for_caller,
)
from nodes.globals import PREFIX, GlobalIntents
from runtime.context import CallContext
from runtime.state import CallState, IntentResult
from schemas.spec import GraphSpec, RouteNode

#: A caller turn is classified by at most one route node per agent: a route
#: that passes its turn on (for a date question to reuse) must not feed it to a
#: second route, but a handoff target's first route may classify it again.
ANY_ROUTE = "*route"


def route_threshold(spec: RouteNode, graph: GraphSpec) -> float | None:
    """The confidence threshold a route node classifies with: its own, else the
    graph's `routing.threshold`, else None (the classifier's default)."""
    return spec.threshold if spec.threshold is not None else graph.routing.threshold


def route_examples(spec: RouteNode, globals_: GlobalIntents) -> dict[str, list[str]]:
    """The intent set a route node classifies against: its own intents and the
    graph's global intents (under `PREFIX`-ed names), so the closest one wins."""
    combined = {name: list(i.examples) for name, i in spec.intents.items()}
    combined.update(globals_.examples())
    return combined


def build(node_id: str, spec: RouteNode, env: BuildEnv) -> NodeFn:
    graph = env.graph
    globals_: GlobalIntents = env.globals
    intent_set = env.intent_sets(route_examples(spec, globals_), route_threshold(spec, graph))

    async def run(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        update: dict[str, Any] = entered(state, graph, node_id)
        text = state.get("pending_input") if resuming(state, graph, node_id) else None
        if text is None:
            text = carried_input(state, graph, ANY_ROUTE)
        if text is None:
            update["messages"] = say(spec.prompt, state, graph, node_id)
            return wait_for_caller(graph, node_id, update)

        update["consumed"] = consumed(state, graph, ANY_ROUTE)
        match = await intent_set.classify(text)
        if match.name and match.name.startswith(PREFIX):
            return globals_.take(
                match.name[len(PREFIX) :], float(match.confidence), state, node_id, update
            )
        name = match.name if match.name in spec.intents else None
        result: IntentResult = {
            "name": name,
            "confidence": float(match.confidence),
            "node": node_id,
        }
        update["intent"] = result
        update["awaiting"] = None
        if name is None:
            update["pending_input"] = None
            return Command(goto=goto(graph, spec.fallback), update=update)
        update["vars"] = {**state.get("vars", {}), "intent": name}
        update["pending_input"] = text
        return Command(goto=goto(graph, spec.intents[name].next), update=update)

    return run
