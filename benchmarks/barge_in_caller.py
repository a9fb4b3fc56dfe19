"""The simulated caller of the barge_in benchmark: its speech (eSpeak NG
utterances with their exact onsets) and `BenchTransport`, which streams the
caller's lines at real-time pace and records what the agent's audio did: every
piece played, every clear of its buffer, and the pause, resume and barge-in
events around them, as `Episode`s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.voice.audio import bytes_for_ms, resample
from runtime.voice.frames import AgentAudioFrame, UserAudioFrame
from runtime.voice.metrics import loop_clock
from runtime.voice.providers.base import VAD

RATE = 16000
FRAME_MS = 20.0
#: A sample at least this loud (of 32768) is the start of caller speech.
ONSET_LEVEL = 500
CALLER_RATE = 160
#: The caller gives up waiting for the agent after this long (a hang guard).
WAIT_LIMIT_S = 30.0


@dataclass(frozen=True)
class Utterance:
    """Caller speech at 16 kHz with the offset of its first loud sample."""

    text: str
    pcm: bytes
    onset_sample: int
    speech_ms: float
    kind: str = "interrupt"
    rate: int = CALLER_RATE


def utterance(text: str, pcm: bytes, kind: str = "interrupt", rate: int = CALLER_RATE) -> Utterance:
    """Wrap 16 kHz PCM: where its speech starts and how long it lasts (first
    to last sample at or above `ONSET_LEVEL`). ValueError when it is silent."""
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    loud = np.flatnonzero(samples >= ONSET_LEVEL)
    if loud.size == 0:
        raise ValueError(f"synthesized caller line {text!r} is silent")
    speech_ms = 1000.0 * (int(loud[-1]) - int(loud[0])) / RATE
    return Utterance(text, pcm, int(loud[0]), speech_ms, kind, rate)


_voices: dict[tuple[str, int], Utterance] = {}


async def caller_voice(text: str, rate: int = CALLER_RATE, kind: str = "interrupt") -> Utterance:
    """`text` said by eSpeak NG at `rate` words per minute (synthesized once per
    process, then served from memory)."""
    key = (text, rate)
    if key not in _voices:
        from runtime.voice.providers.espeak_tts import EspeakTTS

        tts = EspeakTTS(rate=rate)
        pcm = resample(await tts.render(text), tts.sample_rate, RATE)
        _voices[key] = utterance(text, pcm, kind, rate)
    found = _voices[key]
    return found if found.kind == kind else Utterance(**{**found.__dict__, "kind": kind})


class CountingVAD:
    """A VAD that counts the audio it has judged: where the pipeline's VAD
    stage is in the caller's stream (its clone per call is `live`)."""

    def __init__(self, inner: VAD) -> None:
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self.frame_samples = inner.frame_samples
        self.samples = 0
        self.live: CountingVAD | None = None

    def clone(self) -> CountingVAD:
        twin = CountingVAD(self.inner.clone())
        self.live = twin
        return twin

    def speech_probability(self, frame: bytes) -> float:
        self.samples += self.frame_samples
        return self.inner.speech_probability(frame)

    def position(self) -> int:
        """Samples of the stream the call's detector has judged so far."""
        return self.live.samples if self.live is not None else 0


@dataclass
class Line:
    """One caller line of the script and what the transport saw of it."""

    voice: Utterance
    after_ms: float
    onset_at: float | None = None
    end_at: float | None = None
    #: Sample index of the onset in the caller's stream.
    onset_pos: int | None = None


@dataclass
class Episode:
    """The agent's audio stopped once: paused at a speech onset (then resumed
    or confirmed), or cut by a barge-in confirmed without a pause."""

    #: Clock time of the clear that stopped the audio, and the stream position
    #: (samples) the VAD had judged then: whose speech stopped it.
    stop_at: float
    stop_pos: int
    #: The pipeline's own figures for the stop (its event).
    detect_to_stop_ms: float | None = None
    onset_to_stop_ms: float | None = None
    paused: bool = False
    resumed_at: float | None = None
    #: Resumed audio reached the transport this long after the stop (the
    #: silence the caller heard).
    gap_ms: float | None = None
    confirmed_at: float | None = None


