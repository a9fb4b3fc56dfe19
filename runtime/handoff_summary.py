"""The conversation summary a handoff (or hand-back) gives the next agent.

`summarise(...)` returns the text that becomes the `handoff_summary` variable.
Offline it is assembled deterministically from the transcript: the caller's
recent turns and the key values known (slots the handing agent collected, the
variables it passes on, the routed intent, the calling number), e.g.
`Caller said: "I was charged twice". Known: intent=billing, caller=+15551230002.`
When the handing graph configures an `llm` and the call has an LLM factory, the
model writes the summary instead; any model failure, timeout or empty answer
falls back to the deterministic text, so a handoff never waits on a provider
for longer than the graph's `llm.timeout_s`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.constants import TAG_NOSTREAM

from schemas.spec import CollectNode, GraphSpec, LLMSettings

#: Caller turns quoted in a deterministic summary (the most recent ones).
MAX_TURNS = 6
#: Longest quoted caller turn, and longest summary, in characters.
MAX_TURN_CHARS = 160
MAX_SUMMARY_CHARS = 1200
#: Transcript lines shown to the model.
MAX_MODEL_LINES = 40

SYSTEM_PROMPT = (
    "You are handing a phone call over to another agent. Summarise the conversation so "
    "far for them in at most three short sentences: what the caller wants and the details "
    "already given. Use only facts from the transcript. Plain text, no lists."
)

LLMFactory = Callable[[LLMSettings], BaseChatModel]


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return " ".join(content.split())
    parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
    return " ".join("".join(parts).split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def since(messages: Sequence[BaseMessage], agent: str) -> list[BaseMessage]:
    """The messages since `agent` took the call: after the last line another
    agent said."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if (
            isinstance(m, AIMessage)
            and not m.additional_kwargs.get("internal")
            and m.name not in (None, agent)
        ):
            return list(messages[i + 1 :])
    return list(messages)


def caller_turns(messages: Sequence[BaseMessage]) -> list[str]:
    """The caller's non-empty turns, oldest first."""
    texts = (_text(m) for m in messages if isinstance(m, HumanMessage))
    return [t for t in texts if t]


def _shown(value: Any) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip():
        return _clip(" ".join(value.split()), MAX_TURN_CHARS)
    return None


def known_values(
    graph: GraphSpec, variables: Mapping[str, Any], carried: Iterable[str]
) -> dict[str, str]:
    """Key values worth passing on, in a stable order: the routed intent, slots
    the graph collects, the carried variables, then the calling number. Only
    plain values (text, numbers, yes/no) that are set; tool results are left out."""
    names = ["intent"]
    names += [n.slot for n in graph.nodes.values() if isinstance(n, CollectNode)]
    names += list(carried)
    names.append("caller")
    out: dict[str, str] = {}
    for name in dict.fromkeys(names):
        shown = _shown(variables.get(name))
        if shown is not None:
            out[name] = shown
    return out


def deterministic_summary(turns: Sequence[str], known: Mapping[str, str]) -> str:
    """`Caller said: "..." / "...". Known: a=1, b=2.` (either part may be absent)."""
    parts: list[str] = []
    recent = [f'"{_clip(t, MAX_TURN_CHARS)}"' for t in turns[-MAX_TURNS:]]
    if recent:
        parts.append("Caller said: " + " / ".join(recent) + ".")
    if known:
        parts.append("Known: " + ", ".join(f"{k}={v}" for k, v in known.items()) + ".")
    return _clip(" ".join(parts), MAX_SUMMARY_CHARS)


def _transcript(messages: Sequence[BaseMessage]) -> str:
    lines: list[str] = []
    for message in messages:
        if isinstance(message, HumanMessage):
            lines.append(f"Caller: {_text(message)}")
        elif isinstance(message, AIMessage) and not message.additional_kwargs.get("internal"):
            text = _text(message)
            if text:
                lines.append(f"Agent ({message.name or 'agent'}): {text}")
    return "\n".join(lines[-MAX_MODEL_LINES:])


async def llm_summary(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    known: Mapping[str, str],
    *,
    timeout_s: float,
) -> str:
    """The model's summary of the transcript; raises on failure, timeout or an
    empty answer."""
    facts = ", ".join(f"{k}={v}" for k, v in known.items())
    prompt = _transcript(messages) + (f"\nKnown values: {facts}" if facts else "")
    runnable = model.with_config(tags=[TAG_NOSTREAM])
    answer = await asyncio.wait_for(
        runnable.ainvoke([SystemMessage(SYSTEM_PROMPT), HumanMessage(prompt)]), timeout_s
    )
    text = _text(answer) if isinstance(answer, BaseMessage) else ""
    if not text:
        raise ValueError("the model returned an empty summary")
    return _clip(text, MAX_SUMMARY_CHARS)


async def summarise(
    graph: GraphSpec,
    messages: Sequence[BaseMessage],
    variables: Mapping[str, Any],
    carried: Iterable[str],
    *,
    llm_factory: LLMFactory | None = None,
    agent: str | None = None,
) -> str:
    """The summary `graph`'s agent passes on. `agent` limits the caller's turns to
    those since that agent took the call (a hand-back summarises its own part).
    Uses the model when `graph.llm` is set and `llm_factory` is given; never
    raises for model trouble."""
    mine = since(messages, agent) if agent is not None else list(messages)
    known = known_values(graph, variables, carried)
    fallback = deterministic_summary(caller_turns(mine), known)
    if graph.llm is None or llm_factory is None:
        return fallback
    try:
        return await llm_summary(llm_factory(graph.llm), mine, known, timeout_s=graph.llm.timeout_s)
    except Exception:  # provider trouble of any kind: the offline summary stands in
        return fallback
