"""Hostile voice streams: random bytes, wrong and oversized frames, malformed
JSON, unknown events and floods on the WebSocket and Twilio transports.

Each hostile call is closed with a protocol close code and a reason (or, for
input that happens to be valid, keeps running); a call beside them runs to
its normal end; a flood leaves the server's Python heap (tracemalloc, the
server runs in this process) within a stated bound. Inputs come from a seeded
generator so a failure reproduces.

tests/runtime/voice/test_websocket.py and test_twilio.py check each malformed
frame's exact code and reason; this suite sends many generated ones.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import random
import socket
import string
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from reliability.report import full_mode, record_surface
from runtime.context import CallContext
from runtime.session import CallSession
from runtime.voice.stages.base import PipelineConfig
from runtime.voice.twilio import TwilioCall, TwilioTransport, twilio_router
from runtime.voice.websocket import VoiceCall, create_voice_app
from tests.fakes.twilio_media import TwilioStreamClient, tone_ulaw
from tests.runtime.fixtures.calls import compile_graphs, fixed_clock, graph
from tests.runtime.voice.fakes import Codebook, FakeSTT, FakeTTS, FakeVAD, square_wave
from tests.runtime.voice.wsclient import call
from tools.registry import ToolRegistry

FLOW = """
schema: switchboard/v1
id: hostile-ws
name: Hostile stream test
start: ask
voice: {end_of_turn_ms: 300}
nodes:
  ask: {type: collect, slot: name, kind: text, prompt: "Hello! What is your name?", next: bye}
  bye: {type: end, text: "Goodbye {name}."}
"""
CODEBOOK = Codebook()
MAX_FRAME = 6400
WS_CLOSE_CODES = {1003, 1009, 4400}
TWILIO_CLOSE_CODES = {1003, 1007, 1008, 1009}
RUNS = 200 if full_mode() else 40
#: Flood sizes: far more audio than any buffer should hold.
WS_FLOOD_FRAMES = 4000  # x 6400 bytes = 25.6 MB
TWILIO_FLOOD_MESSAGES = 5000  # x 160 bytes of mu-law = 100 s of audio
#: Heap growth allowed after a flood call has ended (caches, interned strings,
#: one compiled graph); the flood itself is 25 MB, so buffering it would fail.
MAX_RETAINED_BYTES = 8 * 1024 * 1024
#: Peak heap during a flood: well under the flood's own size.
MAX_FLOOD_PEAK_BYTES = 20 * 1024 * 1024

TRIED: Counter[str] = Counter()
REFUSED: Counter[str] = Counter()
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    for surface in ("websocket", "twilio"):
        if TRIED[surface]:
            record_surface(
                f"{surface}-stream",
                tried=TRIED[surface],
                refused=REFUSED[surface],
                detail={k: v for k, v in FIGURES.items() if k.startswith(surface)},
            )


async def _setup(session_id: str, graph_id: str | None, caller: str | None) -> VoiceCall:
    spec = graph(FLOW)
    session = CallSession(
        compile_graphs(spec),
        call_id=session_id,
        caller=caller,
        context=CallContext(tools=ToolRegistry(), clock=fixed_clock),
    )
    return VoiceCall(
        session=session,
        vad=FakeVAD(),
        stt=FakeSTT(CODEBOOK),
        tts=FakeTTS(word_ms=300),
        config=PipelineConfig.for_graph(spec, speed=20.0),
    )


@contextlib.contextmanager
def _serve(app: FastAPI) -> Iterator[str]:
    """`app` on uvicorn as `switchboard serve` runs it (no per-message deflate)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws_per_message_deflate=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(1500):
        if server.started or not thread.is_alive():
            break
        time.sleep(0.01)
    assert server.started, "voice test server did not start"
    try:
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with _serve(create_voice_app(setup=_setup, max_binary_bytes=MAX_FRAME)) as url:
        yield url


