"""A voice test call from the builder: a caller utterance synthesized with
eSpeak NG goes in through the microphone widget, Whisper tiny.en transcribes
it, the agent answers in audio, and the call's recording is kept with a
Recording row (Streamlit AppTest, temporary SQLite database, offline models)."""

from __future__ import annotations

import asyncio
import io
import json
import wave
from pathlib import Path
from typing import Any

import pytest

from builder.views.testcall import KEY as CALL_KEY
from builder.views.testcall import voice_turn
from builder.views.testcall_voice import VoiceInputError, caller_pcm, decode_wav, wav_bytes
from runtime.voice.audio import read_wav
from runtime.voice.providers.espeak_tts import EspeakTTS
from tests.builder.testcall_support import call_db, click, rows, start_app

__all__ = ["call_db"]  # a fixture

UTTERANCE = "I need a cleaning"


def spoken_wav(text: str) -> tuple[bytes, float]:
    """`text` spoken by eSpeak NG as WAV bytes at its own rate (22,050 Hz), and
    its length in seconds."""
    tts = EspeakTTS()
    pcm = asyncio.run(tts.render(text))
    return wav_bytes(pcm, tts.sample_rate), len(pcm) / 2 / tts.sample_rate


def audio_elements(at: Any) -> list[Any]:
    return list(at.get("audio"))


def test_a_voice_turn_is_transcribed_answered_in_audio_and_recorded(
    dental_file: Path, call_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(dental_file.parent, monkeypatch)
    at.toggle[0].set_value(True).run()
    click(at, "Start test call")
    assert len(audio_elements(at)) == 1  # the greeting, spoken
    assert audio_elements(at)[0].proto.autoplay

    wav, caller_s = spoken_wav(UTTERANCE)
    at.audio_input[0].set_value(("utterance.wav", wav, "audio/wav")).run()
    assert not at.exception, at.exception

    call = at.session_state[CALL_KEY]
    caller_turn = call.turns[1]
    assert caller_turn.caller is not None
    assert "need a cleaning" in caller_turn.caller.lower()
    assert caller_turn.heard_confidence is not None
    captions = "\n".join(str(c.value) for c in at.caption)
    assert "heard by voice" in captions and "intent book" in captions
    assert "ask_day" in at.session_state["switchboard_editor"].call_path
    players = audio_elements(at)
    assert len(players) == 2 and players[-1].proto.autoplay  # the reply plays at once
    assert not players[0].proto.autoplay
    assert call.turns[1].audio and call.turns[1].audio.startswith(b"RIFF")

    [said] = rows(call_db, "SELECT text FROM turns WHERE step = 1 AND role = 'caller'")
    assert said["text"] == caller_turn.caller
    [reply] = rows(call_db, "SELECT latencies FROM turns WHERE step = 1 AND role = 'agent'")
    stages = json.loads(reply["latencies"])
    assert {"stt_ms", "graph_ms", "tts_ttfa_ms", "e2e_ms"} <= set(stages)
    assert rows(call_db, "SELECT * FROM recordings") == []  # written when the call ends

    click(at, "Hang up")
    [rec] = rows(call_db, "SELECT * FROM recordings")
    path = Path(rec["path"])
    assert path.parent == tmp_path / "recordings" and path.name == f"{call.session.call_id}.wav"
    pcm, rate = read_wav(path)
    assert rate == rec["sample_rate"] == 16000
    assert rec["duration_s"] == pytest.approx(len(pcm) / 2 / rate, abs=0.01)
    assert rec["duration_s"] > caller_s  # the caller and the agent are both on it
    [ended] = rows(call_db, "SELECT outcome FROM calls")
    assert ended["outcome"] == "abandoned"
    assert str(path) in "\n".join(str(c.value) for c in at.caption)


def test_a_recording_that_is_not_speech_is_refused_without_a_turn(
    dental_file: Path, call_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(dental_file.parent, monkeypatch)
    click(at, "Start test call")
    call = at.session_state[CALL_KEY]
    assert voice_turn(call, b"not a wav file") is None
    assert call.notice is not None and "not a PCM WAV" in call.notice
    silent = wav_bytes(b"\x00\x00" * 16000, 16000)
    assert voice_turn(call, silent) is None
    assert call.notice is not None and "Nothing was recognised" in call.notice
    assert len(call.turns) == 1  # only the opening
    assert len(rows(call_db, "SELECT * FROM turns WHERE role = 'caller'")) == 0


def _wav(samples: bytes, *, rate: int, width: int, channels: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples)
    return out.getvalue()


def test_browser_recordings_are_converted_to_16khz_mono() -> None:
    # stereo 48 kHz (a browser's choice when it ignores the requested rate)
    frames = (b"\x10\x00\x30\x00") * 4800  # left 16, right 48 -> mono 32
    pcm, rate = decode_wav(_wav(frames, rate=48000, width=2, channels=2))
    assert rate == 48000 and pcm[:2] == (32).to_bytes(2, "little", signed=True)
    assert len(caller_pcm(_wav(frames, rate=48000, width=2, channels=2))) == 1600 * 2
    with pytest.raises(VoiceInputError, match="empty"):
        caller_pcm(_wav(b"", rate=16000, width=2, channels=1))
    with pytest.raises(VoiceInputError, match="at most 30 s"):
        caller_pcm(_wav(b"\x00\x00" * 16000 * 31, rate=16000, width=2, channels=1))
    with pytest.raises(VoiceInputError, match="sample width"):
        decode_wav(_wav(b"\x00\x00\x00" * 10, rate=16000, width=3, channels=1))


def test_a_voice_that_cannot_speak_leaves_the_call_going_in_text(
    dental_file: Path, call_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_TTS", "nosuch")
    at = start_app(dental_file.parent, monkeypatch)
    at.toggle[0].set_value(True).run()
    click(at, "Start test call")
    warnings = "\n".join(str(w.value) for w in at.warning)
    assert "could not be spoken" in warnings and "nosuch" in warnings
    lines = "\n".join(str(m.value) for msg in at.chat_message for m in msg.markdown)
    assert "How can I help you today?" in lines
    assert audio_elements(at) == []
    [call] = rows(call_db, "SELECT ended_at FROM calls")
    assert call["ended_at"] is None
