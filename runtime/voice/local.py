"""A voice call on this machine: a scripted caller, the real pipeline, a WAV file.

`LocalTransport` plays the caller. Each `CallerLine` is speech synthesized from
text (with the embedded TTS, or any `TTSProvider`) or read from a WAV file; the
caller streams 20 ms frames continuously, silence included, at real time (or
`speed` times faster), waits for the agent to finish and wait before each line
(or barges in `barge_in_after_ms` after the agent's reply began), and hangs up
once the script is done and the agent waits again, or when the call ends.
Both sides are recorded on one timeline: caller audio where it was sent, agent
audio where it played (audio discarded by a barge-in `clear()` is cut out), so
`mixed()` is the call as a listener on the line would hear it.

Timing convention: like a microphone, the caller hands over each 20 ms frame
when its last sample has been spoken; `onsets` (the clock time each line's
speech began) is exact to the sample.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runtime.voice.audio import (
    SAMPLE_WIDTH,
    bytes_for_ms,
    duration_s,
    mix,
    read_wav,
    resample,
    write_wav,
)
from runtime.voice.frames import AgentAudioFrame, UserAudioFrame
from runtime.voice.metrics import Clock, loop_clock
from runtime.voice.pipeline import CallReport, EventHook, VoicePipeline
from runtime.voice.providers.base import VAD, ProviderError, STTProvider, TTSProvider
from runtime.voice.stages.base import PipelineConfig
from schemas.spec import VoiceSettings

log = logging.getLogger("switchboard.voice.local")

RATE = 16000
FRAME_MS = 20.0
#: A sample at least this loud (of 32768) counts as the start of speech.
ONSET_LEVEL = 500


class CallerScriptError(ValueError):
    """A caller line that cannot be turned into audio (no text, bad WAV)."""


@dataclass(frozen=True)
class CallerLine:
    """One caller turn: `text` to synthesize or a `wav` file to play."""

    text: str | None = None
    wav: Path | None = None
    #: Speak this long after the agent's reply audio began, over it (a
    #: barge-in); None waits until the agent has finished and waits.
    barge_in_after_ms: float | None = None

    def label(self) -> str:
        return self.text if self.text is not None else f"[{self.wav}]"


@dataclass
class LocalTransport:
    """The `Transport` of a local call (16 kHz PCM both ways)."""

    lines: Sequence[CallerLine]
    caller_tts: TTSProvider | None = None
    speed: float = 1.0
    clock: Clock = loop_clock
    #: Longest the caller waits for the agent before hanging up.
    wait_timeout_s: float = 60.0
    name: str = "local"
    sample_rate: int = RATE
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Clock time each line's speech began.
    onsets: list[float] = field(default_factory=list)
    #: (clock time, message id, bytes) of every agent audio piece played.
    played: list[tuple[float, str, int]] = field(default_factory=list)
    cleared: list[float] = field(default_factory=list)
    closed: str | None = None
    gave_up: bool = False

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, got {self.speed}")
        self._caller = bytearray()
        self._agent = bytearray()
        self._agent_cursor = 0
        self._t0: float | None = None
        self._next_at = 0.0
        self._waiting = asyncio.Event()
        self._ended = asyncio.Event()
        self._agent_started: float | None = None

    # --- the caller ---------------------------------------------------------------

    async def line_audio(self, line: CallerLine) -> bytes:
        """The line as 16 kHz PCM."""
        if line.wav is not None:
            try:
                pcm, rate = await asyncio.to_thread(read_wav, line.wav)
            except (OSError, ValueError) as exc:
                raise CallerScriptError(f"caller WAV {line.wav}: {exc}") from exc
            return resample(pcm, rate, RATE)
        if not line.text or not line.text.strip():
            raise CallerScriptError("a caller line needs text or a WAV file")
        if self.caller_tts is None:
            raise CallerScriptError("caller text needs a TTS to speak it")
        try:
            chunks = [c async for c in self.caller_tts.synthesize(line.text)]
        except ProviderError as exc:
            raise CallerScriptError(f"cannot synthesize caller line {line.text!r}: {exc}") from exc
        return resample(b"".join(chunks), self.caller_tts.sample_rate, RATE)

    async def incoming(self) -> AsyncIterator[UserAudioFrame]:
        self._t0 = self._next_at = self.clock()
        audio = [await self.line_audio(line) for line in self.lines]
        for line, pcm in zip(self.lines, audio, strict=True):
            if line.barge_in_after_ms is None:
                ready: Callable[[], bool] = self._waiting.is_set
            else:
                after = line.barge_in_after_ms / self.speed

                def ready(after: float = after) -> bool:
                    started = self._agent_started
                    return started is not None and self.clock() >= started + after

            async for frame in self._silence_until(ready):
                yield frame
            if self._ended.is_set() or self.gave_up:
                return
            self._waiting.clear()
            onset = _first_loud_sample(pcm)
            step = bytes_for_ms(FRAME_MS, RATE)
            for i in range(0, len(pcm), step):
                piece = pcm[i : i + step]
                frame = await self._paced(piece + b"\x00" * (step - len(piece)))
                if onset is not None and i <= onset * SAMPLE_WIDTH < i + step:
                    offset_ms = 1000.0 * (onset - i // SAMPLE_WIDTH) / RATE / self.speed
                    self.onsets.append(self.clock() - FRAME_MS / self.speed + offset_ms)
                yield frame
            self._waiting.clear()
            self._agent_started = None
        async for frame in self._silence_until(self._waiting.is_set):
            yield frame

    async def _silence_until(self, ready: Callable[[], bool]) -> AsyncIterator[UserAudioFrame]:
        deadline = self.clock() + self.wait_timeout_s * 1000.0
        silence = b"\x00" * bytes_for_ms(FRAME_MS, RATE)
        while not ready() and not self._ended.is_set():
            if self.clock() >= deadline:
                log.warning("the agent did not answer within %g s: hanging up", self.wait_timeout_s)
                self.gave_up = True
                return
            yield await self._paced(silence)

    async def _paced(self, pcm: bytes) -> UserAudioFrame:
        self._next_at += FRAME_MS / self.speed
        delay = self._next_at - self.clock()
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)
        self._caller += pcm
        return UserAudioFrame(pcm=pcm, sample_rate=RATE, ts_ms=self.clock())

    # --- the agent side -----------------------------------------------------------

    def _position(self) -> int:
        """Byte offset on the recording timeline for the current clock time."""
        t0 = self._t0 if self._t0 is not None else self.clock()
        ms = max(0.0, self.clock() - t0) * self.speed
        return bytes_for_ms(ms, RATE)

    async def play(self, frame: AgentAudioFrame) -> None:
        pcm = frame.pcm
        if frame.sample_rate != RATE:
            pcm = resample(pcm, frame.sample_rate, RATE)
        now = self.clock()
        if self._agent_started is None:
            self._agent_started = now
        self.played.append((now, frame.message_id, len(pcm)))
        start = max(self._agent_cursor, self._position())
        end = start + len(pcm)
        if len(self._agent) < end:
            self._agent += b"\x00" * (end - len(self._agent))
        self._agent[start:end] = pcm
        self._agent_cursor = end

    async def clear(self) -> None:
        self.cleared.append(self.clock())
        now = self._position()
        del self._agent[now:]
        self._agent_cursor = min(self._agent_cursor, now)

    async def event(self, name: str, data: dict[str, object]) -> None:
        self.events.append({"type": name, **data})
        if name == "waiting":
            self._waiting.set()
        elif name == "hangup":
            self._ended.set()

    async def close(self, reason: str = "") -> None:
        self.closed = reason
        self._ended.set()

    # --- the recording ------------------------------------------------------------

    def mixed(self) -> bytes:
        """Caller and agent on one timeline, as one mono 16 kHz track."""
        return mix(bytes(self._caller), bytes(self._agent))

    def agent_audio_s(self) -> float:
        return duration_s(bytes(self._agent), RATE)

    def write(self, path: Path) -> None:
        """Write the call to a 16 kHz mono WAV file."""
        write_wav(path, self.mixed(), RATE)


def _first_loud_sample(pcm: bytes) -> int | None:
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    loud = np.flatnonzero(samples >= ONSET_LEVEL)
    return int(loud[0]) if loud.size else None


@dataclass
class LocalCall:
    """A finished local call: the pipeline's report and the caller's transport
    (with the recording)."""

    report: CallReport
    transport: LocalTransport


async def run_local_call(
    graph_path: Path,
    lines: Sequence[CallerLine],
    *,
    caller: str | None = None,
    speed: float = 1.0,
    vad: VAD | None = None,
    stt: STTProvider | None = None,
    tts: TTSProvider | None = None,
    caller_tts: TTSProvider | None = None,
    on_event: EventHook | None = None,
) -> LocalCall:
    """Place a call to the graph file at `graph_path` with a scripted caller.

    Providers default to the graph's `voice:` choice (environment overrides
    apply) and Silero VAD; the caller's voice defaults to the embedded eSpeak
    TTS. The call runs on an in-memory checkpointer with the built-in tools.
    Raises `GraphError` for an invalid graph, `ProviderError` for a provider
    that cannot start, `CallerScriptError` for a line that cannot be spoken.
    """
    from langgraph.checkpoint.memory import InMemorySaver

    from runtime.compiler import compile_call
    from runtime.context import CallContext
    from runtime.llm import default_llm_factory
    from runtime.session import CallSession
    from runtime.voice.providers.registry import make_stt, make_tts, make_vad
    from schemas.catalog import GraphCatalog
    from schemas.validate import load_valid_graph
    from tools.builtin import default_registry

    catalog = GraphCatalog(graph_path.parent)
    spec = await asyncio.to_thread(load_valid_graph, graph_path, catalog=catalog)
    compiled = await asyncio.to_thread(
        compile_call, spec, resolve=catalog.resolve, checkpointer=InMemorySaver()
    )
    session = CallSession(
        compiled=compiled,
        caller=caller,
        context=CallContext(tools=default_registry(), llm_factory=default_llm_factory()),
    )
    the_vad: VAD = vad if vad is not None else await asyncio.to_thread(make_vad)
    the_stt: STTProvider = stt if stt is not None else await asyncio.to_thread(make_stt, spec.voice)
    the_tts: TTSProvider = tts if tts is not None else await asyncio.to_thread(make_tts, spec.voice)
    if caller_tts is None:
        caller_tts = await asyncio.to_thread(make_tts, VoiceSettings(tts="espeak"))
    transport = LocalTransport(lines, caller_tts=caller_tts, speed=speed)
    for line in lines:  # fail before the call starts, not in the middle of it
        if line.wav is None and not (line.text or "").strip():
            raise CallerScriptError("a caller line needs text or a WAV file")
        if line.wav is not None and not line.wav.is_file():
            raise CallerScriptError(f"caller WAV {line.wav}: no such file")
    pipeline = VoicePipeline(
        session,
        transport,
        vad=the_vad,
        stt=the_stt,
        tts=the_tts,
        config=PipelineConfig.for_graph(spec, speed=speed),
        on_event=on_event,
    )
    report = await pipeline.run()
    return LocalCall(report=report, transport=transport)
