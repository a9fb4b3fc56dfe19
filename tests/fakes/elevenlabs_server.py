"""A local server speaking ElevenLabs' streaming text-to-speech HTTP API, for tests.

`POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_<rate>` with a JSON
body (`text`, `model_id`, ...) answers, as ElevenLabs does, with raw 16-bit mono
PCM in a chunked response — here a generated tone whose length is proportional
to the text (`ms_per_char`). It checks what ElevenLabs checks: the `xi-api-key`
header (else 401 with `{"detail": {"status": "invalid_api_key", ...}}`), a
`text` field (else 422 with a validation `detail` list), a PCM `output_format`
(this fake does not encode MP3/Opus) and a known voice (`voices`, if set; else
404 `voice_not_found`).

Timing is scripted, never measured: `hold_after_first` keeps the response open
after the first chunk until the test calls `release()` (so a test can see the
first chunk arrive while the server is provably not finished); `delay_first`
holds before any byte, `stall_after` holds after N chunks (both until
`release()` or shutdown), `cut_after` drops the connection mid-body, and
`fail_with(status)` answers one HTTP error. Every request is recorded.

    with FakeElevenLabsServer(api_key="el-test") as server:
        config = ElevenLabsConfig(api_key="el-test", url=server.url)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.fakes.background import BackgroundServer, serve_in_thread

#: Longest any scripted hold lasts; `release()` or shutdown ends holds sooner.
MAX_HOLD_S = 60.0
TONE_HZ = 440.0


@dataclass
class RecordedTTSRequest:
    voice_id: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    chunks_sent: int = 0
    bytes_sent: int = 0
    finished: bool = False

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


@dataclass
class _Faults:
    delay_first: bool = False
    stall_after: int | None = None
    cut_after: int | None = None
    status: list[int] = field(default_factory=list)


class _Cut(Exception):
    """Raised inside the body stream to drop the connection mid-response."""


def tone(text: str, sample_rate: int, ms_per_char: float) -> bytes:
    """The PCM the fake speaks for `text`: a 440 Hz tone, `ms_per_char` per character."""
    n = max(1, round(len(text) * ms_per_char * sample_rate / 1000))
    t = np.arange(n) / sample_rate
    return (np.sin(2 * np.pi * TONE_HZ * t) * 0.3 * 32767).astype("<i2").tobytes()


class FakeElevenLabsServer:
    """ElevenLabs TTS streaming on 127.0.0.1 (a free port) in a background thread."""

    def __init__(
        self,
        api_key: str = "el-test-key",
        *,
        ms_per_char: float = 50.0,
        chunk_ms: float = 100.0,
        voices: set[str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.ms_per_char = ms_per_char
        self.chunk_ms = chunk_ms
        self.voices = voices
        self.hold_after_first = False
        self._faults = _Faults()
        self._lock = threading.Lock()
        self._requests: list[RecordedTTSRequest] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._background: BackgroundServer | None = None
        self._port = 0
        self.app = self._make_app()

    # -- test-side API ---------------------------------------------------------

    @property
    def url(self) -> str:
        """The API base URL to give the SDK."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def requests(self) -> list[RecordedTTSRequest]:
        with self._lock:
            return list(self._requests)

    def delay_first(self) -> None:
        """Hold every response before its first byte until `release()`."""
        self._faults.delay_first = True

    def stall_after(self, chunks: int) -> None:
        """Hold every response after `chunks` chunks until `release()`."""
        self._faults.stall_after = chunks

    def cut_after(self, chunks: int) -> None:
        """Drop the connection after `chunks` chunks of the body."""
        self._faults.cut_after = chunks

    def fail_with(self, *statuses: int) -> None:
        """Answer the next requests with these HTTP errors, in order."""
        with self._lock:
            self._faults.status.extend(statuses)

    def release(self) -> None:
        """End every hold (scripted delays, stalls, `hold_after_first`)."""
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    def start(self) -> FakeElevenLabsServer:
        self._background = serve_in_thread(
            self.app, self._ready, "fake ElevenLabs server", log_level="critical"
        )
        self._port = self._background.port
        return self

    def stop(self) -> None:
        self.release()
        if self._background is not None:
            self._background.stop()

    def __enter__(self) -> FakeElevenLabsServer:
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

        @app.post("/v1/text-to-speech/{voice_id}/stream", response_model=None)
        async def stream(voice_id: str, request: Request) -> Response:
            if request.headers.get("xi-api-key") != self.api_key:
                return _error(401, "invalid_api_key", "Invalid API key")
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("text"), str):
                return JSONResponse(
                    status_code=422,
                    content={
                        "detail": [
                            {"type": "missing", "loc": ["body", "text"], "msg": "Field required"}
                        ]
                    },
                )
            record = RecordedTTSRequest(
                voice_id=voice_id,
                query=dict(request.query_params),
                headers=dict(request.headers),
                body=body,
            )
            with self._lock:
                self._requests.append(record)
                status = self._faults.status.pop(0) if self._faults.status else None
            if status is not None:
                return _error(status, "scripted_failure", f"scripted HTTP {status}")
            if self.voices is not None and voice_id not in self.voices:
                return _error(
                    404,
                    "voice_not_found",
                    f"A voice with the voice_id {voice_id} was not found.",
                )
            output_format = record.query.get("output_format", "mp3_44100_128")
            rate = _pcm_rate(output_format)
            if rate is None:
                return _error(
                    422, "invalid_output_format", f"fake serves PCM only, not {output_format}"
                )
            if self._faults.delay_first:
                await self._hold()
            pcm = tone(record.text, rate, self.ms_per_char)
            return StreamingResponse(self._body(record, pcm, rate), media_type="audio/pcm")

        return app

    async def _body(
        self, record: RecordedTTSRequest, pcm: bytes, rate: int
    ) -> AsyncIterator[bytes]:
        step = max(2, int(rate * self.chunk_ms / 1000) * 2)
        for index, start in enumerate(range(0, len(pcm), step)):
            if self._faults.cut_after is not None and index >= self._faults.cut_after:
                raise _Cut("scripted connection drop")
            if index and (
                (index == 1 and self.hold_after_first) or index == self._faults.stall_after
            ):
                await self._hold()
            chunk = pcm[start : start + step]
            record.chunks_sent += 1
            record.bytes_sent += len(chunk)
            yield chunk
        record.finished = True

    async def _hold(self) -> None:
        assert self._release is not None
        with suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), MAX_HOLD_S)


def _pcm_rate(output_format: str) -> int | None:
    kind, _, rate = output_format.partition("_")
    return int(rate) if kind == "pcm" and rate.isdigit() else None


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"detail": {"status": code, "message": message}}
    )


@pytest.fixture(name="elevenlabs_server")
def elevenlabs_server_fixture() -> Iterator[FakeElevenLabsServer]:
    """A started `FakeElevenLabsServer` (key `el-test-key`), stopped after the test."""
    with FakeElevenLabsServer() as server:
        yield server
