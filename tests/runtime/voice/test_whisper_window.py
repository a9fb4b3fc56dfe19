"""Whisper decodes a call utterance in an encoder window cut to its length
(with the full 30 s window as the fallback when the short decode runs away)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from runtime.voice.audio import resample
from runtime.voice.providers import whisper_stt
from runtime.voice.providers.espeak_tts import EspeakTTS


@pytest.fixture(scope="module")
def model() -> Any:
    return whisper_stt.load_model()


@pytest.fixture(scope="module")
def cleaning_16k() -> bytes:
    tts = EspeakTTS()
    return resample(asyncio.run(tts.render("I need a cleaning")), tts.sample_rate, 16000)


@pytest.mark.parametrize(
    ("text", "loop"),
    [
        ("Yes, it's screen. Yes, it's screen. Yes", True),
        ("next Tuesday, next Tuesday", True),
        ("thank " * 40, True),  # long: the compression-ratio rule
        ("I need a cleaning.", False),
        ("no no", False),
        ("94114", False),
        ("", False),
    ],
)
def test_decoder_loops_are_recognised(text: str, loop: bool) -> None:
    assert whisper_stt._repetitive(text) is loop


def test_a_short_window_decodes_the_utterance(model: Any, cleaning_16k: bytes) -> None:
    audio = whisper_stt.pcm_to_float(cleaning_16k)
    decoded = whisper_stt._decode_window(model, audio, "en")
    assert decoded is not None
    text, confidence = decoded
    assert text.lower().rstrip(".") == "i need a cleaning"
    assert confidence is not None and 0 < confidence <= 1
    assert whisper_stt.decode(model, cleaning_16k, "en") == decoded


def test_a_runaway_short_decode_falls_back_to_the_full_window(
    model: Any, cleaning_16k: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(whisper_stt, "_decode_window", lambda *args: None)
    text, _ = whisper_stt.decode(model, cleaning_16k, "en")
    assert text.lower().rstrip(".") == "i need a cleaning"


def test_digital_silence_is_no_speech(model: Any) -> None:
    assert whisper_stt.decode(model, b"\x00\x00" * 32000, "en") == ("", None)
    assert whisper_stt.decode(model, b"", "en") == ("", None)


def test_audio_longer_than_a_window_uses_faster_whisper(
    model: Any, cleaning_16k: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("a short window was used for 31 s of audio")

    monkeypatch.setattr(whisper_stt, "_decode_window", refuse)
    pause = np.zeros(16000 * 31, dtype="<i2").tobytes()
    text, _ = whisper_stt.decode(model, cleaning_16k + pause, "en")
    assert "cleaning" in text.lower()
