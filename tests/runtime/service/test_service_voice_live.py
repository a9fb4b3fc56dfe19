"""Issues 5 and 7 in process: a service voice call over the real WebSocket
route (fake speech providers) puts its pipeline events on the in-process live
bus in the Live page's format, and records each turn's per-stage latencies on
that turn, where the analytics latency endpoint finds them.

The service runs in the test's own event loop (uvicorn serving the app with its
lifespan), so the test subscribes to the very `LocalLiveBus` the call publishes
on. Timeouts are hang guards only."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from builder.dashboard.live_feed import LiveFeed
from runtime.service import ServiceSettings, create_app
from runtime.service.calls import CallService
from runtime.voice.stages.base import PipelineConfig
from runtime.voice.websocket import VoiceCall
from tests.runtime.service.conftest import ADMIN, SECRET
from tests.runtime.voice.fakes import Codebook, FakeSTT, FakeTTS, FakeVAD, square_wave
from tests.runtime.voice.wsclient import VoiceClient, call

FLOW = """
schema: switchboard/v1
id: ws-live
name: Live voice test
start: ask
voice: {stt: standin, tts: standin, end_of_turn_ms: 300}
nodes:
  ask: {type: collect, slot: name, kind: text, prompt: "Hello! What is your name?", next: bye}
  bye: {type: end, text: "Goodbye {name}."}
"""
LONG = " ".join(["We are open every weekday from nine to five."] * 4)
BARGE_FLOW = f"""
schema: switchboard/v1
id: ws-barge
name: Barge-in live test
start: hello
voice: {{stt: standin, tts: standin, end_of_turn_ms: 300, barge_in: {{min_speech_ms: 200}}}}
nodes:
  hello: {{type: say, text: "{LONG}", next: ask}}
  ask: {{type: collect, slot: name, kind: text, prompt: "What is your name?", next: bye}}
  bye: {{type: end, text: "Goodbye {{name}}."}}
"""
CODEBOOK = Codebook()
STAGES = {"stt_ms", "graph_ms", "tts_ttfa_ms", "e2e_ms"}
HANG_GUARD_S = 30.0


def caller_line(text: str) -> bytes:
    """Codebook speech for `text` followed by 600 ms of silence."""
    return square_wave(CODEBOOK.amplitude(text), 250 * len(text.split())) + b"\x00" * 19200


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` (lifespan included) in this event loop; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(HANG_GUARD_S):
            while not server.started:
                assert not task.done(), "the service did not start"
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, HANG_GUARD_S)
        sock.close()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setenv("SWITCHBOARD_VAD", "standin")  # the service's own VAD is replaced
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    (graphs / "ws-live.yaml").write_text(FLOW)
    (graphs / "ws-barge.yaml").write_text(BARGE_FLOW)
    settings = ServiceSettings(
        jwt_secret=SECRET,
        admin_user=ADMIN[0],
        admin_password=ADMIN[1],
        graphs_dir=graphs,
        checkpoint_url="memory://",
        database_url=f"sqlite:///{tmp_path / 'calls.db'}",
        redis_url=None,
        record_calls=False,
    )
    return create_app(settings)


def fake_speech(app: FastAPI, speed: float) -> None:
    """The service's voice calls, on fake VAD/STT/TTS (everything else real)."""
    service: CallService = app.state.calls
    real = service.voice_setup()

    async def setup(session_id: str, graph: str | None, caller: str | None) -> VoiceCall:
        made: VoiceCall = await real(session_id, graph, caller)
        made.vad, made.stt, made.tts = FakeVAD(), FakeSTT(CODEBOOK), FakeTTS(word_ms=300)
        made.config = PipelineConfig.for_graph(made.session.compiled.root, speed=speed)
        return made

    app.state.voice_setup = setup


class Feed:
    """Every message of the in-process live bus, collected in the background."""

    def __init__(self, app: FastAPI) -> None:
        self.messages: list[dict[str, Any]] = []
        self._stream = app.state.live.subscribe()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Feed:
        first = await anext(self._stream)
        assert first["type"] == "subscribed"
        self._task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        async for message in self._stream:
            self.messages.append(message)

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._stream.aclose()

    def of(self, call_id: str, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["call_id"] == call_id and m["type"] == kind]


async def _start(http: httpx.AsyncClient, agent: str) -> tuple[str, str, dict[str, str]]:
    login = await http.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    op = {"Authorization": f"Bearer {login.json()['access_token']}"}
    r = await http.post("/api/calls", json={"agent": agent, "transport": "websocket"}, headers=op)
    assert r.status_code == 201, r.text
    body = r.json()
    return body["call_id"], f"{body['ws_url']}&token={body['call_token']}", op


async def _played(client: VoiceClient, seconds: float) -> None:
    """Wait until the client has received `seconds` of agent audio."""
    async with asyncio.timeout(HANG_GUARD_S):
        while len(client.audio) < seconds * 32000:
            await asyncio.sleep(0.02)