def _hostile_ws_frame(rng: random.Random) -> bytes | str:
    kind = rng.randrange(8)
    if kind == 0:  # random bytes, any length up to twice the limit
        return rng.randbytes(rng.randrange(1, 2 * MAX_FRAME))
    if kind == 1:  # odd length
        return rng.randbytes(rng.randrange(0, MAX_FRAME // 2) * 2 + 1)
    if kind == 2:  # oversized
        return b"\x00" * (MAX_FRAME + rng.randrange(1, 100_000))
    if kind == 3:  # random printable text
        return "".join(rng.choices(string.printable, k=rng.randrange(1, 300)))
    if kind == 4:  # JSON that is not an event object
        return json.dumps(rng.choice([[1, 2], "hangup", 3.5, None, {"kind": "x"}, {"type": 7}]))
    if kind == 5:  # unknown event
        return json.dumps({"type": "".join(rng.choices(string.ascii_letters, k=12))})
    if kind == 6:  # over the text limit
        return json.dumps({"type": "hangup", "pad": "x" * 5000})
    return "".join(chr(rng.randrange(0x80, 0x2FFF)) for _ in range(rng.randrange(1, 50)))


def _valid_audio(frame: bytes | str) -> bool:
    return isinstance(frame, bytes) and len(frame) <= MAX_FRAME and len(frame) % 2 == 0


def _caller_line(text: str) -> bytes:
    return square_wave(CODEBOOK.amplitude(text), 250 * len(text.split())) + b"\x00" * 19200


async def test_random_websocket_frames_close_only_their_call(base_url: str) -> None:
    rng = random.Random(20260109)
    async with call(f"{base_url}/ws/call/bystander?graph=hostile-ws") as good:
        await good.next_event("waiting")
        for n in range(RUNS):
            frame = _hostile_ws_frame(rng)
            async with call(f"{base_url}/ws/call/hostile-{n}?graph=hostile-ws") as bad:
                await bad.next_event("ready")
                await bad.ws.send(frame)
                if _valid_audio(frame):
                    await bad.ws.send(json.dumps({"type": "hangup"}))
                    code, _ = await bad.wait_closed()
                    assert code == 1000
                else:
                    code, reason = await bad.wait_closed()
                    assert code in WS_CLOSE_CODES and reason, (n, code, frame[:60])
                    REFUSED["websocket"] += 1
            TRIED["websocket"] += 1
        # The bystander was never disturbed: it finishes normally.
        await good.send_audio(_caller_line("Ana"))
        await good.send_audio(b"\x00" * 32000)
        assert (await good.next_event("outcome"))["outcome"] == "completed"
        code, _ = await good.wait_closed()
    assert code == 1000


async def test_many_hostile_connections_at_once(base_url: str) -> None:
    rng = random.Random(7)

    async def one(n: int) -> int | None:
        async with call(f"{base_url}/ws/call/crowd-{n}?graph=hostile-ws") as bad:
            await bad.next_event("ready")
            await bad.ws.send(rng.randbytes(2 * n + 1))
            code, _ = await bad.wait_closed()
            return code

    codes = await asyncio.gather(*(one(n) for n in range(25)))
    assert set(codes) == {1003}
    TRIED["websocket"] += len(codes)
    REFUSED["websocket"] += len(codes)


def _heap() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def test_websocket_audio_flood_keeps_memory_bounded(base_url: str) -> None:
    silence = b"\x00" * MAX_FRAME
    async with call(f"{base_url}/ws/call/warmup?graph=hostile-ws") as warm:
        await warm.next_event("waiting")
        await warm.ws.send(json.dumps({"type": "hangup"}))
        await warm.wait_closed()
    tracemalloc.start()
    try:
        before = _heap()
        tracemalloc.reset_peak()
        async with call(f"{base_url}/ws/call/flood?graph=hostile-ws") as flood:
            await flood.next_event("waiting")
            for _ in range(WS_FLOOD_FRAMES):
                await flood.ws.send(silence)
            await flood.ws.send(json.dumps({"type": "hangup"}))
            code, _ = await flood.wait_closed(timeout_s=120)
        peak = tracemalloc.get_traced_memory()[1] - before
        await asyncio.sleep(0)  # let the server task finish its teardown
        retained = _heap() - before
    finally:
        tracemalloc.stop()
    FIGURES["websocket_flood_mb"] = round(WS_FLOOD_FRAMES * MAX_FRAME / 1e6, 1)
    FIGURES["websocket_flood_peak_mb"] = round(peak / 1e6, 2)
    FIGURES["websocket_flood_retained_mb"] = round(retained / 1e6, 2)
    TRIED["websocket"] += WS_FLOOD_FRAMES
    assert code == 1000
    assert peak < MAX_FLOOD_PEAK_BYTES, FIGURES
    assert retained < MAX_RETAINED_BYTES, FIGURES


# --- Twilio ---------------------------------------------------------------------


class Listener:
    """A call runner that consumes caller audio and counts it."""

    def __init__(self) -> None:
        self.frames: Counter[str] = Counter()
        self.finished: list[str] = []

    async def __call__(self, transport: TwilioTransport, call: TwilioCall) -> None:
        sid = call.start.stream_sid
        async for _frame in transport.incoming():
            self.frames[sid] += 1
        self.finished.append(sid)


def _twilio_client(runner: Listener) -> TestClient:
    app = FastAPI()
    app.include_router(twilio_router(runner, auth_token="", max_message_bytes=4096))
    return TestClient(app)


def _hostile_twilio_message(rng: random.Random, sid: str) -> tuple[str, bytes | str]:
    media = {"event": "media", "streamSid": sid}
    choices: list[tuple[str, bytes | str]] = [
        ("random bytes", rng.randbytes(rng.randrange(1, 500))),
        ("random text", "".join(rng.choices(string.printable, k=rng.randrange(1, 200)))),
        ("json array", json.dumps([rng.random()])),
        ("no event", json.dumps({"media": {"payload": ""}})),
        ("unknown event", json.dumps({"event": "".join(rng.choices(string.ascii_lowercase, k=8))})),
        ("bad base64", json.dumps({**media, "media": {"payload": "!" * rng.randrange(1, 50)}})),
        ("payload not a string", json.dumps({**media, "media": {"payload": rng.random()}})),
        ("oversized", json.dumps({**media, "media": {"payload": "A" * 8000}})),
        ("other stream", json.dumps({**media, "streamSid": "MZX", "media": {"payload": ""}})),
        ("bad dtmf", json.dumps({"event": "dtmf", "streamSid": sid, "dtmf": {"digit": "99"}})),
        ("second start", json.dumps({"event": "start", "start": {"streamSid": sid}})),
    ]
    return rng.choice(choices)


def _drain(twilio: TwilioStreamClient) -> WebSocketDisconnect:
    for _ in range(10_000):
        try:
            twilio.receive()
        except WebSocketDisconnect as closed:
            return closed
    raise AssertionError("the server never closed the stream")


def test_random_twilio_messages_close_only_their_stream() -> None:
    rng = random.Random(99)
    runner = Listener()
    kinds: Counter[str] = Counter()
    with (
        _twilio_client(runner) as client,
        client.websocket_connect("/twilio/stream/demo") as ws_good,
    ):
        good = TwilioStreamClient(ws_good, stream_sid="MZ" + "0" * 31 + "9")
        good.handshake()
        for n in range(RUNS):
            sid = f"MZ{n:032d}"
            with client.websocket_connect("/twilio/stream/demo") as ws:
                bad = TwilioStreamClient(ws, stream_sid=sid)
                bad.handshake()
                bad.send_audio(tone_ulaw(440, 40))
                kind, message = _hostile_twilio_message(rng, sid)
                kinds[kind] += 1
                if isinstance(message, bytes):
                    ws.send_bytes(message)
                else:
                    ws.send_text(message)
                closed = _drain(bad)
                assert closed.code in TWILIO_CLOSE_CODES and closed.reason, (kind, closed.code)
            good.send_audio(tone_ulaw(440, 20))
            TRIED["twilio"] += 1
            REFUSED["twilio"] += 1
        good.stop()
        assert _drain(good).code == 1000
    assert runner.finished == [good.stream_sid]
    assert runner.frames[good.stream_sid] >= RUNS
    FIGURES["twilio_kinds"] = len(kinds)


def test_twilio_media_flood_keeps_memory_bounded() -> None:
    runner = Listener()
    frame = base64.b64encode(tone_ulaw(440, 20)).decode()
    with _twilio_client(runner) as client:
        tracemalloc.start()
        try:
            before = _heap()
            tracemalloc.reset_peak()
            with client.websocket_connect("/twilio/stream/demo") as ws:
                twilio = TwilioStreamClient(ws)
                twilio.handshake()
                for n in range(TWILIO_FLOOD_MESSAGES):
                    ws.send_text(
                        json.dumps(
                            {
                                "event": "media",
                                "sequenceNumber": str(n + 3),
                                "streamSid": twilio.stream_sid,
                                "media": {"track": "inbound", "payload": frame},
                            }
                        )
                    )
                twilio.stop()
                assert _drain(twilio).code == 1000
            peak = tracemalloc.get_traced_memory()[1] - before
            retained = _heap() - before
        finally:
            tracemalloc.stop()
    FIGURES["twilio_flood_messages"] = TWILIO_FLOOD_MESSAGES
    FIGURES["twilio_flood_peak_mb"] = round(peak / 1e6, 2)
    FIGURES["twilio_flood_retained_mb"] = round(retained / 1e6, 2)
    TRIED["twilio"] += TWILIO_FLOOD_MESSAGES
    assert runner.frames[twilio.stream_sid] == TWILIO_FLOOD_MESSAGES
    assert peak < MAX_FLOOD_PEAK_BYTES, FIGURES
    assert retained < MAX_RETAINED_BYTES, FIGURES
