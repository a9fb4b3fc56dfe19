"""A local server speaking the OpenAI Chat Completions wire protocol, for tests.

`POST /v1/chat/completions` answers from a script the test writes: text, tool
calls, structured-output JSON, HTTP errors, or a delay/stall (to trigger client
timeouts). Non-streaming requests get a `chat.completion` object; `stream: true`
requests get Server-Sent Events of `chat.completion.chunk` objects exactly as
OpenAI sends them — a first delta with the role, content fragments, tool calls
as `tool_calls` deltas (id, type and name first with empty arguments, then
argument fragments by `index`), a last delta with `finish_reason`, a usage chunk
with empty `choices` when `stream_options.include_usage` is set, then
`data: [DONE]`. Every request body is recorded for assertions.

Use it as a context manager or through the `openai_server` fixture:

    from tests.fakes.openai_server import FakeOpenAIServer, reply, tool_call

    with FakeOpenAIServer() as server:
        server.script(reply("Hello!"), reply("", tool_call("calendar__book", {"day": "mon"})))
        settings = LLMSettings(base_url=server.base_url)
        ...
        assert server.requests[0].system == "..."

Other suites get the `openai_server` fixture by importing it:
`from tests.fakes.openai_server import openai_server_fixture  # noqa: F401`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tests.fakes.background import BackgroundServer, serve_in_thread

#: Longest a scripted delay or stall may hold a request; the server's shutdown
#: releases held requests sooner.
MAX_HOLD_S = 60.0


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call the fake model makes. A `str` `arguments` is sent verbatim
    (to script malformed JSON); a dict is JSON-encoded."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass(frozen=True)
class Scripted:
    """One scripted response.

    `status` >= 400 answers with an OpenAI-style error body. `delay_s` holds the
    request before any byte is sent; `stall_after` (streaming only) holds the
    stream after that many content/tool chunks. `chunks` sets the streamed
    content fragments explicitly (default: one per word).
    """

    text: str = ""
    tool_calls: tuple[FakeToolCall, ...] = ()
    status: int = 200
    error: str = ""
    delay_s: float = 0.0
    stall_after: int | None = None
    chunks: tuple[str, ...] | None = None

    def fragments(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return re.findall(r"\s*\S+\s*", self.text) if self.text.strip() else []


def reply(
    text: str = "",
    *tool_calls: FakeToolCall,
    chunks: tuple[str, ...] | None = None,
    delay_s: float = 0.0,
    stall_after: int | None = None,
) -> Scripted:
    """A model answer: text, tool calls, or both."""
    return Scripted(
        text=text, tool_calls=tool_calls, chunks=chunks, delay_s=delay_s, stall_after=stall_after
    )


def tool_call(
    name: str, arguments: dict[str, Any] | str | None = None, *, id: str | None = None
) -> FakeToolCall:
    """A function call by OpenAI function name (dots in tool names become `__`)."""
    return FakeToolCall(name=name, arguments={} if arguments is None else arguments, id=id)


def json_reply(obj: Any) -> Scripted:
    """A structured-output answer (`response_format: json_schema`): the JSON text."""
    return Scripted(text=json.dumps(obj), chunks=(json.dumps(obj),))


def error(status: int, message: str = "scripted failure") -> Scripted:
    """An HTTP error with OpenAI's error body."""
    return Scripted(status=status, error=message)


def delayed(delay_s: float) -> Scripted:
    """Hold the request (no byte sent) for `delay_s`, then answer empty."""
    return Scripted(delay_s=delay_s)


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def system(self) -> str | None:
        for m in self.messages:
            if m.get("role") in ("system", "developer"):
                return str(m.get("content"))
        return None

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.body.get("tools", []) or []]

    @property
    def response_format(self) -> dict[str, Any] | None:
        rf = self.body.get("response_format")
        return rf if isinstance(rf, dict) else None

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


