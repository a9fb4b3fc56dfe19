"""The shared `listen` node: wait for a caller turn, then apply global intents.

It is the only place that calls LangGraph's `interrupt()`. The resume value is
the caller's text, or `{"hangup": true}` when the caller hung up. Global intents
of the agent handling the call are checked first: `goto` jumps to a node,
`action: repeat` says the last agent line again and keeps waiting. Otherwise
the turn goes back to the node that asked for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from nodes.base import LISTEN, IntentMatcher, NodeFn, agent_message, qualify
from runtime.context import CallContext
from runtime.state import CallState, IntentResult
from schemas.spec import GraphSpec

MAX_TURN_CHARS = 2000


def _caller_text(value: Any) -> tuple[str | None, bool]:
    """(text, hung_up) from a resume value."""
    if isinstance(value, Mapping):
        if value.get("hangup"):
            return None, True
        value = value.get("text", "")
    text = " ".join(str(value if value is not None else "").split())
    return text[:MAX_TURN_CHARS], False


def _last_agent_line(state: CallState) -> AIMessage | None:
    for msg in reversed(state.get("messages", [])):
        if isinstance(msg, AIMessage) and not msg.additional_kwargs.get("internal"):
            if isinstance(msg.content, str) and msg.content:
                return msg
    return None


def build_listen(
    graphs: Mapping[str, GraphSpec], global_sets: Mapping[str, IntentMatcher | None]
) -> NodeFn:
    """The listen node for a call whose agents are `graphs` (by id)."""

    async def listen(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        awaiting = state.get("awaiting")
        agent = state.get("agent", "")
        value = interrupt({"agent": agent, "node": awaiting})
        text, hung_up = _caller_text(value)
        if hung_up or text is None:
            return Command(
                goto=END,
                update={"outcome": "abandoned", "outcome_reason": "caller hung up",
                        "awaiting": None},
            )
        turn = state.get("turn", 0) + 1
        variables = {**state.get("vars", {}), "last_utterance": text}
        update: dict[str, Any] = {
            "messages": [HumanMessage(content=text)],
            "pending_input": text,
            "turn": turn,
            "vars": variables,
        }
        graph = graphs[agent]
        matcher = global_sets.get(agent)
        if matcher is not None and text:
            match = await matcher.classify(text)
            if match.name in graph.global_intents:
                intent = graph.global_intents[match.name]
                result: IntentResult = {
                    "name": match.name, "confidence": float(match.confidence), "node": "*global*"
                }
                update["intent"] = result
                if intent.action == "repeat":
                    last = _last_agent_line(state)
                    again = last.content if last is not None else ""
                    update["pending_input"] = None
                    if again:
                        node = str(last.additional_kwargs.get("node", awaiting)) if last else ""
                        update["messages"].append(agent_message(str(again), graph, node))
                    return Command(goto=LISTEN, update=update)
                if intent.goto:
                    update.update(pending_input=None, awaiting=None)
                    update["vars"] = {**variables, "intent": match.name}
                    return Command(goto=qualify(agent, intent.goto), update=update)
        if awaiting is None:
            return Command(goto=END, update={**update, "outcome": "failed",
                                             "outcome_reason": "no node awaiting input"})
        return Command(goto=qualify(agent, awaiting), update=update)

    return listen
