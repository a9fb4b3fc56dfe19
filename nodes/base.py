"""What every node kind shares: naming, speaking, waiting for the caller.

A spec node becomes one LangGraph node named `<graph id>/<node id>`; every agent
graph of a call lives in one LangGraph graph so that handoffs keep one thread,
one checkpoint and one transcript. A node function takes the `CallState` and
the LangGraph `Runtime[CallContext]` and returns a `Command` saying where to go.

Waiting for the caller is one shared node, `listen`: a node that needs a caller
turn returns `wait_for_caller(...)`; `listen` interrupts, receives the turn via
`Command(resume=text)`, checks global intents, and sends the turn back to the
node that asked (which finds it in `state["pending_input"]`). Node functions
themselves never call `interrupt()`, so replaying them on resume is harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.messages import AIMessage
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command

from runtime.context import CallContext
from runtime.state import CallState
from runtime.templates import render
from schemas.spec import GraphSpec

LISTEN = "listen"

NodeFn = Callable[[CallState, Runtime[CallContext]], Awaitable[Command[Any]]]


class IntentMatcher(Protocol):
    """A set of intents prepared once at compile time (see runtime.intents)."""

    async def classify(self, text: str) -> Any: ...


IntentSetFactory = Callable[[dict[str, list[str]], float | None], IntentMatcher]


@dataclass
class BuildEnv:
    """What a node builder may use at compile time."""

    graph: GraphSpec
    intent_sets: IntentSetFactory
    graphs: dict[str, GraphSpec] = field(default_factory=dict)
    #: The graph's global intents (a `nodes.globals.GlobalIntents`).
    globals: Any = None


def qualify(graph_id: str, node_id: str) -> str:
    """LangGraph node name of a spec node."""
    return f"{graph_id}/{node_id}"


def split_name(name: str) -> tuple[str, str]:
    graph_id, _, node_id = name.partition("/")
    return graph_id, node_id


def goto(graph: GraphSpec, node_id: str) -> str:
    return qualify(graph.id, node_id)


def agent_message(
    text: str, graph: GraphSpec, node_id: str, *, message_id: str | None = None
) -> AIMessage:
    """An agent line in the transcript, tagged with the agent and node that said it.
    `message_id` is the id already announced for it (streamed tokens), else new."""
    return AIMessage(
        id=message_id or str(uuid.uuid4()),
        content=text,
        name=graph.id,
        additional_kwargs={"node": node_id},
    )


def say(text: str | None, state: CallState, graph: GraphSpec, node_id: str) -> list[AIMessage]:
    """Render a template against the call's variables into 0 or 1 agent messages."""
    if not text:
        return []
    rendered = render(text, state.get("vars", {})).strip()
    return [agent_message(rendered, graph, node_id)] if rendered else []


def entered(state: CallState, graph: GraphSpec, node_id: str) -> dict[str, Any]:
    """State update recording that a node ran. A node re-entered to consume a
    caller turn it asked for is not a new visit."""
    if state.get("awaiting") == node_id and state.get("agent") == graph.id:
        return {"node": node_id, "agent": graph.id}
    return {"node": node_id, "agent": graph.id, "visited": [qualify(graph.id, node_id)]}


def resuming(state: CallState, graph: GraphSpec, node_id: str) -> bool:
    """True when this node asked for the caller turn now in `pending_input`."""
    return (
        state.get("awaiting") == node_id
        and state.get("agent") == graph.id
        and state.get("pending_input") is not None
    )


def wait_for_caller(
    graph: GraphSpec, node_id: str, update: dict[str, Any] | None = None
) -> Command[Any]:
    """Stop after this step and resume `node_id` with the next caller turn."""
    upd = dict(update or {})
    upd.update({"awaiting": node_id, "agent": graph.id, "pending_input": None})
    return Command(goto=LISTEN, update=upd)


def finish(update: dict[str, Any]) -> Command[Any]:
    """End the run for good (the call is over), recording the outcome for the
    agent handling the call."""
    upd = {**update, "awaiting": None}
    if upd.get("outcome") and upd.get("agent"):
        upd["agent_outcomes"] = {upd["agent"]: upd["outcome"]}
    return Command(goto=END, update=upd)


def carried_input(state: CallState, graph: GraphSpec, node_id: str) -> str | None:
    """A caller turn handed on by an earlier node of this turn (a route that
    matched, a handoff) that this node has not consumed yet, else None."""
    text = state.get("pending_input")
    if text is None or state.get("awaiting") is not None:
        return None
    turn = state.get("turn", 0)
    if state.get("consumed", {}).get(qualify(graph.id, node_id)) == turn:
        return None
    return text


def consumed(state: CallState, graph: GraphSpec, node_id: str) -> dict[str, int]:
    """`consumed` map updated to say this node used the current caller turn."""
    return {**state.get("consumed", {}), qualify(graph.id, node_id): state.get("turn", 0)}
