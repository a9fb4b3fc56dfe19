"""`llm` nodes run through the real compiler and call driver against a local
OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from runtime.compiler import compile_call
from runtime.context import CallContext
from runtime.llm import ENV_BASE_URL, ENV_MODEL, ENV_OPENAI_BASE_URL, is_internal, make_chat_model
from runtime.session import CallEvent, CallSession
from schemas.loader import load_graph_text
from schemas.spec import GraphSpec, LLMSettings
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    delayed,
    error,
    json_reply,
    openai_server_fixture,  # noqa: F401  (provides the `openai_server` fixture)
    reply,
    tool_call,
)
from tools.registry import Tool, ToolRegistry

# langchain-openai's structured-output parse trips a pydantic serializer warning
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")

GRAPH = """
schema: switchboard/v1
id: helpdesk
name: Help desk
start: chat
fallback_line: Sorry, I'm having trouble right now.
variables: {{company: Acme}}
llm: {{model: fake-model, base_url: "{base_url}", timeout_s: {timeout}}}
nodes:
  chat:
    type: llm
    prompt: You are the {{company}} help desk. Be brief.
    greeting: Hi, this is {{company}}. How can I help?
    tools: [orders.status]
    exits:
      done: {{description: The caller's question is answered, next: bye}}
      human: {{description: The caller wants a person, next: transfer}}
    max_turns: {max_turns}
{on_error}
  bye: {{type: end, text: Goodbye!}}
  transfer: {{type: escalate, reason: caller needs a person, say: Transferring you now.}}
"""

FIXED_NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_BASE_URL, ENV_MODEL, ENV_OPENAI_BASE_URL, "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def orders() -> Iterator[list[dict[str, Any]]]:
    """Calls that reached the tool's implementation."""
    yield []


def registry(calls: list[dict[str, Any]]) -> ToolRegistry:
    async def status(order_id: str) -> dict[str, Any]:
        calls.append({"order_id": order_id})
        return {"order_id": order_id, "status": "shipped"}

    return ToolRegistry(
        [
            Tool(
                name="orders.status",
                description="Look up an order's delivery status.",
                parameters={
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                    "additionalProperties": False,
                },
                func=status,
            )
        ]
    )


def no_retry_factory() -> Callable[[LLMSettings], BaseChatModel]:
    return lambda settings: make_chat_model(settings, max_retries=0)


def graph(
    server: FakeOpenAIServer, *, on_error: bool = True, max_turns: int = 5, timeout: float = 5.0
) -> GraphSpec:
    text = GRAPH.format(
        base_url=server.base_url,
        timeout=timeout,
        max_turns=max_turns,
        on_error="    on_error: transfer" if on_error else "",
    )
    loaded = load_graph_text(text, "helpdesk.yaml")
    assert loaded.spec is not None, [d.format() for d in loaded.diagnostics]
    return loaded.spec


def session(
    spec: GraphSpec,
    calls: list[dict[str, Any]],
    factory: Callable[[LLMSettings], BaseChatModel] | None = None,
) -> CallSession:
    compiled = compile_call(spec, checkpointer=InMemorySaver())
    context = CallContext(tools=registry(calls), clock=lambda: FIXED_NOW, llm_factory=factory)
    return CallSession(compiled, context=context, call_id="call-1")


def agent_lines(events: list[CallEvent]) -> list[str]:
    return [e.data["text"] for e in events if e.type == "agent"]


def outcome(events: list[CallEvent]) -> dict[str, Any] | None:
    found = [e.data for e in events if e.type == "outcome"]
    return found[-1] if found else None


async def test_greets_then_waits_without_calling_the_model(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    call = session(graph(openai_server), orders, no_retry_factory())
    events = await call.start()
    assert agent_lines(events) == ["Hi, this is Acme. How can I help?"]
    assert any(e.type == "waiting" and e.data["node"] == "chat" for e in events)
    assert openai_server.requests == []


async def test_streams_tokens_and_the_agent_line_is_their_concatenation(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    openai_server.script(reply(chunks=("Orders usually", " arrive", " in three days.")))
    call = session(graph(openai_server), orders, no_retry_factory())
    await call.start()
    events = await call.send("how long does delivery take")
    tokens = [e.data["text"] for e in events if e.type == "token"]
    assert tokens == ["Orders usually", " arrive", " in three days."]
    assert all(e.data["node"] == "chat" for e in events if e.type == "token")
    assert agent_lines(events) == ["".join(tokens)]
    assert any(e.type == "waiting" for e in events)

    request = openai_server.requests[0]
    assert request.stream
    assert request.system is not None
    assert request.system.startswith("You are the Acme help desk. Be brief.")
    assert "exit_done: The caller's question is answered" in request.system
    assert request.tool_names == ["orders__status", "exit_done", "exit_human"]
    roles = [(m["role"], m.get("content")) for m in request.messages]
    assert roles[1:] == [
        ("assistant", "Hi, this is Acme. How can I help?"),
        ("user", "how long does delivery take"),
    ]
    state = await call.state()
    assert state["attempts"]["chat"] == 1


async def test_tool_call_round_trip_is_recorded_and_replayed(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    openai_server.script(
        reply("Let me check.", tool_call("orders__status", {"order_id": "A17"}, id="call_a")),
        reply("Order A17 has shipped."),
        reply("You're welcome."),
    )
    call = session(graph(openai_server), orders, no_retry_factory())
    await call.start()
    events = await call.send("where is order A17")
    assert orders == [{"order_id": "A17"}]
    assert agent_lines(events) == ["Let me check.", "Order A17 has shipped."]
    tools = [e.data for e in events if e.type == "tool"]
    assert len(tools) == 1
    assert tools[0]["name"] == "orders.status"
    assert tools[0]["args"] == {"order_id": "A17"}
    assert tools[0]["result"] == {"order_id": "A17", "status": "shipped"}
    assert tools[0]["error"] is None and tools[0]["node"] == "chat"

    second = openai_server.requests[1].messages
    assert second[-2]["role"] == "assistant"
    assert second[-2]["tool_calls"][0]["id"] == "call_a"
    assert second[-2]["tool_calls"][0]["function"]["name"] == "orders__status"
    assert second[-1] == {
        "role": "tool",
        "tool_call_id": "call_a",
        "content": json.dumps({"order_id": "A17", "status": "shipped"}),
    }

    # the next turn replays the tool exchange in order
    await call.send("thanks")
    third = openai_server.requests[2].messages
    assert [m["role"] for m in third] == [
        "system",
        "assistant",
        "user",
        "assistant",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    state = await call.state()
    visible = [m for m in state["messages"] if not is_internal(m)]
    assert [m.content for m in visible if isinstance(m, AIMessage)] == [
        "Hi, this is Acme. How can I help?",
        "Let me check.",
        "Order A17 has shipped.",
        "You're welcome.",
    ]
    assert not any(isinstance(m, ToolMessage) for m in visible)
    assert len(state["tool_calls"]) == 1


async def test_bad_tool_arguments_go_back_to_the_model(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    openai_server.script(
        reply("", tool_call("orders__status", {"order": 17}, id="call_b")),
        reply("What is your order number?"),
    )
    call = session(graph(openai_server), orders, no_retry_factory())
    await call.start()
    events = await call.send("where is my order")
    assert orders == []  # the implementation never ran
    record = next(e.data for e in events if e.type == "tool")
    assert record["result"] is None
    assert "order_id" in record["error"] and "required" in record["error"]
    fed_back = openai_server.requests[1].messages[-1]
    assert fed_back["role"] == "tool" and fed_back["tool_call_id"] == "call_b"
    assert "order_id" in json.loads(fed_back["content"])["error"]
    assert agent_lines(events) == ["What is your order number?"]
    assert outcome(events) is None


async def test_exit_function_leaves_through_that_exit(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    openai_server.script(reply("Glad I could help.", tool_call("exit_done")))
    call = session(graph(openai_server), orders, no_retry_factory())
    await call.start()
    events = await call.send("that's all, thanks")
    assert agent_lines(events) == ["Glad I could help.", "Goodbye!"]
    assert [e.data["node"] for e in events if e.type == "node"] == ["bye"]
    assert outcome(events) == {"outcome": "completed", "reason": None}
    state = await call.state()
    internal = [m for m in state["messages"] if is_internal(m)]
    assert [type(m).__name__ for m in internal] == ["AIMessage", "ToolMessage"]


async def test_server_error_says_fallback_line_and_follows_on_error(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    openai_server.script(error(500, "upstream exploded"))
    call = session(graph(openai_server), orders, no_retry_factory())
    await call.start()
    events = await call.send("hello?")
    assert agent_lines(events) == ["Sorry, I'm having trouble right now.", "Transferring you now."]
    assert outcome(events) is not None and outcome(events)["outcome"] == "escalated"  # type: ignore[index]
    state = await call.state()
    assert "upstream exploded" in state["vars"]["error"]


async def test_server_error_without_on_error_fails_the_call(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    openai_server.script(error(503, "overloaded"))
    call = session(graph(openai_server, on_error=False), orders, no_retry_factory())
    await call.start()
    events = await call.send("hello?")
    assert agent_lines(events) == ["Sorry, I'm having trouble right now."]
    result = outcome(events)
    assert result is not None and result["outcome"] == "failed"
    assert "llm node chat" in result["reason"] and "overloaded" in result["reason"]


async def test_timeout_says_fallback_line_and_follows_on_error(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    openai_server.script(delayed(30))  # released when the server stops
    call = session(graph(openai_server, timeout=0.3), orders, no_retry_factory())
    await call.start()
    events = await call.send("are you there?")
    assert agent_lines(events) == ["Sorry, I'm having trouble right now.", "Transferring you now."]
    assert "Timeout" in (await call.state())["vars"]["error"]


async def test_no_llm_configured_takes_the_error_path(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    call = session(graph(openai_server, on_error=False), orders, factory=None)
    await call.start()
    events = await call.send("hello")
    assert agent_lines(events) == ["Sorry, I'm having trouble right now."]
    result = outcome(events)
    assert result is not None and "no LLM is configured" in result["reason"]
    assert openai_server.requests == []


async def test_max_turns_leaves_through_on_error_after_the_last_answer(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    openai_server.script(reply("One."), reply("Two."))
    call = session(graph(openai_server, max_turns=2), orders, no_retry_factory())
    await call.start()
    first = await call.send("a")
    assert agent_lines(first) == ["One."] and outcome(first) is None
    second = await call.send("b")
    assert agent_lines(second) == ["Two.", "Transferring you now."]
    assert outcome(second) is not None and outcome(second)["outcome"] == "escalated"  # type: ignore[index]
    assert "max_turns" in (await call.state())["vars"]["error"]


async def test_endless_tool_calls_are_cut_off(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    from nodes.llm import MAX_TOOL_ROUNDS

    openai_server.script(
        *[
            reply("", tool_call("orders__status", {"order_id": str(i)}))
            for i in range(MAX_TOOL_ROUNDS)
        ]
    )
    call = session(graph(openai_server, on_error=False), orders, no_retry_factory())
    await call.start()
    events = await call.send("check everything")
    assert len(orders) == MAX_TOOL_ROUNDS
    assert len([e for e in events if e.type == "tool"]) == MAX_TOOL_ROUNDS
    result = outcome(events)
    assert result is not None and "still called tools" in result["reason"]
    # the conversation stays valid for replay: each call answered by a tool message
    state = await call.state()
    calls = [m for m in state["messages"] if isinstance(m, AIMessage) and m.tool_calls]
    answers = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert len(calls) == len(answers) == MAX_TOOL_ROUNDS


ROUTED = """
schema: switchboard/v1
id: front
name: Front desk
start: route
llm: {{model: fake-model, base_url: "{base_url}", timeout_s: 5}}
routing: {{classifier: llm}}
nodes:
  route:
    type: route
    prompt: How can I help?
    intents:
      orders: {{examples: [where is my order, track my package], next: chat}}
      hours: {{examples: [when are you open, opening hours], next: bye}}
    fallback: bye
  chat:
    type: llm
    prompt: You answer questions about orders.
    exits:
      done: {{description: The question is answered, next: bye}}
  bye: {{type: end, text: Goodbye!}}
"""


async def test_route_classified_by_llm_hands_the_turn_to_an_llm_node(
    openai_server: FakeOpenAIServer, orders: list[dict[str, Any]]
) -> None:
    loaded = load_graph_text(ROUTED.format(base_url=openai_server.base_url), "front.yaml")
    assert loaded.spec is not None, [d.format() for d in loaded.diagnostics]
    openai_server.script(
        json_reply({"intent": "orders", "confidence": 0.9}),
        reply("It left our warehouse this morning."),
    )
    call = session(loaded.spec, orders, no_retry_factory())
    assert agent_lines(await call.start()) == ["How can I help?"]
    events = await call.send("my parcel hasn't come yet")
    intent = next(e.data for e in events if e.type == "intent")
    assert (intent["name"], intent["confidence"]) == ("orders", 0.9)
    # the llm node answers the routed turn at once instead of asking again
    assert agent_lines(events) == ["It left our warehouse this morning."]
    classify, answer = openai_server.requests
    assert classify.response_format is not None and classify.tool_names == []
    assert answer.messages[-1] == {"role": "user", "content": "my parcel hasn't come yet"}
    assert answer.tool_names == ["exit_done"]
