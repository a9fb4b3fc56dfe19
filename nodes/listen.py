"""The shared `listen` node: wait for a caller turn and hand it to the node
that asked for it.

It is the only place that calls LangGraph's `interrupt()`. The resume value is
the caller's text, or a mapping `{"text": ..., "hangup": bool, "interrupted":
[{"message_id": ..., "heard": ...}]}`: the voice runtime reports with the next
turn which agent lines a barge-in cut short, so the transcript keeps only what
the caller heard, in the same checkpointed step. Global intents
are arbitrated by the receiving node (see `nodes.globals`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from nodes.base import NodeFn, qualify
from runtime.context import CallContext
from runtime.state import CallState

MAX_TURN_CHARS = 2000


def heard_updates(state: CallState, value: Any) -> list[AIMessage]:
    """Agent messages cut short by a barge-in, replaced (same id) by what the
    caller actually heard; the planned text is kept in `additional_kwargs`.

    The resume value carries `{"interrupted": [{"message_id", "heard"}]}`.
    """
    if not isinstance(value, Mapping):
        return []
    cuts = value.get("interrupted") or []
    if not isinstance(cuts, list):
        return []
    by_id = {m.id: m for m in state.get("messages", []) if isinstance(m, AIMessage) and m.id}
    out: list[AIMessage] = []
    for cut in cuts:
        if not isinstance(cut, Mapping):
            continue
        original = by_id.get(str(cut.get("message_id")))
        if original is None or original.additional_kwargs.get("interrupted"):
            continue
        heard = str(cut.get("heard", ""))
        kwargs = {**original.additional_kwargs, "interrupted": True, "planned": original.content}
        out.append(
            AIMessage(id=original.id, content=heard, name=original.name, additional_kwargs=kwargs)
        )
    return out


def _caller_text(value: Any) -> tuple[str | None, bool]:
    """(text, hung_up) from a resume value."""
    if isinstance(value, Mapping):
        if value.get("hangup"):
            return None, True
        value = value.get("text", "")
    text = " ".join(str(value if value is not None else "").split())
    return text[:MAX_TURN_CHARS], False


def build_listen() -> NodeFn:
    """The listen node shared by every agent of a call."""

    async def listen(state: CallState, runtime: Runtime[CallContext]) -> Command[Any]:
        awaiting = state.get("awaiting")
        agent = state.get("agent", "")
        value = interrupt({"agent": agent, "node": awaiting})
        text, hung_up = _caller_text(value)
        cut = heard_updates(state, value)
        if hung_up or text is None:
            return Command(
                goto=END,
                update={
                    "messages": cut,
                    "agent_outcomes": {agent: "abandoned"},
                    "outcome": "abandoned",
                    "outcome_reason": "caller hung up",
                    "awaiting": None,
                },
            )
        turn = state.get("turn", 0) + 1
        variables = {**state.get("vars", {}), "last_utterance": text}
        update: dict[str, Any] = {
            "messages": [*cut, HumanMessage(content=text)],
            "pending_input": text,
            "turn": turn,
            "vars": variables,
        }
        if awaiting is None:
            return Command(
                goto=END,
                update={**update, "outcome": "failed", "outcome_reason": "no node awaiting input"},
            )
        return Command(goto=qualify(agent, awaiting), update=update)

    return listen
