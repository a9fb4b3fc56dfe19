"""`collect`: ask for one typed value and fill a slot, re-prompting on failure.

Extraction is offline and deterministic (runtime.slots). A value the caller
already gave in the turn that led here (for example "book a cleaning next
Tuesday" routed to a date question) fills the slot without asking, but only for
kinds whose values cannot be confused with ordinary words (dates, times, phone
numbers, email addresses). After `max_attempts` failed answers the call leaves
through `on_fail`, or, without one, says the graph's fallback line and ends as
failed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command

from nodes.base import (
    BuildEnv,
    NodeFn,
    carried_input,
    consumed,
    entered,
    finish,
    goto,
    resuming,
    say,
    wait_for_caller,
)
from nodes.globals import GlobalIntents
from runtime.context import CallContext
from runtime.slots import Extraction, extract
from runtime.state import CallState
from schemas.spec import CollectNode

PREFILL_KINDS = frozenset({"date", "time", "phone", "email"})
DEFAULT_REPROMPT = "Sorry, I didn't catch that. {prompt}"


def build(node_id: str, spec: CollectNode, env: BuildEnv) -> NodeFn:
    graph = env.graph
    globals_: GlobalIntents = env.globals

    async def extract_from(text: str, runtime: Runtime[CallContext]) -> Extraction | None:
        now = runtime.context.clock()
        return await asyncio.to_thread(extract, spec.kind, text, now=now, choices=spec.choices)

    def filled(state: CallState, value: Any, update: dict[str, Any]) -> Command[Any]:
        attempts = {**state.get("attempts", {}), node_id: 0}
        variables = {**state.get("vars", {}), spec.slot: value}
        update.update(vars=variables, attempts=attempts, pending_input=None, awaiting=None)
        return Command(goto=goto(graph, spec.next), update=update)

    async def run(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        update: dict[str, Any] = entered(state, graph, node_id)
        if resuming(state, graph, node_id):
            text = state.get("pending_input") or ""
            update["consumed"] = consumed(state, graph, node_id)
            strong = await globals_.match(text, strict=True)
            if strong is not None:
                return globals_.take(*strong, state, node_id, update)
            result = await extract_from(text, runtime)
            if result is not None:
                return filled(state, result.value, update)
            weak = await globals_.match(text, strict=False)
            if weak is not None:
                return globals_.take(*weak, state, node_id, update)
            tries = state.get("attempts", {}).get(node_id, 0) + 1
            update["attempts"] = {**state.get("attempts", {}), node_id: tries}
            if tries >= spec.max_attempts:
                update["attempts"][node_id] = 0
                update.update(pending_input=None, awaiting=None)
                if spec.on_fail:
                    return Command(goto=goto(graph, spec.on_fail), update=update)
                update["messages"] = say(graph.fallback_line, state, graph, node_id)
                update["outcome"] = "failed"
                update["outcome_reason"] = f"no valid {spec.kind} for slot {spec.slot!r}"
                return finish(update)
            reprompt = spec.reprompt or DEFAULT_REPROMPT.replace("{prompt}", spec.prompt)
            update["messages"] = say(reprompt, state, graph, node_id)
            return wait_for_caller(graph, node_id, update)

        carried = carried_input(state, graph, node_id)
        if carried is not None and spec.kind in PREFILL_KINDS:
            update["consumed"] = consumed(state, graph, node_id)
            result = await extract_from(carried, runtime)
            if result is not None:
                return filled(state, result.value, update)
        update["messages"] = say(spec.prompt, state, graph, node_id)
        return wait_for_caller(graph, node_id, update)

    return run
