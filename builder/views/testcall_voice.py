"""Voice for the builder's test call: the caller's recording from the browser
microphone (`st.audio_input`, a WAV file) to text with the graph's STT, and the
agent's lines to speech with the graph's TTS.

Providers come from the graph's `voice:` settings (environment overrides
apply, see `runtime.voice.providers.registry`): offline, Whisper tiny.en and
eSpeak NG. Each provider is made once per process (`st.cache_resource`); the
Whisper model itself is loaded once per process by its provider. Audio kept
for the call's recording is 16 kHz mono PCM.
"""

from __future__ import annotations

import io
import os
import time
import wave
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from runtime.voice.audio import AudioFormatError, int16_to_pcm, resample
from runtime.voice.providers.base import ProviderError, STTProvider, TTSProvider
from runtime.voice.providers.registry import ENV_STT, ENV_TTS, make_stt, make_tts
from schemas.spec import VoiceSettings

#: Sample rate of everything this module hands back for recording.
RATE = 16000
#: Longest caller recording accepted (Whisper's context is 30 s).
MAX_UTTERANCE_S = 30.0


class VoiceInputError(ValueError):
    """A recording that cannot be used as a caller turn (not a WAV, empty, too long)."""


@dataclass(frozen=True)
class Heard:
    """What the STT made of one recording: the text, the provider's confidence
    (None if it gives none), the caller's audio at `RATE` and the time taken."""

    text: str
    confidence: float | None
    pcm: bytes
    stt_ms: float


@dataclass(frozen=True)
class Spoken:
    """The agent's lines as speech: `wav` for the player, `pcm` at `RATE` for
    the recording, and the time to the first audio chunk (None: no audio)."""

    wav: bytes
    pcm: bytes
    ttfa_ms: float | None


def decode_wav(data: bytes) -> tuple[bytes, int]:
    """(16-bit mono PCM, sample rate) of a WAV file's bytes: 8/16/32-bit
    integer samples, channels averaged. `VoiceInputError` for anything else."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise VoiceInputError(f"the recording is not a PCM WAV file ({exc})") from exc
    if rate <= 0 or channels < 1:
        raise VoiceInputError(f"the recording has a bad header ({channels} channels at {rate} Hz)")
    dtypes: dict[int, np.dtype[Any]] = {
        1: np.dtype(np.uint8),
        2: np.dtype("<i2"),
        4: np.dtype("<i4"),
    }
    if width not in dtypes:
        raise VoiceInputError(f"unsupported WAV sample width of {width} bytes")
    samples = np.frombuffer(raw[: len(raw) - len(raw) % width], dtype=dtypes[width]).astype(
        np.float64
    )
    if width == 1:
        samples = (samples - 128.0) * 256.0
    elif width == 4:
        samples = samples / 65536.0
    frames = samples[: samples.size - samples.size % channels].reshape(-1, channels)
    mono = frames.mean(axis=1)
    return int16_to_pcm(np.clip(np.rint(mono), -32768, 32767).astype(np.int16)), rate


def caller_pcm(data: bytes) -> bytes:
    """The caller's recording as 16 kHz mono PCM. `VoiceInputError` when it is
    not a WAV file, holds no audio, or is longer than `MAX_UTTERANCE_S`."""
    pcm, rate = decode_wav(data)
    if not pcm:
        raise VoiceInputError("the recording is empty")
    seconds = len(pcm) / 2 / rate
    if seconds > MAX_UTTERANCE_S:
        raise VoiceInputError(
            f"the recording is {seconds:.0f} s long; say one turn of at most "
            f"{MAX_UTTERANCE_S:.0f} s"
        )
    try:
        return resample(pcm, rate, RATE)
    except AudioFormatError as exc:
        raise VoiceInputError(str(exc)) from exc


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    """16-bit mono PCM as the bytes of a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return out.getvalue()


# The environment override is part of each cache key, so changing it takes effect.
@st.cache_resource(show_spinner="Loading the speech recogniser…")
def _stt(settings_json: str, override: str) -> STTProvider:
    return make_stt(VoiceSettings.model_validate_json(settings_json))


@st.cache_resource(show_spinner=False)
def _tts(settings_json: str, override: str) -> TTSProvider:
    return make_tts(VoiceSettings.model_validate_json(settings_json))


def stt_for(settings: VoiceSettings) -> STTProvider:
    """The graph's STT provider ($SWITCHBOARD_STT overrides), made once per
    process per settings. `ProviderError` when it cannot be made."""
    return _stt(settings.model_dump_json(), os.environ.get(ENV_STT, ""))


def tts_for(settings: VoiceSettings) -> TTSProvider:
    """The graph's TTS provider and voice ($SWITCHBOARD_TTS overrides), made
    once per process per settings. `ProviderError` when it cannot be made."""
    return _tts(settings.model_dump_json(), os.environ.get(ENV_TTS, ""))


async def transcribe(stt: STTProvider, pcm: bytes) -> Heard:
    """The final transcript of one caller utterance (16 kHz PCM), through the
    provider's stream interface so any STT works. `ProviderError` on failure."""
    began = time.perf_counter()
    audio = pcm if stt.sample_rate == RATE else resample(pcm, RATE, stt.sample_rate)
    stream = await stt.open()
    try:
        await stream.send(audio)
        result = await stream.finalize()
    finally:
        await stream.close()
    elapsed = (time.perf_counter() - began) * 1000.0
    return Heard(" ".join(result.text.split()), result.confidence, pcm, round(elapsed, 3))


async def speak(tts: TTSProvider, lines: list[str]) -> Spoken:
    """All of `lines` spoken one after another. `ProviderError` on failure."""
    began = time.perf_counter()
    first: float | None = None
    chunks: list[bytes] = []
    for line in lines:
        if not line.strip():
            continue
        async for chunk in tts.synthesize(line):
            if first is None and chunk:
                first = (time.perf_counter() - began) * 1000.0
            chunks.append(chunk)
    pcm = b"".join(chunks)
    if not pcm:
        return Spoken(b"", b"", None)
    at_rate = pcm if tts.sample_rate == RATE else resample(pcm, tts.sample_rate, RATE)
    return Spoken(wav_bytes(pcm, tts.sample_rate), at_rate, round(first or 0.0, 3))


__all__ = [
    "RATE",
    "Heard",
    "ProviderError",
    "Spoken",
    "VoiceInputError",
    "caller_pcm",
    "decode_wav",
    "speak",
    "stt_for",
    "transcribe",
    "tts_for",
    "wav_bytes",
]
