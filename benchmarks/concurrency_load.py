"""The load generator of the `concurrency` benchmark, run as its own process:
`python -m benchmarks.concurrency_load --base URL --token T --agent ID --calls N`.

Each call is started through `POST /api/calls` (transport websocket) and
talks over the voice WebSocket like a phone line: caller audio goes out in
20 ms frames, paced in real time, all the time (silence between turns). Every
turn is `SPEECH_S` of tone ("speech" to the energy VAD stand-in), sent once the
agent has said `waiting` plus a short random pause. The turn latency is the
time from sending the last speech frame to receiving the next agent audio
byte, on this process's monotonic clock. Each call's audio is paced by its own
sender (catching up when it runs late); how late they ran is reported. Calls
start spread over `--ramp-s`.

Prints one JSON object: per-turn latencies (ms), the server's per-turn metrics
events, errors, the peak of simultaneously connected calls, ticker lateness and
this process's own CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from runtime.voice.providers.standin import tone

FRAME_S = 0.02
FRAME_BYTES = 640  # 20 ms of 16 kHz 16-bit mono PCM
SPEECH_S = 1.0
SILENCE = b"\x00" * FRAME_BYTES
SPEECH = tone(SPEECH_S, level_dbfs=-20.0)
SPEECH_FRAMES = [SPEECH[i : i + FRAME_BYTES] for i in range(0, len(SPEECH), FRAME_BYTES)]
#: Bounds one wait for the agent (greeting, reply): a hang guard only.
AGENT_TIMEOUT_S = 30.0
PAUSE_S = (0.3, 0.7)


@dataclass(eq=False)
class Call:
    """One call's client side."""

    index: int
    ws: ClientConnection | None = None
    speech_left: int = 0
    speech_end_at: float | None = None
    first_audio_at: float | None = None
    waiting: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    fallback_line: str | None = None

    def next_frame(self, now: float) -> bytes:
        """The caller's next 20 ms: speech while a turn is being spoken."""
        if self.speech_left > 0:
            frame = SPEECH_FRAMES[len(SPEECH_FRAMES) - self.speech_left]
            self.speech_left -= 1
            if self.speech_left == 0:
                self.speech_end_at = now
                self.first_audio_at = None
                self.changed.set()
            return frame
        return SILENCE

    def on_message(self, message: str | bytes, now: float) -> None:
        if isinstance(message, bytes):
            if self.speech_end_at is not None and self.first_audio_at is None:
                self.first_audio_at = now
                self.latencies_ms.append((now - self.speech_end_at) * 1000.0)
                self.changed.set()
            return
        event = json.loads(message)
        kind = event.get("type")
        if kind == "waiting":
            self.waiting += 1
            self.changed.set()
        elif kind == "metrics" and event.get("end_to_end_ms") is not None:
            self.metrics.append(event)
        elif kind == "error":
            self.problems.append(f"error event: {event.get('message') or event}")
        elif kind == "agent" and self.fallback_line and event.get("text") == self.fallback_line:
            self.problems.append("the agent said its fallback line")

    async def wait_for(self, done: Any, what: str) -> None:
        async with asyncio.timeout(AGENT_TIMEOUT_S):
            while not done():
                if self.closed:
                    raise ConnectionError(f"connection closed while waiting for {what}")
                self.changed.clear()
                await self.changed.wait()


class Ticker:
    """Paces each live call's audio: one sender task per call sends its next
    frame every 20 ms of real time, catching up when late, so a connection the
    server reads slowly holds up only its own call."""

    def __init__(self) -> None:
        self.late_ms: list[float] = []
        self.live = 0
        self.peak = 0

    async def send_audio(self, call: Call) -> None:
        """Send `call`'s frames until it closes or the task is cancelled."""
        assert call.ws is not None
        self.live += 1
        self.peak = max(self.peak, self.live)
        start = time.monotonic()
        n = 0
        try:
            while not call.closed:
                n += 1
                due = start + n * FRAME_S
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = time.monotonic()
                if n % 5 == 0:  # a sample of the lateness is enough
                    self.late_ms.append(max(0.0, (now - due) * 1000.0))
                await call.ws.send(call.next_frame(now))
        except ConnectionClosed:
            call.closed = True
            call.changed.set()
        finally:
            self.live -= 1


