"""The recording of a call on a network transport: caller and agent audio on one
timeline, written as a two-channel WAV (left: caller, right: agent).

Time runs on the call's clock (ms, `loop_clock` by default) from the moment the
recording starts. A caller frame ends where it arrives (a client streams its
microphone as it speaks, so each frame is placed just before its arrival, and
frames never overlap); agent audio is placed where it was sent, after the
agent audio before it. `clear()` (a barge-in) cuts the agent audio not yet
heard, as the caller's player drops it. Memory is bounded: past `max_s`
seconds the recording stops growing (the WAV holds the first `max_s` s and
`truncated` says so).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from runtime.voice.audio import bytes_for_ms, interleave, resample, write_wav
from runtime.voice.metrics import Clock, LoopClock

log = logging.getLogger("switchboard.voice.recording")

RATE = 16000
CHANNELS = 2
#: Longest recording kept by default (2 tracks x 16 kHz x 16 bits: ~115 MB/h).
DEFAULT_MAX_S = 3600.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class SavedRecording:
    """A recording written to disk."""

    path: Path
    duration_s: float
    sample_rate: int
    channels: int
    truncated: bool


class CallAudioRecorder:
    """Both sides of one call, kept in memory until `save()`."""

    def __init__(self, *, clock: Clock | None = None, max_s: float = DEFAULT_MAX_S) -> None:
        """`clock` (ms) defaults to the event loop's the call runs on."""
        if max_s <= 0:
            raise ValueError(f"max_s must be positive, got {max_s}")
        self.clock = clock if clock is not None else LoopClock()
        self.max_bytes = bytes_for_ms(max_s * 1000.0, RATE)
        self.truncated = False
        self._caller = bytearray()
        self._agent = bytearray()
        self._agent_cursor = 0
        self._t0: float | None = None

    def start(self) -> None:
        """Start the timeline now (else it starts with the first audio)."""
        if self._t0 is None:
            self._t0 = self.clock()

    def _position(self) -> int:
        """Byte offset on the timeline for the clock's time now."""
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        return bytes_for_ms(max(0.0, now - self._t0), RATE)

    def _place(self, track: bytearray, start: int, pcm: bytes) -> int:
        """Write `pcm` into `track` at `start` (padding with silence); returns
        the end offset. Audio past the size limit is dropped."""
        start = min(start, self.max_bytes)
        end = min(start + len(pcm), self.max_bytes)
        if end - start < len(pcm):
            self.truncated = True
        if start == len(track) and end - start == len(pcm):
            track += pcm  # the usual case: audio follows on
            return end
        if len(track) < end:
            track += b"\x00" * (end - len(track))
        track[start:end] = pcm[: end - start]
        return end

    def caller(self, pcm: bytes, sample_rate: int = RATE) -> None:
        """A frame of caller audio that has just arrived."""
        if sample_rate != RATE:
            pcm = resample(pcm, sample_rate, RATE)
        start = max(len(self._caller), self._position() - len(pcm))
        self._place(self._caller, start - start % 2, pcm)

    def agent(self, pcm: bytes, sample_rate: int = RATE) -> None:
        """A piece of agent audio sent to the caller now."""
        if sample_rate != RATE:
            pcm = resample(pcm, sample_rate, RATE)
        start = max(self._agent_cursor, self._position())
        self._agent_cursor = self._place(self._agent, start - start % 2, pcm)

    def clear(self) -> None:
        """The caller's player dropped the agent audio it had not played yet."""
        now = self._position()
        now -= now % 2
        del self._agent[now:]
        self._agent_cursor = min(self._agent_cursor, now)

    @property
    def duration_s(self) -> float:
        return max(len(self._caller), len(self._agent)) / (2 * RATE)

    def empty(self) -> bool:
        return not self._caller and not self._agent

    def stereo(self) -> bytes:
        """Interleaved 16 kHz 16-bit PCM: caller left, agent right."""
        return interleave(bytes(self._caller), bytes(self._agent))

    def save(self, directory: Path, call_id: str) -> SavedRecording:
        """Write `<directory>/<call id>.wav` (a new `-2`, `-3`... name when that
        exists: a call resumed on a second connection keeps both parts). The
        file appears complete or not at all (written aside, then renamed)."""
        directory.mkdir(parents=True, exist_ok=True)
        stem = _UNSAFE.sub("_", call_id) or "call"
        path = directory / f"{stem}.wav"
        n = 1
        while path.exists():
            n += 1
            path = directory / f"{stem}-{n}.wav"
        partial = path.with_name(f".{path.name}.part")
        pcm = self.stereo()
        write_wav(partial, pcm, RATE, channels=CHANNELS)
        os.replace(partial, path)
        seconds = len(pcm) / (2 * CHANNELS * RATE)
        if self.truncated:
            log.warning("call %s: recording cut at %.0f s", call_id, seconds)
        return SavedRecording(
            path=path,
            duration_s=round(seconds, 3),
            sample_rate=RATE,
            channels=CHANNELS,
            truncated=self.truncated,
        )
