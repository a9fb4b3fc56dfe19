"""A voice app served by uvicorn in a thread, and an asyncio WebSocket client
for it that keeps every event and every byte of agent audio it receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from runtime.voice.audio import resample
from runtime.voice.providers.base import TTSProvider

FRAME_BYTES = 640  # 20 ms of 16 kHz 16-bit PCM
SILENCE_1S = b"\x00" * 32000


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve `app` on a free 127.0.0.1 port; yields its ws:// base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("voice test server did not start")
        time.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class VoiceClient:
    """One call's client side: events and audio received, in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.audio = bytearray()
        #: (monotonic time, bytes) of each binary frame received.
        self.audio_frames: list[tuple[float, int]] = []
        self._seen: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, bytes):
                    self.audio += message
                    self.audio_frames.append((time.monotonic(), len(message)))
                else:
                    event = json.loads(message)
                    event["_at"] = time.monotonic()
                    self.events.append(event)
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self._changed.set()

    @property
    def closed(self) -> bool:
        return self._reader.done()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def next_event(self, kind: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """The next event of `kind` not returned before (waits up to `timeout_s`)."""
        async with asyncio.timeout(timeout_s):
            while True:
                matches = self.of_type(kind)
                index = self._seen.get(kind, 0)
                if len(matches) > index:
                    self._seen[kind] = index + 1
                    return matches[index]
                if self.closed:
                    raise AssertionError(f"connection closed before a {kind!r} event")
                self._changed.clear()
                await self._changed.wait()

    async def changed(self) -> None:
        """Wait until a message arrives or the connection closes."""
        if self.closed:
            raise AssertionError("connection closed")
        self._changed.clear()
        await self._changed.wait()

    async def wait_closed(self, timeout_s: float = 30.0) -> tuple[int | None, str]:
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(self._reader)
        return self.ws.close_code, self.ws.close_reason or ""

    async def send_audio(self, pcm: bytes, *, realtime: bool = False) -> list[float]:
        """Send `pcm` in 20 ms frames (paced at real time if asked); returns
        the monotonic time at which each frame was sent."""
        sent: list[float] = []
        start = time.monotonic()
        for n, i in enumerate(range(0, len(pcm), FRAME_BYTES)):
            if realtime:
                delay = start + (n + 1) * 0.02 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            chunk = pcm[i : i + FRAME_BYTES]
            await self.ws.send(chunk + b"\x00" * (FRAME_BYTES - len(chunk)))
            sent.append(time.monotonic())
        return sent


@contextlib.asynccontextmanager
async def call(url: str) -> AsyncIterator[VoiceClient]:
    async with connect(url, max_size=2**22) as ws:
        client = VoiceClient(ws)
        try:
            yield client
        finally:
            client._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await client._reader


async def speech(voice: TTSProvider, text: str) -> bytes:
    """`text` spoken by `voice`, as 16 kHz PCM."""
    pcm = b"".join([chunk async for chunk in voice.synthesize(text)])
    return resample(pcm, voice.sample_rate, 16000)


async def say(client: VoiceClient, voice: TTSProvider, text: str) -> list[float]:
    """Speak `text` in real time, then 1.2 s of silence (the end of the turn)."""
    sent = await client.send_audio(await speech(voice, text), realtime=True)
    await client.send_audio(SILENCE_1S + SILENCE_1S[:6400], realtime=True)
    return sent


#: What a caller booking a cleaning on graphs/dental-booking.yaml says when the
#: agent asks at a node; asked again, it rephrases (Whisper on a loaded machine
#: sometimes mishears a line, and a real caller would say it again too).
BOOKING_ANSWERS = {
    "ask_day": ["next Tuesday", "Tuesday please"],
    "ask_time": ["ten in the morning", "ten am", "at ten o'clock"],
    "ask_name": ["Maria Garcia", "my name is Maria Garcia"],
}
BOOKING_OPENING = ["I'd like to book a cleaning", "I want to book a cleaning please"]


async def book_by_voice(
    client: VoiceClient, voice: TTSProvider, turn_timeout_s: float, max_turns: int = 10
) -> None:
    """Answer whatever the dental-booking agent asks until it has the caller's
    name and ends the call (returns at its `outcome` event)."""
    asked: dict[str, int] = {}
    for _ in range(max_turns):
        await client.next_event("waiting", timeout_s=turn_timeout_s)
        node = str(client.of_type("agent")[-1].get("node"))
        lines = BOOKING_ANSWERS.get(node, BOOKING_OPENING)
        tries = asked.get(node, 0)
        asked[node] = tries + 1
        await say(client, voice, lines[tries % len(lines)])
        if node == "ask_name":
            await client.next_event("outcome", timeout_s=turn_timeout_s)
            return
    raise AssertionError(f"no booking after {max_turns} turns")