@dataclass
class BenchTransport:
    """Streams the scripted caller at real-time pace and timestamps the agent's
    outbound audio: every piece played, every clear, and the pause, resume and
    barge-in events around them (as `Episode`s)."""

    lines: list[Line]
    vad: CountingVAD | None = None
    name: str = "bench"
    sample_rate: int = RATE
    played: list[tuple[float, str]] = field(default_factory=list)
    cleared: list[float] = field(default_factory=list)
    #: For each clear: the stream position (samples) the VAD had judged, and
    #: the audio sent but not yet judged (ms), the pipeline's backlog.
    cleared_at_pos: list[int] = field(default_factory=list)
    backlog_ms: list[float] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    #: Pieces of a message cut by a confirmed barge-in played after it (must stay 0).
    late_plays: int = 0
    gave_up: bool = False
    closed: str | None = None

    def __post_init__(self) -> None:
        self._agent_started: float | None = None
        self._cut: set[str] = set()
        self._ended = asyncio.Event()
        self._next_at = 0.0
        self._sent = 0  # samples of caller audio handed over
        self._open: Episode | None = None  # paused, not resumed nor confirmed
        self._gap: Episode | None = None  # resumed, no audio played since

    async def incoming(self) -> AsyncIterator[UserAudioFrame]:
        clock = loop_clock
        self._next_at = clock()
        step = bytes_for_ms(FRAME_MS, RATE)
        silence = b"\x00" * step
        last_end: float | None = None
        for line in self.lines:
            deadline = clock() + WAIT_LIMIT_S * 1000.0
            while not self._ready(line, last_end):
                if self._ended.is_set():
                    return
                if clock() > deadline:
                    self.gave_up = True
                    return
                yield await self._paced(silence)
            pcm = line.voice.pcm
            onset_byte = line.voice.onset_sample * 2
            for i in range(0, len(pcm), step):
                piece = pcm[i : i + step]
                frame = await self._paced(piece + b"\x00" * (step - len(piece)))
                if i <= onset_byte < i + step:
                    # The frame is handed over when its last sample is spoken.
                    line.onset_at = clock() - FRAME_MS + 1000.0 * (onset_byte - i) / 2 / RATE
                    line.onset_pos = self._sent - (step - (onset_byte - i)) // 2
                yield frame
            line.end_at = last_end = clock()
        for _ in range(int(300 / FRAME_MS)):  # let the last barge-in land
            yield await self._paced(silence)

    def _ready(self, line: Line, last_end: float | None) -> bool:
        started = self._agent_started
        if started is None:
            return False
        since = max(started, last_end or started)
        return loop_clock() >= since + line.after_ms

    async def _paced(self, pcm: bytes) -> UserAudioFrame:
        self._next_at += FRAME_MS
        delay = self._next_at - loop_clock()
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)
        self._sent += len(pcm) // 2
        return UserAudioFrame(pcm=pcm, sample_rate=RATE, ts_ms=loop_clock())

    def _judged(self) -> int:
        return self.vad.position() if self.vad is not None else self._sent

    async def play(self, frame: AgentAudioFrame) -> None:
        now = loop_clock()
        if frame.message_id in self._cut:
            self.late_plays += 1
        if self._agent_started is None:
            self._agent_started = now
        if self._gap is not None:
            self._gap.gap_ms = now - self._gap.stop_at
            self._gap = None
        self.played.append((now, frame.message_id))

    async def clear(self) -> None:
        self.cleared.append(loop_clock())
        judged = self._judged()
        self.cleared_at_pos.append(judged)
        self.backlog_ms.append(1000.0 * max(0, self._sent - judged) / RATE)

    async def event(self, name: str, data: dict[str, Any]) -> None:
        now = loop_clock()
        if name == "barge_in_paused" and self.cleared:
            self._open = self._episode(data, paused=True)
        elif name == "barge_in_resumed" and self._open is not None:
            self._open.resumed_at = now
            self._gap, self._open = self._open, None
        elif name == "barge_in" and self.cleared:
            episode = self._open if self._open is not None else self._episode(data, paused=False)
            episode.confirmed_at = now
            self._open = self._gap = None
            self._cut.update(str(c.get("message_id")) for c in data.get("cut") or [])
            self._agent_started = None
        elif name == "hangup":
            self._ended.set()

    def _episode(self, data: dict[str, Any], *, paused: bool) -> Episode:
        """An episode stopped by the clear just made (its event follows it)."""
        episode = Episode(
            stop_at=self.cleared[-1],
            stop_pos=self.cleared_at_pos[-1],
            detect_to_stop_ms=_number(data.get("detect_to_stop_ms")),
            onset_to_stop_ms=_number(data.get("onset_to_stop_ms")),
            paused=paused,
        )
        self.episodes.append(episode)
        return episode

    async def close(self, reason: str = "") -> None:
        self.closed = reason
        self._ended.set()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
