"""The WebSocket voice transport: `/ws/call/{session_id}`.

Protocol (one call per connection):

- binary frames, both ways: 16 kHz 16-bit little-endian mono PCM. Caller
  frames must hold whole samples and at most `max_binary_bytes`; agent audio
  comes in frames of up to `AGENT_CHUNK_MS` (100 ms), paced in real time;
- text frames from the server: JSON events `{"type": ...}` — `ready` (call id,
  sample rate), `transcript` (interim and final), `caller` (the caller's
  turn), `agent` (an agent line), `node`, `slot`, `intent`, `tool`, `heard`,
  `barge_in`, `clear` (drop buffered agent audio now), `waiting` (the agent has
  finished and listens), `metrics` (per turn), `error`, `outcome`, `hangup`;
- text frames from the client: `{"type": "hangup"}` ends the call.

A malformed frame closes that call alone, with a reason: non-JSON text, a
JSON value that is not an object with a string `type`, or an unknown event
type -> 4400; an odd-length binary frame (not 16-bit PCM) -> 1003; a frame
over the size limit -> 1009. Unknown graphs close with 4404, a call that
cannot start (provider unavailable) with 1011.

Given a `recordings` hook, the route records each call (caller and agent audio
on two channels, `runtime.voice.recording`) and hands the recording to the hook
once the call is over.

`voice_router()` builds the route for the service (which adds JWT auth through
the `auth` dependency hook); `create_voice_app()` is a small app for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from runtime.compiler import CompiledCall, compile_call
from runtime.session import CallSession
from runtime.voice.frames import AgentAudioFrame, UserAudioFrame
from runtime.voice.pipeline import EventHook, VoicePipeline
from runtime.voice.providers.base import VAD, ProviderError, STTProvider, TTSProvider
from runtime.voice.recording import CallAudioRecorder
from runtime.voice.stages.base import PipelineConfig
from runtime.voice.transport import Transport, TransportClosed
from schemas.diagnostics import GraphError
from tools.registry import ToolRegistry

log = logging.getLogger("switchboard.voice.websocket")

RATE = 16000
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_BAD_FRAME = 4400
CLOSE_NOT_FOUND = 4404
#: Two seconds of audio: far more than a client needs per frame.
DEFAULT_MAX_BINARY_BYTES = 64_000
MAX_TEXT_CHARS = 4096
#: Agent audio per binary frame sent: fewer, larger messages than 20 ms ones
#: (a fifth of the sends, timers and recording calls per call), still paced in
#: real time, and a barge-in `clear` drops what the client has buffered.
AGENT_CHUNK_MS = 100.0
#: WebSocket close reasons are limited to 123 bytes of UTF-8.
MAX_REASON_BYTES = 123
CLIENT_EVENTS = frozenset({"hangup"})
SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


class FrameError(TransportClosed):
    """The client sent a frame that breaks the protocol; the call closes with
    `code` and the message as reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _reason(text: str) -> str:
    data = text.encode("utf-8")[:MAX_REASON_BYTES]
    return data.decode("utf-8", errors="ignore")


