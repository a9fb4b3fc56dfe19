"""Provider stand-ins: a VAD, an STT and a TTS that cost (almost) no CPU and
answer after the reference design's measured cloud latencies, so that a load
test measures the orchestration (transport, pipeline, graph, service) and not
the models.

- `EnergyVAD`: speech when a 20 ms frame's peak level is above
  `SPEECH_DBFS` (-35 dBFS) — exact on synthetic audio (tone or noise bursts
  over digital silence), not a detector for real speech.
- `StandinSTT`: its final transcript comes `STT_FINAL_S` (250 ms) after the end
  of speech in the audio it was sent (the last loud frame), like a cloud
  recogniser's endpointing; the text is `STANDIN_TEXT` when the audio held
  speech, else empty. No interim results.
- `StandinTTS`: the first chunk comes `TTS_FIRST_CHUNK_S` (200 ms) after the
  request; the audio is a quiet tone lasting `TTS_S_PER_CHAR` per character,
  in 200 ms chunks, produced at once (the pipeline paces playback).

Choose them with SWITCHBOARD_STT=standin, SWITCHBOARD_TTS=standin and
SWITCHBOARD_VAD=standin (`runtime.voice.providers.registry`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from runtime.voice.providers.base import VAD, Transcript

SAMPLE_RATE = 16000
FRAME_SAMPLES = 320  # 20 ms
#: STT final result, after the end of speech (reference design, Deepgram).
STT_FINAL_S = 0.25
#: TTS first audio chunk, after the request (reference design, ElevenLabs).
TTS_FIRST_CHUNK_S = 0.2
#: Length of synthesized speech per character of text (~16 characters/s).
TTS_S_PER_CHAR = 0.06
TTS_CHUNK_S = 0.2
#: A frame louder than this counts as speech.
SPEECH_DBFS = -35.0
#: What the stand-in recogniser "hears" in any stretch of speech.
STANDIN_TEXT = "I would like to know a little more about that please"

_FULL_SCALE = 32768.0
_SPEECH_PEAK = _FULL_SCALE * 10 ** (SPEECH_DBFS / 20)
_SILENCE = bytes(2 * SAMPLE_RATE // 10)  # 100 ms


def is_loud(pcm: bytes) -> bool:
    """True when the peak level of 16-bit PCM `pcm` is above `SPEECH_DBFS`
    (an empty or odd-length buffer counts by its whole samples). Peak, not RMS:
    no float arrays (~4 us a frame rather than ~30), as this runs for every
    20 ms frame of every call."""
    usable = len(pcm) - len(pcm) % 2
    if usable == 0:
        return False
    if usable <= len(_SILENCE) and pcm[:usable] == _SILENCE[:usable]:
        return False  # digital silence: a byte comparison, no array at all
    samples = np.frombuffer(pcm, dtype="<i2", count=usable // 2)
    return int(samples.max()) > _SPEECH_PEAK or -int(samples.min()) > _SPEECH_PEAK


def tone(seconds: float, *, hz: float = 220.0, level_dbfs: float = -20.0) -> bytes:
    """A sine tone of `seconds` at `level_dbfs`, as 16 kHz 16-bit PCM."""
    n = max(0, round(seconds * SAMPLE_RATE))
    amplitude = _FULL_SCALE * 10 ** (level_dbfs / 20)
    t = np.arange(n, dtype=np.float32) / SAMPLE_RATE
    wave = amplitude * np.sin(2 * np.pi * hz * t)
    return wave.astype("<i2").tobytes()


class EnergyVAD:
    """Speech probability 1.0 for a loud 20 ms frame, else 0.0 (stateless)."""

    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def clone(self) -> VAD:
        return EnergyVAD()

    def speech_probability(self, frame: bytes) -> float:
        return 1.0 if is_loud(frame) else 0.0


class StandinSTTStream:
    """One call's recognition stream: tracks where speech ended in the audio
    sent since the last `finalize()`."""

    def __init__(self, final_s: float) -> None:
        self.final_s = final_s
        self._samples = 0
        #: Sample position where the last loud 20 ms piece ended (None: no speech).
        self._speech_end: int | None = None
        self._closed = asyncio.Event()

    async def send(self, pcm: bytes) -> None:
        step = FRAME_SAMPLES * 2
        for i in range(0, len(pcm), step):
            piece = pcm[i : i + step]
            self._samples += len(piece) // 2
            if is_loud(piece):
                self._speech_end = self._samples

    async def finalize(self) -> Transcript:
        """The final transcript, `final_s` after the end of speech in the audio
        sent (at once if that much trailing silence was sent already)."""
        heard = self._speech_end is not None
        trailing_s = (self._samples - (self._speech_end or self._samples)) / SAMPLE_RATE
        wait = self.final_s - trailing_s if heard else 0.0
        if wait > 0:
            await asyncio.sleep(wait)
        end_s = self._samples / SAMPLE_RATE
        self._samples, self._speech_end = 0, None
        return Transcript(text=STANDIN_TEXT if heard else "", final=True, end_s=end_s)

    async def interim(self) -> AsyncIterator[Transcript]:
        await self._closed.wait()
        return
        yield  # an async generator with no results

    async def close(self) -> None:
        self._closed.set()


class StandinSTT:
    """Stand-in streaming STT (see module doc)."""

    name = "standin"
    sample_rate = SAMPLE_RATE

    def __init__(self, final_s: float = STT_FINAL_S) -> None:
        self.final_s = final_s

    async def open(self) -> StandinSTTStream:
        return StandinSTTStream(self.final_s)


class StandinTTS:
    """Stand-in streaming TTS (see module doc)."""

    name = "standin"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        first_chunk_s: float = TTS_FIRST_CHUNK_S,
        s_per_char: float = TTS_S_PER_CHAR,
    ) -> None:
        self.first_chunk_s = first_chunk_s
        self.s_per_char = s_per_char
        self._chunk = tone(TTS_CHUNK_S, level_dbfs=-30.0)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Tone chunks lasting `s_per_char` per character of `text` (at least
        one chunk), the first after `first_chunk_s`."""
        await asyncio.sleep(self.first_chunk_s)
        chunks = max(1, round(len(text.strip()) * self.s_per_char / TTS_CHUNK_S))
        for _ in range(chunks):
            yield self._chunk