class FakeOpenAIServer:
    """Chat Completions server on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Scripted] = deque()
        self._requests: list[RecordedRequest] = []
        self.unscripted = 0
        self._ids = itertools.count(1)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._background: BackgroundServer | None = None
        self._port = 0
        self.app = self._make_app()

    # -- test-side API ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (ends in `/v1`)."""
        return f"http://127.0.0.1:{self._port}/v1"

    def script(self, *replies: Scripted) -> None:
        """Queue responses; each request consumes the next one."""
        with self._lock:
            self._script.extend(replies)

    def clear(self) -> int:
        """Drop the replies not consumed yet; returns how many were dropped."""
        with self._lock:
            dropped = len(self._script)
            self._script.clear()
            return dropped

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def start(self) -> FakeOpenAIServer:
        self._background = serve_in_thread(
            self.app, self._ready, "fake OpenAI server", log_level="warning"
        )
        self._port = self._background.port
        return self

    def stop(self) -> None:
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)
        if self._background is not None:
            self._background.stop()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- server side -----------------------------------------------------------

    def _make_app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
            self._ready.set()
            yield

        app = FastAPI(lifespan=lifespan)

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}

        @app.post("/v1/chat/completions", response_model=None)
        async def chat(request: Request) -> JSONResponse | StreamingResponse:
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return _error_response(400, "request body is not JSON")
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                return _error_response(400, "'messages' is required")
            with self._lock:
                self._requests.append(RecordedRequest(body=body, headers=dict(request.headers)))
                scripted = self._script.popleft() if self._script else None
                if scripted is None:
                    self.unscripted += 1
            if scripted is None:
                return _error_response(500, "fake OpenAI server: no scripted response left")
            if scripted.delay_s:
                await self._hold(scripted.delay_s)
            if scripted.status >= 400:
                return _error_response(scripted.status, scripted.error)
            model = str(body.get("model", "fake-model"))
            cid = f"chatcmpl-{next(self._ids)}"
            calls = [(c, c.id or f"call_{next(self._ids)}") for c in scripted.tool_calls]
            if body.get("stream"):
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return StreamingResponse(
                    self._sse(scripted, calls, cid, model, usage),
                    media_type="text/event-stream",
                )
            return JSONResponse(_completion(scripted, calls, cid, model))

        return app

    async def _hold(self, seconds: float) -> None:
        assert self._release is not None
        with suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), min(seconds, MAX_HOLD_S))

    async def _sse(
        self,
        scripted: Scripted,
        calls: list[tuple[FakeToolCall, str]],
        cid: str,
        model: str,
        usage: bool,
    ) -> AsyncIterator[bytes]:
        created = int(time.time())

        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            chunk = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": choices,
                **extra,
            }
            if usage and "usage" not in extra:
                chunk["usage"] = None
            return f"data: {json.dumps(chunk)}\n\n".encode()

        def delta(d: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]

        sent = 0

        async def maybe_stall() -> None:
            if scripted.stall_after is not None and sent == scripted.stall_after:
                await self._hold(MAX_HOLD_S)

        yield event(delta({"role": "assistant", "content": "", "refusal": None}))
        for fragment in scripted.fragments():
            await maybe_stall()
            yield event(delta({"content": fragment}))
            sent += 1
        for index, (call, call_id) in enumerate(calls):
            await maybe_stall()
            head = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            yield event(delta({"tool_calls": [head]}))
            sent += 1
            args = call.arguments_json()
            for start in range(0, len(args), 8):
                piece = {"index": index, "function": {"arguments": args[start : start + 8]}}
                yield event(delta({"tool_calls": [piece]}))
        await maybe_stall()
        yield event(delta({}, "tool_calls" if calls else "stop"))
        if usage:
            yield event([], usage=_usage(scripted))
        yield b"data: [DONE]\n\n"


def _usage(scripted: Scripted) -> dict[str, int]:
    completion = len(scripted.text.split()) + sum(
        len(c.arguments_json()) // 4 for c in scripted.tool_calls
    )
    return {"prompt_tokens": 10, "completion_tokens": completion, "total_tokens": 10 + completion}


def _completion(
    scripted: Scripted, calls: list[tuple[FakeToolCall, str]], cid: str, model: str
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": scripted.text if scripted.text or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_json()},
            }
            for c, call_id in calls
        ]
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": _usage(scripted),
    }


def _error_response(status: int, message: str) -> JSONResponse:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": kind, "param": None, "code": None}},
    )


@pytest.fixture(name="openai_server")
def openai_server_fixture() -> Iterator[FakeOpenAIServer]:
    """A started `FakeOpenAIServer`, stopped after the test."""
    with FakeOpenAIServer() as server:
        yield server