class WebSocketTransport:
    """One call over an accepted Starlette/FastAPI WebSocket."""

    name = "websocket"
    sample_rate = RATE

    def __init__(
        self,
        websocket: WebSocket,
        *,
        max_binary_bytes: int = DEFAULT_MAX_BINARY_BYTES,
        recording: CallAudioRecorder | None = None,
    ) -> None:
        """`recording`, if given, receives the caller audio accepted and the
        agent audio sent (and the barge-in cuts)."""
        self.websocket = websocket
        self.max_binary_bytes = max_binary_bytes
        self.recording = recording
        self._send_lock = asyncio.Lock()
        self._gone = False
        self.close_code: int | None = None
        self.close_reason = ""

    async def incoming(self) -> AsyncIterator[UserAudioFrame]:
        """Caller audio until the client hangs up or disconnects; a malformed
        frame raises `FrameError` (after which the call closes with its code)."""
        while True:
            try:
                message = await self.websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                self._gone = True
                return
            if message["type"] == "websocket.disconnect":
                self._gone = True
                return
            data = message.get("bytes")
            if data is not None:
                yield self._audio(data)
                continue
            if self._client_event(message.get("text") or "") == "hangup":
                return

    def _audio(self, data: bytes) -> UserAudioFrame:
        if len(data) > self.max_binary_bytes:
            raise self._fail(
                CLOSE_TOO_BIG,
                f"audio frame of {len(data)} bytes exceeds {self.max_binary_bytes} bytes",
            )
        if len(data) % 2:
            raise self._fail(
                CLOSE_UNSUPPORTED,
                f"audio frame of {len(data)} bytes is not 16-bit PCM (odd length)",
            )
        if self.recording is not None:
            self.recording.caller(data, RATE)
        return UserAudioFrame(pcm=data, sample_rate=RATE)

    def _client_event(self, text: str) -> str:
        if len(text) > MAX_TEXT_CHARS:
            raise self._fail(CLOSE_TOO_BIG, f"text frame over {MAX_TEXT_CHARS} characters")
        try:
            event = json.loads(text)
        except ValueError:
            raise self._fail(CLOSE_BAD_FRAME, "text frame is not JSON") from None
        kind = event.get("type") if isinstance(event, dict) else None
        if not isinstance(kind, str):
            raise self._fail(CLOSE_BAD_FRAME, 'event must be a JSON object with a "type"')
        if kind not in CLIENT_EVENTS:
            known = ", ".join(sorted(CLIENT_EVENTS))
            raise self._fail(CLOSE_BAD_FRAME, f"unknown event type {kind[:40]!r} (known: {known})")
        return kind

    def _fail(self, code: int, reason: str) -> FrameError:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        return FrameError(code, reason)

    async def _send(self, message: str | bytes) -> None:
        if self._gone:
            return
        async with self._send_lock:
            if self.websocket.client_state != WebSocketState.CONNECTED:
                self._gone = True
                return
            try:
                if isinstance(message, bytes):
                    await self.websocket.send_bytes(message)
                else:
                    await self.websocket.send_text(message)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self._gone = True  # the reader sees the disconnect and ends the call

    async def play(self, frame: AgentAudioFrame) -> None:
        if self.recording is not None and not self._gone:
            self.recording.agent(frame.pcm, frame.sample_rate)
        await self._send(frame.pcm)

    async def clear(self) -> None:
        if self.recording is not None:
            self.recording.clear()
        await self._send(json.dumps({"type": "clear"}))

    async def event(self, name: str, data: dict[str, object]) -> None:
        await self._send(json.dumps({"type": name, **data}, default=str))

    async def close(self, reason: str = "", *, code: int | None = None) -> None:
        """Close the connection: with the code of a protocol error if there was
        one, else `code` (default 1000)."""
        if self.close_code is None:
            self.close_code = code or CLOSE_NORMAL
            self.close_reason = reason
        if self._gone:
            return
        async with self._send_lock:
            self._gone = True
            if self.websocket.client_state == WebSocketState.CONNECTED:
                with contextlib.suppress(RuntimeError, OSError):
                    await self.websocket.close(self.close_code, _reason(self.close_reason))


# --- calls for the route -------------------------------------------------------


@dataclass
class VoiceCall:
    """Everything one call needs besides its transport. `observe`, if given,
    is handed the call's pipeline and returns a hook that sees each of its
    events as it is emitted (the service publishes and records them)."""

    session: CallSession
    vad: VAD
    stt: STTProvider
    tts: TTSProvider
    config: PipelineConfig
    observe: Callable[[VoicePipeline], EventHook] | None = None

    def pipeline(self, transport: Transport) -> VoicePipeline:
        """This call's voice pipeline over `transport`, observed if asked."""
        pipeline = VoicePipeline(
            self.session, transport, vad=self.vad, stt=self.stt, tts=self.tts, config=self.config
        )
        if self.observe is not None:
            pipeline.on_event = self.observe(pipeline)
        return pipeline


class GraphNotFound(LookupError):
    """No graph with the requested id."""


#: `(session_id, graph id or None, caller or None) -> VoiceCall`.
CallSetup = Callable[[str, str | None, str | None], Awaitable[VoiceCall]]
#: `(session_id, the call's recording) -> None`, once the call is over.
RecordingHook = Callable[[str, CallAudioRecorder], Awaitable[None]]


