"""What every pipeline stage shares: its queue and task, the call's settings,
and the per-call state the stages coordinate through.

A stage owns one queue (a deque and a waiter) and one task that takes frames from it in
order, processes them and puts what it produces on the next stage's queue;
caller audio reaching an idle stage is processed at once by the task handing
it on instead (`Stage.feed`), one frame at a time per stage, in order.
A barge-in does not travel through the queues (it would wait behind the very
audio it must stop): the pipeline calls every stage's `flush()` and
`interrupt()` directly, and bumps `CallShared.epoch` so that work already in
progress for the old epoch drops its output.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.voice.audio import bytes_for_ms
from runtime.voice.frames import DataFrame, EndFrame, Frame, InterruptionFrame, UserAudioFrame
from runtime.voice.metrics import CallMetrics, Clock, loop_clock
from schemas.spec import GraphSpec

log = logging.getLogger("switchboard.voice")

EmitEvent = Callable[[str, dict[str, Any]], Awaitable[None]]
Interrupt = Callable[[InterruptionFrame], Awaitable[None]]


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of one call's pipeline; `for_graph()` takes the graph's `voice:`
    settings and fallback line, the rest are runtime defaults."""

    #: Silence after caller speech that ends the caller's turn.
    end_of_turn_ms: float = 700.0
    barge_in_enabled: bool = True
    #: Caller speech must last this long while the agent talks to interrupt it.
    barge_in_min_speech_ms: float = 250.0
    #: ...or an interim transcript must have this many words (0: not used).
    barge_in_min_words: int = 0
    #: Pause the agent's audio at the onset of caller speech over it (and
    #: resume it if the speech ends as a backchannel) instead of talking on
    #: until the barge-in is confirmed.
    barge_in_pause: bool = True
    #: A pause neither confirmed nor ended within this long resumes the audio.
    barge_in_resume_ms: float = 2000.0
    fallback_line: str = "Sorry, I'm having trouble right now."
    #: Agent audio buffered ahead of real time at the far end at most.
    lead_ms: float = 80.0
    #: Agent audio is sent to the transport in pieces of this length.
    chunk_ms: float = 20.0
    #: Caller audio kept before a VAD onset and given to STT with the speech.
    pre_roll_ms: float = 300.0
    vad_start_threshold: float = 0.5
    vad_stop_threshold: float = 0.35
    #: Speech needed before the VAD reports an onset (filters clicks).
    vad_start_ms: float = 60.0
    #: Non-speech needed before the VAD reports the end of a speech segment.
    vad_stop_ms: float = 240.0
    stt_timeout_s: float = 10.0
    tts_timeout_s: float = 8.0
    #: A graph step (tools and LLM included) taking longer is abandoned at its
    #: last checkpoint and the fallback line is said.
    step_timeout_s: float = 45.0
    #: Agent audio plays this many times faster than real time (local calls).
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, got {self.speed}")
        if self.chunk_ms <= 0 or self.lead_ms < 0:
            raise ValueError("chunk_ms must be positive and lead_ms not negative")
        if self.barge_in_resume_ms <= 0:
            raise ValueError("barge_in_resume_ms must be positive")

    @classmethod
    def for_graph(cls, graph: GraphSpec, **overrides: Any) -> PipelineConfig:
        """The graph's turn-taking, barge-in and fallback settings, with overrides."""
        voice = graph.voice
        values: dict[str, Any] = {
            "end_of_turn_ms": float(voice.end_of_turn_ms),
            "barge_in_enabled": voice.barge_in.enabled,
            "barge_in_min_speech_ms": float(voice.barge_in.min_speech_ms),
            "barge_in_min_words": voice.barge_in.min_words,
            "barge_in_pause": voice.barge_in.pause,
            "barge_in_resume_ms": float(voice.barge_in.resume_ms),
            "fallback_line": graph.fallback_line,
        }
        values.update(overrides)
        return cls(**values)


class Playback(Protocol):
    """The agent's outbound audio, as the turn stage pauses and resumes it."""

    def holding(self) -> bool:
        """True while paused, or while audio taken back by a pause is unsent."""
        ...

    async def pause(self, onset_at: float) -> float:
        """Stop the agent's audio now, keeping what the caller has not heard
        yet; returns the clock time it stopped. `onset_at`: the caller speech's
        onset (clock ms), for the reported latency."""
        ...

    async def resume(self, reason: str) -> None:
        """Play on from where the pause stopped (nothing lost or repeated)."""
        ...


