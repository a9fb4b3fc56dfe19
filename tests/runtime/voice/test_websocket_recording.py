"""Recordings of WebSocket calls: both sides on one timeline in a two-channel
WAV (caller left, agent right), barge-in cuts applied, memory bounded, files
never overwritten; the route hands every call's recording to its hook."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from runtime.voice.recording import CallAudioRecorder
from runtime.voice.websocket import create_voice_app
from tests.runtime.voice.test_websocket import caller_line, fake_setup, finish_call
from tests.runtime.voice.wsclient import call, serve


class Clock:
    def __init__(self) -> None:
        self.ms = 0.0

    def __call__(self) -> float:
        return self.ms


def tone(amplitude: int, ms: float) -> bytes:
    return np.full(round(ms * 16), amplitude, dtype="<i2").tobytes()


def channels(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 2 and wav.getsampwidth() == 2
        rate = wav.getframerate()
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return frames[:, 0], frames[:, 1], rate


def test_both_sides_land_where_they_happened(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallAudioRecorder(clock=clock)
    rec.start()
    clock.ms = 1000.0
    rec.agent(tone(1000, 500))  # the greeting, sent at 1.0 s
    for i in range(25):  # the caller speaks 2.0-2.5 s, one 20 ms frame as each ends
        clock.ms = 2000.0 + 20 * (i + 1)
        rec.caller(tone(2000, 20))
    saved = rec.save(tmp_path, "call-1")
    left, right, rate = channels(saved.path)
    assert rate == 16000 and saved.sample_rate == 16000 and saved.channels == 2
    assert saved.path == tmp_path / "call-1.wav"
    assert saved.duration_s == pytest.approx(2.5, abs=0.001)
    assert np.flatnonzero(right)[[0, -1]].tolist() == [16000, 23999]
    assert np.flatnonzero(left)[[0, -1]].tolist() == [32000, 39999]
    assert set(np.unique(right)) == {0, 1000} and set(np.unique(left)) == {0, 2000}


def test_a_barge_in_cuts_the_agent_audio_not_yet_heard(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallAudioRecorder(clock=clock)
    rec.start()
    rec.agent(tone(1000, 3000))  # 3 s of answer queued at once
    clock.ms = 1200.0
    rec.clear()  # the caller talked over it at 1.2 s
    clock.ms = 2000.0
    rec.agent(tone(500, 100))  # the next reply
    _, right, _ = channels(rec.save(tmp_path, "c").path)
    assert np.count_nonzero(right == 1000) == 1200 * 16
    assert np.flatnonzero(right == 500)[0] == 2000 * 16


def test_memory_is_bounded_and_names_are_never_reused(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallAudioRecorder(clock=clock, max_s=1.0)
    rec.start()
    for i in range(100):  # 2 s of caller audio against a 1 s limit
        clock.ms = 20.0 * (i + 1)
        rec.caller(tone(100, 20))
    first = rec.save(tmp_path, "../x/y")
    second = rec.save(tmp_path, "../x/y")
    assert first.truncated and first.duration_s == pytest.approx(1.0)
    assert first.path.parent == tmp_path and second.path.parent == tmp_path
    assert first.path.name == ".._x_y.wav" and second.path.name == ".._x_y-2.wav"
    assert not list(tmp_path.glob(".*.part"))


def test_nothing_to_save_is_empty() -> None:
    assert CallAudioRecorder().empty()
    with pytest.raises(ValueError):
        CallAudioRecorder(max_s=0)


async def test_the_route_hands_each_call_recording_to_its_hook(tmp_path: Path) -> None:
    kept: dict[str, Path] = {}

    async def keep(session_id: str, recording: CallAudioRecorder) -> None:
        kept[session_id] = recording.save(tmp_path, session_id).path

    with serve(create_voice_app(setup=fake_setup, recordings=keep)) as url:
        async with call(f"{url}/ws/call/rec-1?graph=ws-test") as client:
            await finish_call(client)
            assert (await client.next_event("outcome"))["outcome"] == "completed"
            await client.wait_closed()
        # The hook runs as the route winds down, after the socket closed.
        async with call(f"{url}/ws/call/rec-2?graph=ws-test") as probe:
            await probe.next_event("ready")
            await probe.ws.send('{"type": "hangup"}')
            await probe.wait_closed()
    assert "rec-1" in kept
    left, right, _ = channels(kept["rec-1"])
    sent = np.frombuffer(caller_line("Ana"), dtype="<i2")
    loud = int(np.abs(sent).max())
    assert int(np.abs(left).max()) == loud  # the caller's words, on the left
    assert np.count_nonzero(left) == np.count_nonzero(sent)
    # The agent's two lines (300 ms a word, 7 words), on the right.
    assert np.count_nonzero(right) > 0.5 * 7 * 0.3 * 16000