class CatalogCallSetup:
    """Calls on graphs of a directory, on one checkpointer, with the built-in
    tools and the providers each graph's `voice:` settings choose.

    Graphs are compiled once per id; a session id already in the checkpointer
    resumes that call. Providers are made once per graph (models load once
    per process anyway). `tools` makes each call's tool registry (default: the
    built-in tools on the process-wide demo store); `speed` > 1 plays agent
    audio faster than real time (tests, demos)."""

    def __init__(
        self,
        graphs_dir: Path | None = None,
        *,
        default_graph: str | None = None,
        checkpointer: Any = None,
        tools: Callable[[], ToolRegistry] | None = None,
        speed: float = 1.0,
        compiler: Callable[[str], Awaitable[CompiledCall]] | None = None,
    ) -> None:
        """`compiler` (graph id -> compiled call) lets a host that already
        compiles and caches agents (the call service) share them; without it
        graphs are compiled here, once each."""
        from langgraph.checkpoint.memory import InMemorySaver

        from schemas.catalog import GraphCatalog, default_graphs_dir
        from tools.builtin import default_registry

        self.catalog = GraphCatalog(graphs_dir or default_graphs_dir())
        self.default_graph = default_graph
        self.checkpointer = checkpointer if checkpointer is not None else InMemorySaver()
        self.tools = tools or default_registry
        self.speed = speed
        self.compiler = compiler
        self._compiled: dict[str, CompiledCall] = {}
        self._providers: dict[str, tuple[STTProvider, TTSProvider]] = {}
        self._lock = asyncio.Lock()

    async def __call__(self, session_id: str, graph: str | None, caller: str | None) -> VoiceCall:
        from runtime.context import CallContext
        from runtime.llm import default_llm_factory
        from runtime.voice.providers.registry import make_stt, make_tts, make_vad
        from schemas.validate import load_valid_graph

        graph_id = graph or self.default_graph
        index = await asyncio.to_thread(self.catalog.index)
        if not graph_id or graph_id not in index:
            raise GraphNotFound(f"no graph with id {graph_id!r}" if graph_id else "no graph given")
        shared = await self.compiler(graph_id) if self.compiler is not None else None
        async with self._lock:
            if shared is not None:
                self._compiled[graph_id] = shared
            elif graph_id not in self._compiled:
                spec = await asyncio.to_thread(
                    load_valid_graph, index[graph_id], catalog=self.catalog
                )
                self._compiled[graph_id] = await asyncio.to_thread(
                    compile_call,
                    spec,
                    resolve=self.catalog.resolve,
                    checkpointer=self.checkpointer,
                )
            compiled = self._compiled[graph_id]
            providers = self._providers.get(graph_id)
            if providers is None:
                voice = compiled.root.voice
                providers = (
                    await asyncio.to_thread(make_stt, voice),
                    await asyncio.to_thread(make_tts, voice),
                )
                self._providers[graph_id] = providers
        vad = await asyncio.to_thread(make_vad)
        session = CallSession(
            compiled=compiled,
            call_id=session_id,
            caller=caller,
            context=CallContext(tools=self.tools(), llm_factory=default_llm_factory()),
        )
        return VoiceCall(
            session=session,
            vad=vad,
            stt=providers[0],
            tts=providers[1],
            config=PipelineConfig.for_graph(
                compiled.root, speed=self.speed, chunk_ms=AGENT_CHUNK_MS
            ),
        )

    def compiled(self, graph_id: str) -> CompiledCall | None:
        """The compiled graph of `graph_id`, once a call has used it."""
        return self._compiled.get(graph_id)


def voice_router(
    *,
    setup: CallSetup | None = None,
    graphs_dir: Path | None = None,
    default_graph: str | None = None,
    auth: Callable[..., Any] | None = None,
    max_binary_bytes: int = DEFAULT_MAX_BINARY_BYTES,
    recordings: RecordingHook | None = None,
) -> APIRouter:
    """The WebSocket route `/ws/call/{session_id}?graph=ID&caller=NUMBER`.

    `setup` makes each call (default: `CatalogCallSetup(graphs_dir,
    default_graph=...)`). `auth`, if given, is a FastAPI dependency run before
    the connection is accepted (raise `WebSocketException` to refuse it).
    `recordings`, if given, gets the recording of every call that started
    (and heard or said anything) after it ends, however it ended.
    """
    make_call: CallSetup = setup or CatalogCallSetup(graphs_dir, default_graph=default_graph)
    router = APIRouter()
    dependencies = [Depends(auth)] if auth is not None else []

    @router.websocket("/ws/call/{session_id}", dependencies=dependencies)
    async def ws_call(
        websocket: WebSocket,
        session_id: str,
        graph: str | None = None,
        caller: str | None = None,
    ) -> None:
        await websocket.accept()
        recording = CallAudioRecorder() if recordings is not None else None
        transport = WebSocketTransport(
            websocket, max_binary_bytes=max_binary_bytes, recording=recording
        )
        if not SESSION_ID.fullmatch(session_id):
            await transport.close(
                "session id must be 1-128 letters, digits, '_', '.', ':' or '-'",
                code=CLOSE_BAD_FRAME,
            )
            return
        try:
            call = await make_call(session_id, graph, caller)
        except GraphNotFound as exc:
            await transport.close(str(exc), code=CLOSE_NOT_FOUND)
            return
        except (GraphError, ProviderError) as exc:
            log.warning("call %s cannot start: %s", session_id, exc)
            await transport.close(f"call cannot start: {exc}", code=CLOSE_INTERNAL)
            return
        await transport.event("ready", {"call_id": session_id, "sample_rate": RATE})
        if recording is not None:
            recording.start()
        pipeline = call.pipeline(transport)
        try:
            await pipeline.run()
        except Exception:
            log.exception("call %s failed", session_id)
            await transport.close("internal error", code=CLOSE_INTERNAL)
        finally:
            if recordings is not None and recording is not None and not recording.empty():
                try:
                    await recordings(session_id, recording)
                except Exception:  # a lost recording must not look like a failed call
                    log.exception("call %s: recording not kept", session_id)

    return router


def create_voice_app(**router_options: Any) -> FastAPI:
    """A FastAPI app serving only the voice route (options as `voice_router`)."""
    app = FastAPI(title="Switchboard voice")
    app.include_router(voice_router(**router_options))
    return app
