"""The state of one call as LangGraph checkpoints it."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


def merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: keys of `right` overwrite those of `left`."""
    return {**(left or {}), **(right or {})}


Outcome = Literal["completed", "escalated", "handed_off", "abandoned", "failed"]


class IntentResult(TypedDict):
    name: str | None
    confidence: float
    node: str


class ToolCallRecord(TypedDict):
    name: str
    args: dict[str, Any]
    result: Any
    error: str | None
    duration_ms: float
    node: str


class ReturnFrame(TypedDict):
    """An agent that handed the call over: `agent` (its key in the call), the
    handoff node `via`, and `node`, where a hand-back continues (None: the
    agent does not take the call back)."""

    agent: str
    via: str
    node: str | None


class CallState(TypedDict, total=False):
    """Checkpointed call state.

    `outcome` is the call's; `agent_outcomes` records each agent's own ending,
    so an agent that passed the call on is `handed_off` even though the call
    went on to complete. `vars` holds graph variables, slots and tool results of
    the agent currently handling the call (replaced whole by each update);
    `agent` is that agent's graph id (`id@ref` for a version pinned to a git
    ref) and `node` its current node. `pending_input` is a caller turn not yet
    consumed by a waiting node; `awaiting` is the node that wants the next turn.
    `returns` is the stack of agents that handed the call over (latest last);
    `agent_commits` maps each agent run from a git ref (`id@ref`) to its commit.
    """

    messages: Annotated[list[AnyMessage], add_messages]
    vars: dict[str, Any]
    agent: str
    node: str
    awaiting: str | None
    pending_input: str | None
    turn: int
    consumed: dict[str, int]
    intent: IntentResult | None
    attempts: dict[str, int]
    visited: Annotated[list[str], operator.add]
    tool_calls: Annotated[list[ToolCallRecord], operator.add]
    agents: Annotated[list[str], operator.add]
    saved_vars: dict[str, dict[str, Any]]
    outcome: Outcome | None
    agent_outcomes: Annotated[dict[str, Outcome], merge]
    outcome_reason: str | None
    handoff_to: str | None
    returns: list[ReturnFrame]
    agent_commits: Annotated[dict[str, str], merge]
