"""A local server speaking Deepgram's live transcription websocket protocol, for tests.

`GET /v1/listen` upgrades to a websocket after checking what Deepgram checks:
the `Authorization: Token <key>` header (else HTTP 401 with Deepgram's JSON error
body) and the query parameters (`encoding` needs `sample_rate`, boolean options
must be `true`/`false`, numbers must be numbers; else HTTP 400). The client then
sends binary linear16 audio and JSON control messages (`KeepAlive`, `Finalize`,
`CloseStream`); the server answers with JSON messages shaped exactly like
Deepgram's:

- `Results` — `channel.alternatives[0].transcript` with words and timings,
  `is_final`, `speech_final`, `from_finalize`, `start`/`duration` in seconds of
  the received audio, `channel_index`, `metadata.model_info`;
- `SpeechStarted` (with `vad_events=true`), `UtteranceEnd` (with
  `utterance_end_ms`), and `Metadata` before closing on `CloseStream`.

What it "recognises" is scripted: each `Utterance` is revealed word by word in
interim results as its share of audio arrives, then finalized either by the
server's own endpointing (`endpoint=True`: `is_final` + `speech_final`, then
`UtteranceEnd`) or by the client's `Finalize` (`from_finalize`). Faults can be
scripted too (close the socket, send garbage, go silent, ignore `Finalize`).
Every connection is recorded (path, query, headers, audio, control messages).

    with FakeDeepgramServer(api_key="dg-test") as server:
        server.script(Utterance("book a cleaning", audio_s=1.0))
        config = DeepgramConfig(api_key="dg-test", url=server.url)
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

MODEL_ARCH = {"nova-3": "nova-3", "nova-2": "nova-2"}
BOOLEAN_PARAMS = (
    "interim_results",
    "smart_format",
    "punctuate",
    "vad_events",
    "numerals",
    "profanity_filter",
    "diarize",
    "multichannel",
)
INTEGER_PARAMS = ("sample_rate", "channels", "utterance_end_ms")


@dataclass(frozen=True)
class Utterance:
    """Words the fake recognises, spread over `audio_s` seconds of received audio.

    With `endpoint=True` the server finalizes the utterance itself once all its
    audio arrived (as Deepgram's endpointing does after a pause); otherwise it
    stays interim until the client sends `Finalize`.
    """

    text: str
    audio_s: float = 1.0
    endpoint: bool = False
    confidence: float = 0.98


class Fault(Enum):
    NONE = "none"
    #: Close the socket with code 1011 once `fault_after_bytes` of audio arrived.
    CLOSE = "close"
    #: Send a text frame that is not JSON once `fault_after_bytes` arrived.
    GARBAGE = "garbage"
    #: Accept the connection and the audio, never answer anything.
    SILENT = "silent"
    #: Answer audio normally but never answer `Finalize`.
    IGNORE_FINALIZE = "ignore_finalize"


@dataclass
class RecordedConnection:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    audio: bytearray = field(default_factory=bytearray)
    controls: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False

    def control_types(self) -> list[str]:
        return [str(c.get("type")) for c in self.controls]


class FakeDeepgramServer:
    """Deepgram `/v1/listen` on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, api_key: str = "dg-test-key") -> None:
        self.api_key = api_key
        self.fault = Fault.NONE
        self.fault_after_bytes = 0
        self._lock = threading.Lock()
        self._script: list[Utterance] = []
        self._connections: list[RecordedConnection] = []
        self.rejected: list[tuple[int, dict[str, str]]] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._port = 0

    # -- test-side API ---------------------------------------------------------

    @property
    def url(self) -> str:
        """The websocket base URL to give the SDK (no path)."""
        return f"ws://127.0.0.1:{self._port}"

    def script(self, *utterances: Utterance) -> None:
        """What the next connections recognise, in order (each gets a copy)."""
        with self._lock:
            self._script = list(utterances)

    def fail(self, fault: Fault, after_bytes: int = 0) -> None:
        self.fault = fault
        self.fault_after_bytes = after_bytes

    @property
    def connections(self) -> list[RecordedConnection]:
        with self._lock:
            return list(self._connections)

    def start(self) -> FakeDeepgramServer:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Deepgram server did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeDeepgramServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- server side -----------------------------------------------------------

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server: Server
        async with serve(
            self._handle, "127.0.0.1", 0, process_request=self._check_request, close_timeout=1
        ) as server:
            self._port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()
            server.close(close_connections=True)

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path != "/v1/listen":
            return self._reject(HTTPStatus.NOT_FOUND, "NOT_FOUND", "Unknown path", request)
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return self._reject(
                HTTPStatus.UNAUTHORIZED, "INVALID_AUTH", "Invalid credentials.", request
            )
        problem = _query_problem(query)
        if problem:
            return self._reject(HTTPStatus.BAD_REQUEST, "Bad Request", problem, request)
        return None

    def _reject(self, status: HTTPStatus, code: str, message: str, request: Request) -> Response:
        with self._lock:
            self.rejected.append((int(status), dict(request.headers.raw_items())))
        body = json.dumps({"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())})
        headers = Headers([("Content-Type", "application/json")])
        return Response(int(status), status.phrase, headers, body.encode())

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        parts = urlsplit(connection.request.path)
        record = RecordedConnection(
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=dict(connection.request.headers.raw_items()),
        )
        with self._lock:
            self._connections.append(record)
            script = list(self._script)
        session = _Session(connection, record, script, self.fault, self.fault_after_bytes)
        try:
            await session.run()
        except ConnectionClosed:
            pass
        finally:
            record.closed = True


def _query_problem(query: dict[str, str]) -> str | None:
    for name in BOOLEAN_PARAMS:
        if name in query and query[name] not in ("true", "false"):
            return f"Invalid value for {name}: {query[name]!r} (expected true or false)"
    for name in INTEGER_PARAMS:
        if name in query and not query[name].isdigit():
            return f"Invalid value for {name}: {query[name]!r}"
    endpointing = query.get("endpointing")
    if endpointing is not None and endpointing != "false" and not endpointing.isdigit():
        return f"Invalid value for endpointing: {endpointing!r}"
    if "encoding" in query and "sample_rate" not in query:
        return "sample_rate is required when encoding is set"
    if query.get("encoding") not in (None, "linear16"):
        return f"this fake only decodes linear16, not {query['encoding']!r}"
    return None


class _Session:
    """One websocket: reveals the scripted words as audio arrives."""

    def __init__(
        self,
        ws: ServerConnection,
        record: RecordedConnection,
        script: list[Utterance],
        fault: Fault,
        fault_after_bytes: int,
    ) -> None:
        self.ws = ws
        self.record = record
        self.script = script
        self.fault = fault
        self.fault_after_bytes = fault_after_bytes
        self.request_id = str(uuid.uuid4())
        self.rate = int(record.query.get("sample_rate", "16000"))
        self.model = record.query.get("model", "nova-3")
        self.vad_events = record.query.get("vad_events") == "true"
        self.utterance_end = "utterance_end_ms" in record.query
        self.interim = record.query.get("interim_results") == "true"
        self.audio_s = 0.0  # seconds of audio received
        self.segment_start = 0.0  # start of audio not yet covered by a final result
        self.utterance_start = 0.0
        self.revealed = 0
        self.index = 0

    async def run(self) -> None:
        async for message in self.ws:
            if isinstance(message, bytes):
                if await self._on_audio(message):
                    return
            elif await self._on_control(message):
                return

    async def _on_audio(self, chunk: bytes) -> bool:
        self.record.audio.extend(chunk)
        self.audio_s += len(chunk) / (2 * self.rate)
        if self.fault is not Fault.NONE and len(self.record.audio) >= self.fault_after_bytes:
            if self.fault is Fault.CLOSE:
                await self.ws.close(1011, "NET-0001")
                return True
            if self.fault is Fault.GARBAGE:
                await self.ws.send("<html>502 Bad Gateway</html>")
                self.fault = Fault.NONE
                return False
        if self.fault is Fault.SILENT:
            return False
        await self._advance()
        return False

    async def _on_control(self, text: str) -> bool:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            await self.ws.close(1008, "DATA-0000")
            return True
        self.record.controls.append(message)
        kind = message.get("type") if isinstance(message, dict) else None
        if self.fault is Fault.SILENT:
            return False
        if kind == "Finalize" and self.fault is not Fault.IGNORE_FINALIZE:
            await self._finalize(from_finalize=True)
        elif kind == "CloseStream":
            await self._finalize(from_finalize=False)
            await self._send(self._metadata())
            await self.ws.close(1000, "")
            return True
        return False

    async def _advance(self) -> None:
        while self.index < len(self.script):
            utt = self.script[self.index]
            words = utt.text.split()
            progress = (self.audio_s - self.utterance_start) / max(utt.audio_s, 1e-6)
            shown = min(len(words), math.ceil(progress * len(words))) if progress > 0 else 0
            if shown > self.revealed:
                if self.revealed == 0 and self.vad_events:
                    await self._send(
                        {"type": "SpeechStarted", "channel": [0], "timestamp": self.utterance_start}
                    )
                self.revealed = shown
                if self.interim:
                    await self._send(self._results(utt, shown, self.audio_s, is_final=False))
            if progress < 1 or not utt.endpoint:
                return
            end = self.utterance_start + utt.audio_s
            await self._send(self._results(utt, len(words), end, is_final=True, speech_final=True))
            if self.utterance_end:
                await self._send(
                    {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(end, 3)}
                )
            self._next_utterance(end)

    async def _finalize(self, *, from_finalize: bool) -> None:
        if self.index < len(self.script) and self.revealed:
            utt = self.script[self.index]
            await self._send(
                self._results(
                    utt, self.revealed, self.audio_s, is_final=True, from_finalize=from_finalize
                )
            )
            self._next_utterance(self.audio_s)
        elif from_finalize:
            await self._send(
                self._results(None, 0, self.audio_s, is_final=True, from_finalize=True)
            )
            self.segment_start = self.utterance_start = self.audio_s

    def _next_utterance(self, end: float) -> None:
        self.index += 1
        self.revealed = 0
        self.segment_start = self.utterance_start = end

    async def _send(self, message: dict[str, Any]) -> None:
        self.record.sent.append(message)
        await self.ws.send(json.dumps(message))

    def _results(
        self,
        utt: Utterance | None,
        shown: int,
        end: float,
        *,
        is_final: bool,
        speech_final: bool = False,
        from_finalize: bool = False,
    ) -> dict[str, Any]:
        words: list[dict[str, Any]] = []
        if utt is not None and shown:
            spoken = utt.text.split()
            step = utt.audio_s / len(spoken)
            for i, punctuated in enumerate(spoken[:shown]):
                start = self.utterance_start + i * step
                words.append(
                    {
                        "word": punctuated.strip(".,?!").lower(),
                        "start": round(start, 3),
                        "end": round(start + step, 3),
                        "confidence": utt.confidence,
                        "punctuated_word": punctuated,
                    }
                )
        transcript = " ".join(w["punctuated_word"] for w in words)
        message: dict[str, Any] = {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(max(end - self.segment_start, 0.0), 3),
            "start": round(self.segment_start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "channel": {
                "alternatives": [
                    {
                        "transcript": transcript,
                        "confidence": utt.confidence if words and utt else 0.0,
                        "words": words,
                    }
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": {
                    "name": f"general-{self.model}",
                    "version": "2024-12-20.0",
                    "arch": MODEL_ARCH.get(self.model, self.model),
                },
                "model_uuid": "00000000-0000-4000-8000-000000000000",
            },
        }
        if from_finalize:
            message["from_finalize"] = True
        return message

    def _metadata(self) -> dict[str, Any]:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": "0" * 64,
            "created": "2025-01-01T00:00:00.000Z",
            "duration": round(self.audio_s, 3),
            "channels": 1,
            "models": ["00000000-0000-4000-8000-000000000000"],
            "model_info": {
                "00000000-0000-4000-8000-000000000000": {
                    "name": f"general-{self.model}",
                    "version": "2024-12-20.0",
                    "arch": MODEL_ARCH.get(self.model, self.model),
                }
            },
        }


@pytest.fixture(name="deepgram_server")
def deepgram_server_fixture() -> Iterator[FakeDeepgramServer]:
    """A started `FakeDeepgramServer` (key `dg-test-key`), stopped after the test."""
    with FakeDeepgramServer() as server:
        yield server
