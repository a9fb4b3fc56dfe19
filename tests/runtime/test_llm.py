"""Chat model factory, transcript-to-model plumbing, LLM intent classification,
and the fake OpenAI server's wire format as the official SDK reads it."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from runtime.intents import IntentConfigError, IntentMatch
from runtime.intents_llm import (
    NO_INTENT,
    LLMIntentSet,
    classification_prompt,
    make_llm_intent_set_factory,
)
from runtime.llm import (
    ENV_BASE_URL,
    ENV_MODEL,
    ENV_OPENAI_BASE_URL,
    LLMUnavailable,
    default_llm_factory,
    internal_kwargs,
    make_chat_model,
    model_messages,
    stream_reply,
)
from schemas.spec import GraphSpec, LLMSettings
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    error,
    json_reply,
    openai_server_fixture,  # noqa: F401  (provides the `openai_server` fixture)
    reply,
    tool_call,
)

pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")

INTENTS = {
    "book": ["book an appointment", "I need a cleaning"],
    "billing": ["question about my bill", "why was I charged twice"],
}


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_BASE_URL, ENV_MODEL, ENV_OPENAI_BASE_URL, "OPENAI_API_KEY", "MY_KEY"):
        monkeypatch.delenv(name, raising=False)


# -- make_chat_model -----------------------------------------------------------


def test_no_key_and_no_base_url_is_a_clear_error() -> None:
    with pytest.raises(LLMUnavailable, match=r"\$OPENAI_API_KEY"):
        make_chat_model(LLMSettings())


def test_bad_base_url_is_a_clear_error() -> None:
    with pytest.raises(LLMUnavailable, match="not an http"):
        make_chat_model(LLMSettings(base_url="localhost:8000"))


async def test_key_from_named_env_var_and_env_overrides(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", "sk-test-123")
    monkeypatch.setenv(ENV_BASE_URL, openai_server.base_url)
    monkeypatch.setenv(ENV_MODEL, "override-model")
    settings = LLMSettings(api_key_env="MY_KEY", base_url="http://unused.invalid/v1")
    model = make_chat_model(settings, max_retries=0)
    openai_server.script(reply("Hi."))
    answer = await model.ainvoke("hello")
    assert answer.content == "Hi."
    request = openai_server.requests[0]
    assert request.headers["authorization"] == "Bearer sk-test-123"
    assert request.body["model"] == "override-model"
    assert request.stream


async def test_openai_base_url_env_is_used_without_a_key(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_OPENAI_BASE_URL, openai_server.base_url)
    model = make_chat_model(LLMSettings(), model="node-model", max_retries=0)
    openai_server.script(reply("ok"))
    await model.ainvoke("hi")
    assert openai_server.requests[0].body["model"] == "node-model"


async def test_default_factory_reuses_models_per_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    factory = default_llm_factory()
    a = factory(LLMSettings(model="m1"))
    assert factory(LLMSettings(model="m1")) is a
    assert factory(LLMSettings(model="m2")) is not a


def test_default_factory_models_work_across_event_loops(openai_server: FakeOpenAIServer) -> None:
    factory = default_llm_factory(max_retries=0)
    settings = LLMSettings(base_url=openai_server.base_url)
    openai_server.script(reply("one"), reply("two"))

    async def ask() -> tuple[object, str]:
        model = factory(settings)
        return model, str((await model.ainvoke("hi")).content)

    first_model, first = asyncio.run(ask())
    second_model, second = asyncio.run(ask())  # a pooled connection of a closed loop breaks
    assert (first, second) == ("one", "two")
    assert first_model is not second_model


def test_timeout_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    model = make_chat_model(LLMSettings(timeout_s=10_000), max_retries=99)
    assert getattr(model, "request_timeout", None) == 120.0
    assert getattr(model, "max_retries", None) == 3


# -- transcript plumbing -------------------------------------------------------


def test_model_messages_keep_caller_and_own_agent_only() -> None:
    mine = internal_kwargs("billing", "chat")
    theirs = internal_kwargs("front", "chat")
    call = {"name": "accounts__lookup", "args": {}, "id": "c1", "type": "tool_call"}
    other = {"name": "x", "args": {}, "id": "c9", "type": "tool_call"}
    history = [
        AIMessage("Front desk here.", name="front"),
        HumanMessage("billing please"),
        AIMessage("", tool_calls=[other], name="front", additional_kwargs=theirs),
        ToolMessage("{}", tool_call_id="c9", additional_kwargs=theirs),
        AIMessage("Billing here.", name="billing", additional_kwargs={"node": "hi"}),
        AIMessage("", tool_calls=[call], name="billing", additional_kwargs=mine),
        ToolMessage('{"found": true}', tool_call_id="c1", additional_kwargs=mine),
        # a request whose answer is missing is dropped, or the API would reject it
        AIMessage("", tool_calls=[{**call, "id": "c2"}], name="billing", additional_kwargs=mine),
        HumanMessage("thanks"),
    ]
    out = model_messages(history, "billing")
    assert [type(m).__name__ for m in out] == [
        "HumanMessage",
        "AIMessage",
        "AIMessage",
        "ToolMessage",
        "HumanMessage",
    ]
    assert out[1].content == "Billing here."
    assert all(m.name is None and not m.additional_kwargs for m in out)


async def test_stream_reply_collects_text_and_tool_calls(openai_server: FakeOpenAIServer) -> None:
    openai_server.script(
        reply("Checking now.", tool_call("accounts__lookup", {"phone": "+15550100"}, id="t1"))
    )
    model = make_chat_model(LLMSettings(base_url=openai_server.base_url), max_retries=0)
    tokens: list[str] = []
    answer = await stream_reply(model, [HumanMessage("hi")], tokens.append)
    assert "".join(tokens) == "Checking now." == answer.content
    assert len(tokens) == 2
    assert answer.tool_calls == [
        {
            "name": "accounts__lookup",
            "args": {"phone": "+15550100"},
            "id": "t1",
            "type": "tool_call",
        }
    ]


# -- the fake server, read by the official SDK --------------------------------


async def test_fake_server_non_streaming_and_streaming_tool_calls(
    openai_server: FakeOpenAIServer,
) -> None:
    client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    call = tool_call("calendar__book", {"day": "2026-01-06", "time": "09:30"}, id="x1")
    openai_server.script(reply("Booking.", call), reply("", call), error(429, "slow down"))
    msgs: Any = [{"role": "user", "content": "book"}]

    done = await client.chat.completions.create(model="m", messages=msgs)
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Booking."
    assert choice.message.tool_calls is not None
    fn = choice.message.tool_calls[0].function  # type: ignore[union-attr]
    assert (fn.name, fn.arguments) == ("calendar__book", '{"day": "2026-01-06", "time": "09:30"}')

    stream = await client.chat.completions.create(
        model="m", messages=msgs, stream=True, stream_options={"include_usage": True}
    )
    args, names, finish, usage = "", [], None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            for d in c.delta.tool_calls or []:
                assert d.index == 0
                if d.function and d.function.name:
                    names.append((d.id, d.function.name))
                if d.function and d.function.arguments:
                    args += d.function.arguments
            finish = c.finish_reason or finish
    assert names == [("x1", "calendar__book")]
    assert args == '{"day": "2026-01-06", "time": "09:30"}'
    assert finish == "tool_calls" and usage is not None

    with pytest.raises(openai.RateLimitError, match="slow down"):
        await client.chat.completions.create(model="m", messages=msgs)
    assert openai_server.pending == 0 and openai_server.unscripted == 0


# -- LLM intent classification -------------------------------------------------


class FixedMatcher:
    def __init__(self, match: IntentMatch) -> None:
        self.match = match
        self.calls: list[str] = []

    async def classify(self, text: str) -> IntentMatch:
        self.calls.append(text)
        return self.match


def intent_set(server: FakeOpenAIServer, **kwargs: Any) -> LLMIntentSet:
    settings = LLMSettings(base_url=server.base_url)
    return LLMIntentSet(
        INTENTS,
        settings=settings,
        llm_factory=lambda s: make_chat_model(s, max_retries=0),
        **kwargs,
    )


async def test_llm_classification_uses_structured_output(openai_server: FakeOpenAIServer) -> None:
    openai_server.script(json_reply({"intent": "billing", "confidence": 0.92}))
    match = await intent_set(openai_server).classify("you charged me two times")
    assert match == IntentMatch("billing", 0.92, {"book": 0.0, "billing": 0.92})

    request = openai_server.requests[0]
    fmt = request.response_format
    assert fmt is not None and fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert schema["properties"]["intent"]["enum"] == ["book", "billing", NO_INTENT]
    assert set(schema["required"]) == {"intent", "confidence"}
    assert request.system is not None
    assert '"why was I charged twice"' in request.system and "- book" in request.system
    assert request.messages[-1] == {"role": "user", "content": "you charged me two times"}


async def test_llm_says_none_or_low_confidence_means_no_intent(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.script(
        json_reply({"intent": "none", "confidence": 0.8}),
        json_reply({"intent": "book", "confidence": 0.4}),
    )
    intents = intent_set(openai_server, threshold=0.6)
    assert (await intents.classify("what's the weather")).name is None
    low = await intents.classify("maybe something with teeth")
    assert low.name is None and low.scores["book"] == 0.4


async def test_llm_failure_falls_back_to_embedded_set(openai_server: FakeOpenAIServer) -> None:
    backup = FixedMatcher(IntentMatch("book", 0.7, {"book": 0.7, "billing": 0.1}))
    openai_server.script(error(500), json_reply({"intent": "nonsense", "confidence": 2}))
    intents = intent_set(openai_server, fallback=backup)
    assert (await intents.classify("I need a cleaning")).name == "book"
    # an answer outside the schema is a failure too
    assert (await intents.classify("cleaning please")).name == "book"
    assert backup.calls == ["I need a cleaning", "cleaning please"]


async def test_llm_failure_without_fallback_is_no_intent() -> None:
    intents = LLMIntentSet(INTENTS)  # no model anywhere: outside a graph run
    match = await intents.classify("book me in")
    assert match == IntentMatch(None, 0.0, {"book": 0.0, "billing": 0.0})


def test_bad_intent_sets_are_rejected() -> None:
    with pytest.raises(IntentConfigError):
        LLMIntentSet({})
    with pytest.raises(IntentConfigError, match="reserved"):
        LLMIntentSet({"none": ["nothing"]})
    with pytest.raises(IntentConfigError, match="threshold"):
        LLMIntentSet(INTENTS, threshold=1.5)


def test_prompt_lists_descriptions_and_examples() -> None:
    text = classification_prompt(INTENTS, {"book": "make a dental appointment"})
    assert '- book: make a dental appointment. Examples: "book an appointment"' in text
    assert '- billing. Examples: "question about my bill"; "why was I charged twice"' in text


def test_factory_builds_llm_sets_with_fallback() -> None:
    spec = GraphSpec.model_validate(
        {
            "id": "g",
            "name": "g",
            "start": "a",
            "llm": {"model": "x"},
            "routing": {"classifier": "llm"},
            "nodes": {"a": {"type": "end"}},
        }
    )
    built: list[tuple[dict[str, list[str]], float | None]] = []

    def fallback(intents: dict[str, list[str]], threshold: float | None) -> FixedMatcher:
        built.append((intents, threshold))
        return FixedMatcher(IntentMatch(None, 0.0, {}))

    made = make_llm_intent_set_factory(spec, fallback=fallback)(INTENTS, 0.5)
    assert isinstance(made, LLMIntentSet)
    assert made.settings.model == "x" and made.threshold == 0.5
    assert built == [(INTENTS, 0.5)] and isinstance(made.fallback, FixedMatcher)


async def test_stream_reply_accepts_a_model_that_does_not_stream() -> None:
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage

    from runtime.llm import stream_reply

    reply = AIMessage(content="hello", tool_calls=[{"name": "t", "args": {"a": 1}, "id": "c1"}])
    model = FakeMessagesListChatModel(responses=[reply])
    tokens: list[str] = []
    got = await stream_reply(model, [], tokens.append)
    assert got.content == "hello"
    assert "".join(tokens) == "hello"
    assert [(c["name"], c["args"]) for c in got.tool_calls] == [("t", {"a": 1})]