async def _ended(client: VoiceClient) -> None:
    hangup = await client.next_event("hangup", timeout_s=HANG_GUARD_S)
    assert hangup["reason"] == "completed"
    code, _ = await client.wait_closed(HANG_GUARD_S)
    assert code == 1000


async def _turns(
    http: httpx.AsyncClient, app: FastAPI, call_id: str, op: dict[str, str]
) -> list[dict[str, Any]]:
    assert await app.state.recorder.flush(HANG_GUARD_S)
    r = await http.get(f"/api/calls/{call_id}", headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "completed"
    turns: list[dict[str, Any]] = r.json()["turns"]
    return turns


async def test_a_voice_call_feeds_the_live_bus_and_records_its_latencies(app: FastAPI) -> None:
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        fake_speech(app, speed=20.0)
        async with Feed(app) as feed:
            call_id, url, op = await _start(http, "ws-live")
            async with call(url) as client:
                await client.next_event("waiting", timeout_s=HANG_GUARD_S)
                await client.send_audio(caller_line("Ana"))
                await client.send_audio(b"\x00" * 32000)  # the line stays open
                await _ended(client)
            turns = await _turns(http, app, call_id, op)
            await asyncio.sleep(0)  # the bus hands over what is queued

        # The live feed: caller transcripts (interim, then final), per-turn
        # metrics with their step and latencies, the hang-up.
        interim = [m for m in feed.of(call_id, "transcript") if not m["final"]]
        final = [m for m in feed.of(call_id, "transcript") if m["final"]]
        assert interim and interim[-1]["text"] == "Ana"
        assert [m["text"] for m in final] == ["Ana"]
        assert all(m["agent"] == "ws-live" and m["at"] > 0 for m in feed.of(call_id, "transcript"))
        metrics = {m["step"]: m for m in feed.of(call_id, "metrics")}
        assert set(metrics) == {0, 1}
        assert set(metrics[1]["latencies"]) >= STAGES and "e2e" in metrics[1]["text"]
        assert metrics[1]["caller_text"] == "Ana"
        assert feed.of(call_id, "hangup")[0]["reason"] == "completed"
        # Graph events are published once, by the session, not again by the pipeline.
        assert len(feed.of(call_id, "agent")) == 2 and len(feed.of(call_id, "caller")) == 1

        # What the Live page makes of it.
        page = LiveFeed("redis://unused")
        for message in feed.messages:
            page.handle(message)
        seen = page.snapshot(call_id)
        assert seen is not None and seen.ended and seen.interim_caller is None
        assert "metrics" in [e["type"] for e in seen.events]

        # The record: the agent turn of each step carries that step's latencies.
        agents = {t["step"]: t for t in turns if t["role"] == "agent"}
        assert set(agents[1]["latencies"]) >= STAGES
        for stage in STAGES:
            assert agents[1]["latencies"][stage] == pytest.approx(
                metrics[1]["latencies"][stage], abs=1e-6
            )
        assert {"graph_ms", "tts_ttfa_ms"} <= set(agents[0]["latencies"])
        assert all(t["latencies"] is None for t in turns if t["role"] == "caller")

        r = await http.get("/api/analytics/latency", headers=op)
        assert r.status_code == 200, r.text
        listed = {s["stage"]: s for s in r.json()}
        assert set(listed) >= STAGES
        assert listed["stt_ms"]["count"] == 1 and listed["e2e_ms"]["count"] == 1


async def test_a_barge_in_reaches_the_live_bus_with_what_was_heard(app: FastAPI) -> None:
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        fake_speech(app, speed=1.0)
        async with Feed(app) as feed:
            call_id, url, op = await _start(http, "ws-barge")
            async with call(url) as client:
                await client.next_event("agent", timeout_s=HANG_GUARD_S)
                await _played(client, seconds=0.5)  # into the 12 s greeting
                await client.send_audio(caller_line("Ana"), realtime=True)
                await client.send_audio(b"\x00" * 32000)
                barge = await client.next_event("barge_in", timeout_s=HANG_GUARD_S)
                await client.next_event("caller", timeout_s=HANG_GUARD_S)
                await client.ws.send('{"type": "hangup"}')
                await client.wait_closed(HANG_GUARD_S)
            assert await app.state.recorder.flush(HANG_GUARD_S)
            await asyncio.sleep(0)

        (live,) = feed.of(call_id, "barge_in")
        assert live["cut"] == barge["cut"] and live["cut"]
        # The agent was paused at the speech onset, before the barge-in.
        (paused,) = feed.of(call_id, "barge_in_paused")
        assert paused["at"] <= live["at"]
        heard = live["cut"][0]["heard"]
        assert heard and LONG.startswith(heard) and live["text"].startswith(heard)
        r = await http.get(f"/api/calls/{call_id}", headers=op)
        greeting = next(t for t in r.json()["turns"] if t["role"] == "agent" and t["step"] == 0)
        assert greeting["interrupted"] and greeting["heard_text"] == heard
        # (Recorded as reported with the turn's metrics: to 0.1 ms.)
        stop_ms = live["detect_to_stop_ms"]
        assert greeting["latencies"]["bargein_ms"] == pytest.approx(stop_ms, abs=0.05)
