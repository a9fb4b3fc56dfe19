"""Chat models for `llm` nodes and LLM intent routing, and the message plumbing
between a call's transcript and an OpenAI-compatible chat model.

Any OpenAI-compatible endpoint works (OpenAI, Azure, vLLM, Ollama): the base URL
comes from `SWITCHBOARD_LLM_BASE_URL`, the graph's `llm.base_url` or
`OPENAI_BASE_URL`, in that order; the key from the environment variable the
graph names (`llm.api_key_env`, default `OPENAI_API_KEY`). Without a key and
without a base URL there is no model: `LLMUnavailable` says so.

Internal messages (a model's tool-call requests and the tool results) are kept
in the call's `messages` so a conversation replays exactly to the model on the
next turn; they carry `additional_kwargs["internal"] = True` and the agent's
graph id so transcripts can drop them and other agents never see them.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

import openai
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from schemas.spec import LLMSettings

ENV_MODEL = "SWITCHBOARD_LLM_MODEL"
ENV_BASE_URL = "SWITCHBOARD_LLM_BASE_URL"
ENV_OPENAI_BASE_URL = "OPENAI_BASE_URL"
#: Local OpenAI-compatible servers (vLLM, Ollama) ignore the key, but the client
#: refuses to start without one.
KEYLESS_API_KEY = "not-needed"
#: Retries on 5xx / connection errors; each retry costs a voice caller seconds.
DEFAULT_MAX_RETRIES = 1
MAX_TIMEOUT_S = 120.0
MIN_TIMEOUT_S = 0.05


class LLMUnavailable(RuntimeError):
    """No chat model can be made: no API key and no base URL, or a bad URL."""


def _base_url(settings: LLMSettings) -> str | None:
    url = os.environ.get(ENV_BASE_URL) or settings.base_url or os.environ.get(ENV_OPENAI_BASE_URL)
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise LLMUnavailable(f"LLM base URL {url!r} is not an http(s) URL")
    return url


def make_chat_model(
    settings: LLMSettings,
    *,
    model: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> BaseChatModel:
    """A streaming `ChatOpenAI` speaking the Chat Completions API.

    Model name: `model`, else `$SWITCHBOARD_LLM_MODEL`, else `settings.model`.
    The request timeout (also used as the longest silence between streamed
    chunks) is `settings.timeout_s` clamped to [0.05, 120] s. The model has its
    own connection pool: use it from one event loop. Raises `LLMUnavailable`
    when neither an API key nor a base URL is configured.
    """
    base_url = _base_url(settings)
    key = os.environ.get(settings.api_key_env)
    if not key and base_url is None:
        raise LLMUnavailable(
            f"no LLM configured: set ${settings.api_key_env} (API key) or "
            f"${ENV_BASE_URL} / llm.base_url (an OpenAI-compatible server)"
        )
    timeout = min(max(settings.timeout_s, MIN_TIMEOUT_S), MAX_TIMEOUT_S)
    return ChatOpenAI(
        model=model or os.environ.get(ENV_MODEL) or settings.model,
        base_url=base_url,
        api_key=SecretStr(key or KEYLESS_API_KEY),
        temperature=settings.temperature,
        timeout=timeout,
        max_retries=max(0, min(max_retries, 3)),
        streaming=True,
        stream_chunk_timeout=timeout,
        use_responses_api=False,
        # Own connection pool: langchain-openai's shared default client would
        # carry connections of one event loop into another.
        http_async_client=openai.DefaultAsyncHttpxClient(),
    )


def default_llm_factory(
    *, max_retries: int = DEFAULT_MAX_RETRIES
) -> Callable[[LLMSettings], BaseChatModel]:
    """A factory for `CallContext.llm_factory` that makes one model per distinct
    settings value and event loop, and reuses it. A model's connection pool
    belongs to the loop that opened it, so models are never shared between
    loops; those of closed loops are dropped. Environment overrides are read
    when a model is first made."""
    lock = threading.Lock()
    cache: dict[tuple[int, LLMSettings], tuple[asyncio.AbstractEventLoop, BaseChatModel]] = {}

    def factory(settings: LLMSettings) -> BaseChatModel:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return make_chat_model(settings, max_retries=max_retries)
        with lock:
            for key in [k for k, (lp, _) in cache.items() if lp.is_closed()]:
                del cache[key]
            entry = cache.get((id(loop), settings))
            if entry is None or entry[0] is not loop:
                entry = (loop, make_chat_model(settings, max_retries=max_retries))
                cache[(id(loop), settings)] = entry
            return entry[1]

    return factory


def is_internal(message: BaseMessage) -> bool:
    """True for tool-call requests and tool results: kept for replay, never shown."""
    return bool(message.additional_kwargs.get("internal"))


def internal_kwargs(agent: str, node: str) -> dict[str, Any]:
    """`additional_kwargs` tagging an internal message with its agent and node."""
    return {"internal": True, "agent": agent, "node": node}


def _agent_of(message: BaseMessage) -> str | None:
    agent = message.additional_kwargs.get("agent")
    if isinstance(agent, str):
        return agent
    return message.name


def model_messages(messages: Sequence[BaseMessage], agent: str) -> list[BaseMessage]:
    """The call's conversation as `agent`'s model should see it.

    Keeps the caller's turns and `agent`'s own lines, tool-call requests and tool
    results; drops other agents' messages. Copies carry no names or tags, and a
    tool-call request is kept only together with a result for each of its calls
    (the API rejects unanswered calls).
    """
    mine: list[BaseMessage] = []
    for m in messages:
        if isinstance(m, HumanMessage):
            mine.append(HumanMessage(content=m.content))
        elif isinstance(m, AIMessage) and _agent_of(m) == agent:
            mine.append(
                AIMessage(
                    content=m.content,
                    tool_calls=m.tool_calls,
                    invalid_tool_calls=m.invalid_tool_calls,
                )
            )
        elif isinstance(m, ToolMessage) and is_internal(m) and _agent_of(m) == agent:
            mine.append(ToolMessage(content=m.content, tool_call_id=m.tool_call_id))
    answered = {m.tool_call_id for m in mine if isinstance(m, ToolMessage)}
    requested: set[str] = set()
    out: list[BaseMessage] = []
    for m in mine:
        if isinstance(m, AIMessage) and (m.tool_calls or m.invalid_tool_calls):
            ids = [c["id"] for c in [*m.tool_calls, *m.invalid_tool_calls] if c["id"]]
            if not set(ids) <= answered:
                continue
            requested.update(ids)
        if isinstance(m, ToolMessage) and m.tool_call_id not in requested:
            continue
        out.append(m)
    return out


def chunk_text(chunk: AIMessageChunk) -> str:
    """The text part of a streamed chunk (string or content-block content)."""
    content = chunk.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


async def stream_reply(
    model: Runnable[LanguageModelInput, Any],
    messages: Sequence[BaseMessage],
    on_token: Callable[[str], None],
    *,
    stop: asyncio.Event | None = None,
) -> AIMessage:
    """Stream one model response, passing each text fragment to `on_token` as it
    arrives; return the whole response (text and tool calls) as one message.
    Model and transport errors propagate.

    When `stop` is set (a caller barge-in), consumption ends at once and the
    response closes; the text generated so far is returned without any tool
    calls, with `response_metadata["stopped"] = True`."""
    if stop is not None and stop.is_set():
        return AIMessage(content="", response_metadata={"stopped": True})
    full: AIMessageChunk | None = None
    stream = model.astream(list(messages))
    try:
        async for item in stream:
            # Models without real streaming yield one whole AIMessage.
            if isinstance(item, AIMessageChunk):
                chunk = item
            elif isinstance(item, AIMessage):
                chunk = AIMessageChunk(
                    content=item.content,
                    tool_call_chunks=[
                        {
                            "name": c["name"],
                            "args": json.dumps(c["args"]),
                            "id": c["id"],
                            "index": i,
                        }
                        for i, c in enumerate(item.tool_calls)
                    ],
                    response_metadata=item.response_metadata,
                )
            else:
                continue
            text = chunk_text(chunk)
            if text:
                on_token(text)
            full = chunk if full is None else full + chunk
            if stop is not None and stop.is_set():
                return AIMessage(content=chunk_text(full), response_metadata={"stopped": True})
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
    if full is None:
        return AIMessage(content="")
    return AIMessage(
        content=chunk_text(full),
        tool_calls=full.tool_calls,
        invalid_tool_calls=full.invalid_tool_calls,
        response_metadata=full.response_metadata,
    )