async def _read(call: Call) -> None:
    assert call.ws is not None
    try:
        async for message in call.ws:
            call.on_message(message, time.monotonic())
    except ConnectionClosed:
        pass
    finally:
        call.closed = True
        call.changed.set()


async def run_call(
    call: Call,
    *,
    http: httpx.AsyncClient,
    args: argparse.Namespace,
    ticker: Ticker,
    rng: random.Random,
) -> None:
    """Start, talk `args.turns` turns, hang up; problems go to `call.problems`."""
    await asyncio.sleep(rng.uniform(0, args.ramp_s))
    reader: asyncio.Task[None] | None = None
    sender: asyncio.Task[None] | None = None
    try:
        r = await http.post(
            f"{args.base}/api/calls",
            json={"agent": args.agent, "transport": "websocket"},
            headers={"Authorization": f"Bearer {args.token}"},
        )
        if r.status_code != 201:
            call.problems.append(f"POST /api/calls: {r.status_code} {r.text[:200]}")
            return
        started = r.json()
        url = f"{started['ws_url']}&token={started['call_token']}"
        async with connect(url, max_size=2**22, compression=None) as ws:
            call.ws = ws
            reader = asyncio.create_task(_read(call))
            sender = asyncio.create_task(ticker.send_audio(call))
            await call.wait_for(lambda: call.waiting >= 1, "the greeting")
            for _ in range(args.turns):
                await asyncio.sleep(rng.uniform(*PAUSE_S))
                seen = call.waiting
                call.speech_end_at = call.first_audio_at = None
                call.speech_left = len(SPEECH_FRAMES)
                await call.wait_for(lambda: call.first_audio_at is not None, "the agent's reply")
                await call.wait_for(lambda s=seen: call.waiting > s, "the end of the reply")
            sender.cancel()
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"type": "hangup"}))
    except (TimeoutError, ConnectionError, OSError, httpx.HTTPError, ConnectionClosed) as exc:
        call.problems.append(f"{type(exc).__name__}: {exc}".strip())
    finally:
        if sender is not None:
            sender.cancel()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(5):
                    await reader
            reader.cancel()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    ticker = Ticker()
    calls = [Call(i, fallback_line=args.fallback_line) for i in range(args.calls)]
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    async with httpx.AsyncClient(timeout=AGENT_TIMEOUT_S, limits=limits) as http:
        await asyncio.gather(
            *(run_call(c, http=http, args=args, ticker=ticker, rng=rng) for c in calls)
        )
    wall = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "calls": args.calls,
        "latencies_ms": [x for c in calls for x in c.latencies_ms],
        "server_metrics": [m for c in calls for m in c.metrics],
        "errors": [f"call {c.index}: {p}" for c in calls for p in c.problems],
        "failed_calls": sum(1 for c in calls if c.problems),
        "peak_connected": ticker.peak,
        "ticker_late_ms": ticker.late_ms,
        "wall_s": wall,
        "cpu_s": cpu_s,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="concurrency benchmark load generator")
    parser.add_argument("--base", required=True, help="service base URL (http://host:port)")
    parser.add_argument("--token", required=True, help="operator bearer token")
    parser.add_argument("--agent", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--ramp-s", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fallback-line", default=None)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.turns < 1 or args.ramp_s < 0:
        parser.error("--calls and --turns must be >= 1 and --ramp-s >= 0")
    try:
        import uvloop

        result = uvloop.run(main_async(args))
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        result = asyncio.run(main_async(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":  # pragma: no cover
    main()
