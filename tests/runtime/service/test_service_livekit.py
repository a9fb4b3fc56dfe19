"""`POST /api/livekit/calls`: the service sends its agent into a LiveKit room
(the real `livekit` SDK against the local fake SFU), hands the caller a token
for that room, runs the call there and records it; missing settings are a 503
and a refused join a 502 with the call recorded as failed."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aioice.ice import get_host_addresses
from fastapi import FastAPI
from pydantic import SecretStr

from runtime.service import ServiceSettings, create_app
from runtime.voice.livekit_tokens import verify_token
from runtime.voice.providers import standin
from tests.fakes.livekit_sfu import FakeSfu
from tests.fakes.livekit_signal import FakeSignalServer
from tests.fakes.twilio_media import tone_pcm

KEY = "APIswitchboardtest"
SECRET = "a-test-secret-that-is-long-enough-for-hs256!"
ADMIN = ("admin", "correct horse battery staple")
CEILING_S = 45.0
#: The stand-in TTS speaks a -30 dBFS tone (~730 RMS); silence decodes near 0.
SPOKEN_RMS = 300.0
FLOW = """
schema: switchboard/v1
id: lk-desk
name: LiveKit desk
start: ask
voice: {end_of_turn_ms: 300}
nodes:
  ask: {type: collect, slot: name, kind: text, prompt: "Hello! What is your name?", next: bye}
  bye: {type: end, text: "Goodbye."}
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServiceSettings:
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    (graphs / "lk-desk.yaml").write_text(FLOW)
    for name in ("SWITCHBOARD_STT", "SWITCHBOARD_TTS", "SWITCHBOARD_VAD"):
        monkeypatch.setenv(name, "standin")
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return ServiceSettings(
        jwt_secret=SecretStr("s" * 48),
        admin_user=ADMIN[0],
        admin_password=SecretStr(ADMIN[1]),
        graphs_dir=graphs,
        checkpoint_url="memory://",
        database_url=f"sqlite:///{tmp_path / 'calls.db'}",
        redis_url=None,
        record_calls=False,
    )


@asynccontextmanager
async def running(settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The app started in this event loop (the fake SFU shares it), logged in."""
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            r = await client.post(
                "/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}
            )
            assert r.status_code == 200, r.text
            client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
            yield client


def use_livekit(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("LIVEKIT_URL", url)
    monkeypatch.setenv("LIVEKIT_API_KEY", KEY)
    monkeypatch.setenv("LIVEKIT_API_SECRET", SECRET)


async def until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` (media runs in real time) until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def quiet_for(sfu: FakeSfu, seconds: float) -> bool:
    last = sfu.last_loud_at(SPOKEN_RMS)
    return last is not None and time.monotonic() - last > seconds


async def test_a_livekit_call_runs_in_the_room_and_is_recorded(
    settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not get_host_addresses(use_ipv4=True, use_ipv6=True):
        reason = "no non-loopback network interface for ICE host candidates"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    async with asyncio.timeout(CEILING_S), FakeSfu(KEY, SECRET, caller_identity="maria") as sfu:
        use_livekit(monkeypatch, sfu.url)
        async with running(settings) as client:
            r = await client.post(
                "/api/livekit/calls",
                json={"agent": "lk-desk", "caller_identity": "maria", "caller": "+15551230001"},
            )
            assert r.status_code == 201, r.text
            started = r.json()
            call_id = started["call_id"]
            assert (started["url"], started["room"]) == (sfu.url, f"switchboard-{call_id}")
            claims = verify_token(started["caller_token"], KEY, SECRET)
            assert claims.identity == "maria"
            assert claims.video is not None and claims.video.room == started["room"]
            # The agent joined the room under its own identity and asks its question.
            assert sfu.sessions and sfu.sessions[0].claims.identity == started["agent_identity"]
            await until(lambda: quiet_for(sfu, 0.6), 15, "the agent's question")
            sfu.caller.say(tone_pcm(440, 800, 48000))

            async def ended() -> dict[str, Any]:
                while True:
                    detail = await client.get(f"/api/calls/{call_id}")
                    if detail.status_code == 200 and detail.json()["outcome"]:
                        return dict(detail.json())
                    await asyncio.sleep(0.1)

            detail = await ended()
            await until(lambda: "leave" in sfu.sessions[0].requests, 5, "the agent's leave")
    assert (detail["outcome"], detail["transport"], detail["caller"]) == (
        "completed",
        "livekit",
        "+15551230001",
    )
    said = [(t["role"], t["text"]) for t in detail["turns"]]
    assert said == [
        ("agent", "Hello! What is your name?"),
        ("caller", standin.STANDIN_TEXT),
        ("agent", "Goodbye."),
    ]


async def test_livekit_unconfigured_is_a_503_naming_the_settings(
    settings: ServiceSettings,
) -> None:
    async with running(settings) as client:
        r = await client.post("/api/livekit/calls", json={"agent": "lk-desk"})
    assert r.status_code == 503
    assert "LIVEKIT_URL" in r.text and "LIVEKIT_API_SECRET" in r.text


async def test_a_refused_join_is_a_502_and_the_call_is_recorded_failed(
    settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with asyncio.timeout(CEILING_S), FakeSignalServer(KEY, SECRET) as server:
        use_livekit(monkeypatch, server.url)
        async with running(settings) as client:
            r = await client.post("/api/livekit/calls", json={"agent": "lk-desk"})
            assert r.status_code == 502, r.text
            assert "could not join LiveKit room 'switchboard-" in r.json()["detail"]
            calls = (await client.get("/api/calls")).json()["items"]
            unknown = await client.post("/api/livekit/calls", json={"agent": "no-such-agent"})
    assert [(c["transport"], c["outcome"]) for c in calls] == [("livekit", "failed")]
    assert server.attempts and server.attempts[0].claims is not None
    assert unknown.status_code == 404
