"""Offline end-to-end calls over the WebSocket with the embedded providers:
caller lines synthesized by eSpeak NG are streamed in real time into
`/ws/call/{id}`, detected by Silero VAD, recognised by Whisper tiny.en, and
drive graphs/dental-booking.yaml; the agent answers with eSpeak speech.

Whisper's recognition of eSpeak speech is what these tests rely on; the
phrases are ones it transcribes reliably. Timing bounds here are generous on
purpose: the machine is shared and Whisper competes for its two cores; the
exact 300 ms barge-in bound is asserted in virtual time in
test_pipeline_barge_in.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import AIMessage

from runtime.voice.providers.espeak_tts import EspeakTTS
from runtime.voice.websocket import CatalogCallSetup, create_voice_app
from tests.runtime.voice.wsclient import (
    SILENCE_1S,
    VoiceClient,
    book_by_voice,
    call,
    say,
    serve,
    speech,
)
from tools.builtin import default_registry
from tools.store import DemoStore

GRAPHS = Path(__file__).resolve().parents[3] / "graphs"
#: Server-measured caller onset -> agent audio stopped, allowing for a loaded
#: machine (the issue's bound is 300 ms; see the module docstring).
GENEROUS_STOP_MS = 1500


@pytest.fixture(scope="module")
def caller_voice() -> EspeakTTS:
    return EspeakTTS()


def onset_s(pcm: bytes) -> float:
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    return float(np.flatnonzero(samples >= 500)[0]) / 16000


@pytest.fixture(scope="module")
def booking_server() -> Iterator[tuple[str, CatalogCallSetup]]:
    # Agent audio at 3x: only the caller's side needs real time here.
    setup = CatalogCallSetup(GRAPHS, tools=lambda: default_registry(DemoStore()), speed=3.0)
    with serve(create_voice_app(setup=setup)) as url:
        yield url, setup


@pytest.fixture(scope="module")
def realtime_server() -> Iterator[tuple[str, CatalogCallSetup]]:
    setup = CatalogCallSetup(GRAPHS, tools=lambda: default_registry(DemoStore()))
    with serve(create_voice_app(setup=setup)) as url:
        yield url, setup


async def test_a_spoken_call_books_an_appointment(
    booking_server: tuple[str, CatalogCallSetup], caller_voice: EspeakTTS
) -> None:
    url, _ = booking_server
    async with call(f"{url}/ws/call/e2e-book?graph=dental-booking&caller=%2B15551230001") as client:
        await book_by_voice(client, caller_voice, 120)
        hangup = await client.next_event("hangup", timeout_s=120)
        code, _ = await client.wait_closed()
    assert hangup["reason"] == "completed" and code == 1000
    heard = [e["text"].lower() for e in client.of_type("caller")]
    assert len(heard) >= 4
    assert "cleaning" in heard[0] and "maria" in heard[-1]
    assert any("tuesday" in h for h in heard[1:-1])
    booked = [t for t in client.of_type("tool") if t["name"] == "calendar.book"]
    assert len(booked) == 1 and not booked[0].get("error")
    assert booked[0]["args"]["time"] == "10:00"
    assert client.of_type("outcome")[0]["outcome"] == "completed"
    assert client.of_type("agent")[-1]["node"] == "confirm"
    # Per-turn metrics for each caller turn, all stages measured.
    turns = [m for m in client.of_type("metrics") if m["caller_text"]]
    assert len(turns) == len(heard)
    for m in turns:
        assert m["stt_final_ms"] > 0 and m["graph_step_ms"] >= 0
        assert m["tts_first_audio_ms"] >= 0 and m["end_to_end_ms"] >= 700
    assert len(client.audio) > 16000 * 2  # seconds of agent speech came back


HOURS_QUESTIONS = ("what are your opening hours", "when are you open", "what are your hours")


async def _ask_for_opening_hours(client: VoiceClient, voice: EspeakTTS) -> dict[str, Any]:
    """Ask until the agent answers from its `hours` node (Whisper tiny sometimes
    mishears a synthesized phrase; this test is about barge-in, not STT), and
    return that answer's event as soon as it arrives (ahead of its audio)."""
    for question in HOURS_QUESTIONS:
        agents = len(client.of_type("agent"))
        waits = len(client.of_type("waiting"))
        await say(client, voice, question)
        async with asyncio.timeout(120):
            while True:
                answers = [e for e in client.of_type("agent")[agents:] if e.get("node") == "hours"]
                if answers:
                    return answers[0]
                if len(client.of_type("waiting")) > waits:
                    break  # asked again: the question was misheard
                await client.changed()
        # Skip the re-prompt's waiting event, so later waits see only new turns.
        while len(client.of_type("waiting")) > waits:
            await client.next_event("waiting")
            waits += 1
    raise AssertionError(f"no opening-hours answer to any of {HOURS_QUESTIONS}")


async def test_barge_in_over_the_websocket_cuts_the_agent_short(
    realtime_server: tuple[str, CatalogCallSetup], caller_voice: EspeakTTS
) -> None:
    url, setup = realtime_server
    async with call(f"{url}/ws/call/e2e-barge?graph=dental-booking") as client:
        await client.next_event("waiting", timeout_s=120)
        hours = await _ask_for_opening_hours(client, caller_voice)
        # Let about 1.5 s of the 5 s answer play, then talk over it.
        async with asyncio.timeout(60):
            while not client.audio_frames or client.audio_frames[-1][0] < hours["_at"]:
                await asyncio.sleep(0.02)
        await asyncio.sleep(1.5)
        interruption = await speech(caller_voice, "I need a cleaning")
        sent = await client.send_audio(interruption, realtime=True)
        onset = sent[0] - 0.02 + onset_s(interruption)
        await client.send_audio(SILENCE_1S + SILENCE_1S[:6400], realtime=True)
        barge = await client.next_event("barge_in", timeout_s=30)
        await client.next_event("waiting", timeout_s=120)  # after the caller's new turn
        await client.ws.send('{"type": "hangup"}')
        await client.wait_closed()
    assert 0 < barge["onset_to_stop_ms"] <= GENEROUS_STOP_MS
    clear = client.of_type("clear")[0]
    # No agent audio of the interrupted answer after the clear.
    answer_audio = [t for t, _ in client.audio_frames if hours["_at"] <= t < clear["_at"]]
    assert answer_audio and max(answer_audio) <= onset + GENEROUS_STOP_MS / 1000
    # The caller's words became the next turn: booking starts.
    assert "cleaning" in client.of_type("caller")[-1]["text"].lower()
    assert client.of_type("agent")[-1]["node"] == "ask_day"
    # The stored answer is cut to what was played.
    compiled = setup.compiled("dental-booking")
    assert compiled is not None
    snap = await compiled.graph.aget_state(compiled.config("e2e-barge"))
    stored = next(m for m in snap.values["messages"] if m.id == hours["message_id"])
    assert isinstance(stored, AIMessage) and stored.additional_kwargs["interrupted"] is True
    assert hours["text"].startswith(str(stored.content)) and stored.content != hours["text"]
    heard = [e for e in client.of_type("heard") if e["message_id"] == hours["message_id"]]
    assert heard and heard[0]["text"] == stored.content
