"""Issue 5, done as a new user would: a scripted client against a real
`switchboard serve` process logs in, starts a WebSocket call, streams caller
speech synthesized by the embedded eSpeak NG in real time, and afterwards finds
the call, its transcript, per-stage latencies (STT, graph, TTS, end to end, and
their analytics percentiles), outcome and recording through the API —
on SQLite and on PostgreSQL (CI=true fails rather than skips without it).

The service runs its offline defaults (Silero VAD, Whisper tiny.en, eSpeak);
the phrases are ones Whisper transcribes reliably from eSpeak (see
tests/runtime/voice/test_websocket_e2e.py). Timeouts are hang guards only.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from runtime.voice.providers.espeak_tts import EspeakTTS
from tests.runtime.db.dbhelpers import provision
from tests.runtime.service.conftest import ADMIN, GRAPHS_DIR, SECRET
from tests.runtime.service.processes import service_process
from tests.runtime.voice.wsclient import book_by_voice, call

RECORD_DEADLINE_S = 60.0
TURN_TIMEOUT_S = 180.0


@asynccontextmanager
async def running_service(kind: str, tmp_path: Path, pg_url: str | None) -> AsyncIterator[str]:
    async with provision(kind, tmp_path, pg_url) as db:
        env = {
            **os.environ,
            "SWITCHBOARD_JWT_SECRET": SECRET,
            "SWITCHBOARD_ADMIN_USER": ADMIN[0],
            "SWITCHBOARD_ADMIN_PASSWORD": ADMIN[1],
            "SWITCHBOARD_GRAPHS_DIR": str(GRAPHS_DIR),
            "SWITCHBOARD_CHECKPOINT_URL": f"sqlite:///{tmp_path / 'checkpoints.db'}",
            "SWITCHBOARD_DATABASE_URL": db.url,
            "SWITCHBOARD_RECORDINGS_DIR": str(tmp_path / "recordings"),
        }
        env.pop("SWITCHBOARD_REDIS_URL", None)
        env.pop("SWITCHBOARD_RECORD_CALLS", None)  # on by default
        if db.schema:
            env["SWITCHBOARD_DATABASE_SCHEMA"] = db.schema
        else:
            env.pop("SWITCHBOARD_DATABASE_SCHEMA", None)
        with service_process(env, tmp_path / "service.log") as base:
            yield base


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    if request.param == "postgresql":
        return "postgresql", request.getfixturevalue("database_url")
    return "sqlite", None


async def test_a_scripted_client_calls_by_voice_and_finds_everything_through_the_api(
    backend: tuple[str, str | None], tmp_path: Path
) -> None:
    kind, pg_url = backend
    voice = EspeakTTS()
    async with (
        running_service(kind, tmp_path, pg_url) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as http,
    ):
        login = await http.post(
            "/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}
        )
        assert login.status_code == 200, login.text
        op = {"Authorization": f"Bearer {login.json()['access_token']}"}
        started = await http.post(
            "/api/calls",
            json={"agent": "dental-booking", "caller": "+15551230001", "transport": "websocket"},
            headers=op,
        )
        assert started.status_code == 201, started.text
        body = started.json()
        call_id, call_token = body["call_id"], body["call_token"]
        assert body["ws_url"].startswith(base.replace("http://", "ws://"))

        async with call(f"{body['ws_url']}&token={call_token}") as client:
            try:
                await book_by_voice(client, voice, TURN_TIMEOUT_S)
                hangup = await client.next_event("hangup", timeout_s=TURN_TIMEOUT_S)
                code, _ = await client.wait_closed()
            except (TimeoutError, AssertionError) as exc:
                said = [(e["type"], e.get("text") or e.get("name")) for e in client.events]
                raise AssertionError(f"the call went: {said}") from exc
        assert hangup["reason"] == "completed" and code == 1000

        detail = await _recorded(http, call_id, op)
        assert detail["transport"] == "websocket" and detail["agent"] == "dental-booking"
        assert detail["outcome"] == "completed"
        callers = [t["text"].lower() for t in detail["turns"] if t["role"] == "caller"]
        assert callers == [e["text"].lower() for e in client.of_type("caller")]
        assert "cleaning" in callers[0] and "maria" in callers[-1]
        agents = [t for t in detail["turns"] if t["role"] == "agent"]
        assert agents and agents[-1]["node"] == "confirm"
        timed = [t["latencies"] for t in agents if t.get("latencies")]
        assert timed and all(lat["graph_ms"] >= 0 for lat in timed)
        # Issue 7: each answered caller turn has its speech latencies too, as
        # the pipeline measured them (its metrics events), on its agent line.
        answered = {t["step"]: t["latencies"] or {} for t in agents if t["step"] > 0}
        assert len(answered) == len(callers)
        for step, lat in answered.items():
            assert {"stt_ms", "graph_ms", "tts_ttfa_ms", "e2e_ms"} <= set(lat), (step, lat)
            assert lat["stt_ms"] > 0 and lat["e2e_ms"] > 0, (step, lat)
        measured = {m["caller_text"]: m for m in client.of_type("metrics") if m.get("caller_text")}
        for turn in (t for t in detail["turns"] if t["role"] == "caller"):
            lat = answered[turn["step"]]
            assert lat["e2e_ms"] == measured[turn["text"]]["end_to_end_ms"]
        stages = await http.get(
            "/api/analytics/latency", params={"agent": "dental-booking"}, headers=op
        )
        assert stages.status_code == 200, stages.text
        listed = {s["stage"]: s for s in stages.json()}
        for stage in ("stt_ms", "e2e_ms"):
            assert listed[stage]["count"] == len(callers), listed
            assert 0 < listed[stage]["p50"] <= listed[stage]["p99"]
        # (The greeting's speech is timed too: it has no caller turn before it.)
        assert listed["tts_ttfa_ms"]["count"] == len(callers) + 1, listed
        assert any(tc["name"] == "calendar.book" and not tc["error"] for tc in detail["tool_calls"])

        listed = await http.get(
            "/api/calls", params={"transport": "websocket", "agent": "dental-booking"}, headers=op
        )
        assert [c["id"] for c in listed.json()["items"]] == [call_id]

        (rec,) = detail["recordings"]
        assert rec["sample_rate"] == 16000 and rec["duration_s"] > 5
        assert Path(rec["path"]).parent == (tmp_path / "recordings").resolve()
        for headers in (op, {"Authorization": f"Bearer {call_token}"}):
            wav = await http.get(f"/api/calls/{call_id}/recording", headers=headers)
            assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
        _check_recording(wav.content, rec["duration_s"])
        assert (await http.get(f"/api/calls/{call_id}/recording")).status_code == 401


async def _recorded(http: httpx.AsyncClient, call_id: str, op: dict[str, str]) -> dict[str, Any]:
    """The call as the API shows it, once its outcome and recording are written."""
    deadline = time.monotonic() + RECORD_DEADLINE_S
    while True:
        r = await http.get(f"/api/calls/{call_id}", headers=op)
        detail: dict[str, Any] = r.json()
        if r.status_code == 200 and detail["outcome"] and detail["recordings"]:
            return detail
        assert time.monotonic() < deadline, detail
        await asyncio.sleep(0.2)


def _check_recording(data: bytes, duration_s: float) -> None:
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == 16000
        assert wav.getnframes() / 16000 == pytest.approx(duration_s, abs=0.01)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    loud = np.abs(frames.astype(np.int32)) >= 500
    caller_s, agent_s = loud.sum(axis=0) / 16000
    # Four spoken lines on the left; the agent's greeting and replies on the right.
    assert caller_s > 1.0 and agent_s > 3.0
    # Mostly apart: the caller speaks while the agent listens.
    assert (loud[:, 0] & loud[:, 1]).sum() / 16000 < 0.25 * caller_s