@dataclass
class CallShared:
    """Per-call state the stages coordinate through (one event loop, no locks)."""

    config: PipelineConfig
    emit: EmitEvent
    interrupt: Interrupt
    clock: Clock = loop_clock
    metrics: CallMetrics = field(default_factory=CallMetrics)
    #: Sample rate of the transport's audio (in and out).
    sample_rate: int = 16000
    #: Bumped by every barge-in; work begun in an older epoch drops its output.
    epoch: int = 0
    step_running: bool = False
    #: Agent sentences handed to TTS and not yet played to their end.
    pending_sentences: int = 0
    #: Clock time at which the audio sent so far ends at the far end.
    play_until: float = 0.0
    #: Agent lines cut short by a barge-in, to report with the next caller turn.
    cuts: dict[str, str] = field(default_factory=dict)
    #: Set while a barge-in asks a running LLM generation to stop.
    llm_stop: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False
    #: The output stage's audio control (None: the agent is never paused).
    playback: Playback | None = None

    def agent_active(self) -> bool:
        """True while the agent is working on or speaking a reply (a paused
        reply included)."""
        return (
            self.step_running
            or self.pending_sentences > 0
            or self.play_until > self.clock()
            or (self.playback is not None and self.playback.holding())
        )

    async def emit_metrics(self, index: int | None = None) -> None:
        """Send the metrics of turn `index` (default: the current one) unless
        they were sent already."""
        turn = self.metrics.current if index is None else self.metrics.turn(index)
        if turn is not None and not turn.emitted:
            turn.emitted = True
            await self.emit("metrics", turn.as_dict())

    def add_cuts(self, cuts: dict[str, str]) -> None:
        """Record cut lines; the first report of a message wins."""
        for message_id, heard in cuts.items():
            self.cuts.setdefault(message_id, heard)

    def take_cuts(self) -> list[dict[str, str]]:
        out = [{"message_id": m, "heard": h} for m, h in self.cuts.items()]
        self.cuts.clear()
        return out


#: Frames a source may queue ahead of a stage before `put_paced` waits: with
#: 20 ms frames, 4 s of audio; a real-time caller never gets near it.
MAX_BACKLOG_FRAMES = 200

#: Caller audio frames queued back to back are handed to `process()` as one
#: frame of at most this much audio: a stage that has fallen behind (a busy
#: event loop) catches up in fewer, larger steps. Every stage measures caller
#: audio by its length, not by frame count, so joining changes no decision.
COALESCE_MAX_MS = 100.0


