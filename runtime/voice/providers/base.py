"""Provider interfaces: VAD, streaming STT, streaming TTS.

A new vendor is one module implementing one of these. Audio is always 16-bit
little-endian mono PCM; each provider states its sample rate and the pipeline
resamples (soxr) where rates differ. Providers that run a local model do the
work in a worker thread and load the model once per process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class ProviderError(Exception):
    """A provider failed (timeout, connection, bad response). The pipeline turns
    it into the graph's fallback line or escalation; it never hangs a call."""


class VAD(Protocol):
    """Frame-level voice activity detection; stateful per call (`clone()`)."""

    sample_rate: int
    frame_samples: int

    def clone(self) -> VAD:
        """A fresh detector sharing the loaded model (one per call)."""
        ...

    def speech_probability(self, frame: bytes) -> float:
        """Probability in [0, 1] that one frame of `frame_samples` samples is speech."""
        ...


@dataclass(frozen=True)
class Transcript:
    text: str
    final: bool
    #: Seconds of audio since the stream opened at which this result ends.
    end_s: float = 0.0
    confidence: float | None = None


class STTStream(Protocol):
    async def send(self, pcm: bytes) -> None:
        """Feed caller audio (at the provider's `sample_rate`)."""
        ...

    async def finalize(self) -> Transcript:
        """End of the caller's turn: the final transcript of what was sent since
        the last finalize; the stream stays open for the next turn."""
        ...

    def interim(self) -> AsyncIterator[Transcript]:
        """Interim (and provider-side final) results as they arrive."""
        ...

    async def close(self) -> None: ...


class STTProvider(Protocol):
    name: str
    sample_rate: int

    async def open(self) -> STTStream: ...


class TTSProvider(Protocol):
    name: str
    sample_rate: int

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """PCM chunks of `text` as soon as each is ready (first chunk fast)."""
        ...