class Stage:
    """One pipeline stage: a queue, a task, and `process()` for each frame.

    Caller audio handed on (`feed`, `push`, `put_paced`) to a stage that is
    idle - its task waiting, nothing queued - is processed at once in the
    sending task instead of waking the stage's own task: with 20 ms frames
    that saves a task switch per frame and stage. Frames stay in order, one
    frame at a time per stage: while a stage processes a frame, in its task
    or inline, others queue."""

    name = "stage"
    #: Whether caller audio may be processed inline (see the class doc).
    inline_audio = True

    def __init__(self, shared: CallShared) -> None:
        self.shared = shared
        self._frames: deque[Frame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.downstream: Stage | None = None
        self._room: asyncio.Future[None] | None = None
        #: The loop the stage runs on (looked up once).
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The task waits in `next_frame` (nothing queued when it began).
        self._parked = False
        #: `process()` runs inline in another task.
        self._busy = False
        #: When the task's wait times out (loop time; None: never), and whether
        #: it follows `wait_timeout_s()` after inline work (the `run` loop).
        self._deadline: float | None = None
        self._retimes = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def qsize(self) -> int:
        """Frames queued and not yet taken."""
        return len(self._frames)

    def put(self, frame: Frame) -> None:
        """Queue a frame for this stage (never blocks)."""
        self._frames.append(frame)
        waiter = self._waiter
        if waiter is not None:
            _resolve(waiter)

    async def put_paced(self, frame: Frame, limit: int = MAX_BACKLOG_FRAMES) -> None:
        """Hand a frame on (`feed`) once fewer than `limit` are waiting:
        backpressure for a source (the caller's socket) that sends faster than
        the stage works."""
        while len(self._frames) >= limit:
            if self._room is None or self._room.done():
                self._room = asyncio.get_running_loop().create_future()
            await self._room
        await self.feed(frame)

    async def feed(self, frame: Frame) -> None:
        """Hand `frame` to this stage: caller audio reaching an idle stage is
        processed now, in the calling task (class doc); anything else is
        queued. What `process()` raises then propagates to the caller."""
        if self._inline_ok(frame):
            await self._inline(frame)
        else:
            self.put(frame)

    def _inline_ok(self, frame: Frame) -> bool:
        return (
            type(frame) is UserAudioFrame
            and self._parked
            and not self._busy
            and not self._frames
            and self.inline_audio
        )

    async def _inline(self, frame: Frame) -> None:
        self._busy = True
        try:
            await self.process(frame)
        finally:
            self._busy = False
            self._after_inline()

    def _after_inline(self) -> None:
        """Let the waiting task see what inline work changed: frames queued
        meanwhile, or a new `wait_timeout_s()`."""
        if self._frames:
            if self._waiter is not None:
                _resolve(self._waiter)
            return
        loop = self._loop
        if not self._parked or loop is None:
            return
        if self._retimes:
            timeout_s = self.wait_timeout_s()
            self._deadline = None if timeout_s is None else loop.time() + max(0.0, timeout_s)
        self._arm(loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make sure a timer fires no later than the deadline."""
        deadline = self._deadline
        if deadline is None or (self._timer is not None and self._timer_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(deadline, self._on_timer)
        self._timer_at = deadline

    def _on_timer(self) -> None:
        # The deadline may have moved later (inline work) since the timer was
        # set: then wait on; during inline work, `_after_inline` re-arms.
        self._timer = None
        loop = self._loop
        if self._deadline is None or self._busy or loop is None:
            return
        if loop.time() < self._deadline:
            self._arm(loop)
        elif self._waiter is not None:
            _resolve(self._waiter)

    async def push(self, frame: Frame) -> None:
        """Hand a frame to the next stage (as `feed` does)."""
        if self.downstream is not None:
            await self.downstream.feed(frame)

    async def next_frame(self, timeout_s: float | None = None) -> Frame | None:
        """The next queued frame (queued caller audio joined, up to
        `COALESCE_MAX_MS`), or None after `timeout_s` without one."""
        return await self._take(timeout_s, retime=False)

    async def _take(self, timeout_s: float | None, *, retime: bool) -> Frame | None:
        if not self._frames or self._busy:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            self._deadline = None if timeout_s is None else loop.time() + max(0.0, timeout_s)
            self._retimes = retime
            self._parked = True
            try:
                # (A wake-up can find the queue empty again: `flush()` ran.)
                while not self._frames or self._busy:
                    deadline = self._deadline
                    if not self._busy and deadline is not None and loop.time() >= deadline:
                        return None
                    self._waiter = loop.create_future()
                    self._arm(loop)
                    try:
                        await self._waiter
                    finally:
                        self._waiter = None
            finally:
                self._parked = False
                self._deadline = None
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
        frame = self._frames.popleft()
        if isinstance(frame, UserAudioFrame) and self._frames and not len(frame.pcm) % 2:
            frame = self._coalesce(frame)
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)
        return frame

    def _coalesce(self, first: UserAudioFrame) -> UserAudioFrame:
        """`first` joined with the caller audio frames queued right after it."""
        limit = bytes_for_ms(COALESCE_MAX_MS, first.sample_rate)
        parts = [first.pcm]
        size = len(first.pcm)
        frames = self._frames
        while frames:
            nxt = frames[0]
            if (
                type(nxt) is not UserAudioFrame
                or nxt.sample_rate != first.sample_rate
                or size + len(nxt.pcm) > limit
                or len(nxt.pcm) % 2
            ):
                break
            frames.popleft()
            parts.append(nxt.pcm)
            size += len(nxt.pcm)
        if len(parts) == 1:
            return first
        return UserAudioFrame(pcm=b"".join(parts), sample_rate=first.sample_rate, ts_ms=first.ts_ms)

    async def run(self) -> None:
        """Process frames until an `EndFrame` has been processed."""
        while True:
            timeout_s = self.wait_timeout_s() if not self._frames else None
            frame = await self._take(timeout_s, retime=True)
            if frame is None:
                await self.on_timeout()
                continue
            await self.process(frame)
            if isinstance(frame, EndFrame):
                return

    def wait_timeout_s(self) -> float | None:
        """How long to wait for a frame before `on_timeout()` (None: forever)."""
        return None

    async def on_timeout(self) -> None:
        """Called when `wait_timeout_s()` passed without a frame."""

    async def process(self, frame: Frame) -> None:
        await self.push(frame)

    def flush(self) -> int:
        """Drop queued `DataFrame`s, keep the rest in order; returns how many
        were dropped."""
        kept: deque[Frame] = deque()
        dropped = 0
        for frame in self._frames:
            if isinstance(frame, DataFrame):
                self.dropping(frame)
                dropped += 1
            else:
                kept.append(frame)
        self._frames = kept
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)
        return dropped

    def dropping(self, frame: DataFrame) -> None:
        """Called by `flush()` for each frame it drops."""

    async def interrupt(self, frame: InterruptionFrame) -> None:
        """Barge-in: stop work in progress (after `flush()`)."""


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
