"""Pause on the onset of caller speech, then resume or confirm, in virtual time.

The output stage talks to `FarEnd`, a model of the caller's side that plays
what it receives at real time and drops what is not played yet on `clear()`:
what it played is exactly what the caller heard, so "nothing lost or
repeated" is checked sample by sample. The turn stage is driven with a fake
clock and a recording `Playback`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from runtime.voice.audio import bytes_for_ms
from runtime.voice.frames import (
    AgentAudioFrame,
    EndFrame,
    InterruptionFrame,
    SpeechStartedFrame,
    SpeechStoppedFrame,
    UserAudioFrame,
)
from runtime.voice.metrics import loop_clock
from runtime.voice.stages.base import CallShared, PipelineConfig
from runtime.voice.stages.output import EST_WORD_MS, HeardLedger, OutputStage
from runtime.voice.stages.turns import TurnStage
from runtime.voice.stages.vad import SpeechProgressFrame

RATE = 16000
TEXT = "one two three four five six"
#: 300 ms per word.
AUDIO_MS = 1800.0


def ramp(ms: float) -> bytes:
    """Audio whose every sample differs from its neighbours (a lost or repeated
    stretch cannot go unnoticed)."""
    n = bytes_for_ms(ms, RATE) // 2
    return (np.arange(n) % 20000).astype("<i2").tobytes()


@dataclass
class FarEnd:
    """The caller's side: audio plays from when it arrives (or when the audio
    before it ends); `clear()` drops what has not played by then."""

    played: list[tuple[float, bytes]] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    name: str = "far-end"
    sample_rate: int = RATE

    def __post_init__(self) -> None:
        self._until = 0.0

    async def play(self, frame: AgentAudioFrame) -> None:
        now = loop_clock()
        start = max(self._until, now)
        self.played.append((start, frame.pcm))
        self._until = start + 1000.0 * len(frame.pcm) / 2 / RATE

    async def clear(self) -> None:
        now = loop_clock()
        self.clears.append(now)
        kept: list[tuple[float, bytes]] = []
        for start, pcm in self.played:
            if start < now:
                kept.append((start, pcm[: bytes_for_ms(now - start, RATE)]))
        self.played = kept
        self._until = min(self._until, now)

    def heard(self) -> bytes:
        return b"".join(pcm for _, pcm in self.played)

    def heard_until(self, t: float) -> bytes:
        return b"".join(pcm[: bytes_for_ms(max(0.0, t - s), RATE)] for s, pcm in self.played)


@dataclass
class Call:
    shared: CallShared
    ledger: HeardLedger
    output: OutputStage
    far: FarEnd
    events: list[dict[str, Any]]
    task: asyncio.Task[None]

    async def interrupt(self) -> dict[str, str]:
        """What the pipeline does on a confirmed barge-in."""
        self.shared.epoch += 1
        self.output.flush()
        cuts = self.ledger.cut(loop_clock())
        await self.output.interrupt(InterruptionFrame())
        await self.far.clear()
        return cuts

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


async def start_call(pcm: bytes) -> Call:
    events: list[dict[str, Any]] = []

    async def emit(name: str, data: dict[str, Any]) -> None:
        events.append({"type": name, "t": loop_clock(), **data})

    async def interrupt(frame: InterruptionFrame) -> None:
        raise AssertionError("not used")

    shared = CallShared(config=PipelineConfig(), emit=emit, interrupt=interrupt, clock=loop_clock)
    ledger = HeardLedger()
    far = FarEnd()
    output = OutputStage(shared, far, ledger)
    ledger.add_sentence("m1", TEXT)
    ledger.complete("m1")
    shared.pending_sentences = 1
    # Two frames, as TTS streams them; the pause falls in the first.
    half = len(pcm) // 2 // 2 * 2
    output.put(AgentAudioFrame(pcm=pcm[:half], message_id="m1", text=TEXT))
    output.put(AgentAudioFrame(pcm=pcm[half:], message_id="m1", text=TEXT, last_of_text=True))
    task = asyncio.create_task(output.run())
    return Call(shared, ledger, output, far, events, task)


async def finish(call: Call) -> None:
    call.output.put(EndFrame(reason="completed"))
    await asyncio.wait_for(call.task, 10)


@pytest.mark.looptime
async def test_pause_then_resume_loses_and_repeats_nothing() -> None:
    pcm = ramp(AUDIO_MS)
    call = await start_call(pcm)
    t0 = loop_clock()
    await asyncio.sleep(0.6503)  # mid-piece: the piece playing is cut exactly
    paused_at = loop_clock()
    stopped = await call.output.pause(onset_at=paused_at - 80)
    assert call.far.clears == [paused_at] and stopped == paused_at
    assert call.shared.agent_active() and call.output.holding()
    heard_then = call.ledger.heard("m1", paused_at)
    # Until its last audio is in, the sentence counts as 6 * EST_WORD_MS =
    # 2100 ms: 650 ms heard is 1.86 words (with the lead sent ahead, 2.1).
    assert EST_WORD_MS == 350
    assert heard_then == ("one", False)
    # Nothing plays while paused, and the ledger does not run on.
    await asyncio.sleep(0.4)
    assert call.far.heard() == call.far.heard_until(paused_at)
    assert call.ledger.heard("m1", loop_clock()) == heard_then
    await call.output.resume("backchannel")
    resumed_at = loop_clock()
    await finish(call)

    assert call.far.heard() == pcm  # every sample once, in order
    assert call.ledger.heard("m1", loop_clock()) == (TEXT, True)
    assert call.shared.pending_sentences == 0
    # The caller heard the pause as a gap: the audio ends that much later.
    end = max(s + len(p) / 2 / RATE * 1000 for s, p in call.far.played)
    assert end == pytest.approx(t0 + AUDIO_MS + (resumed_at - paused_at), abs=0.5)
    (paused,) = call.of_type("barge_in_paused")
    assert 0 < paused["held_ms"] <= PipelineConfig().lead_ms + PipelineConfig().chunk_ms
    assert paused["onset_to_stop_ms"] == pytest.approx(80, abs=0.1)
    (resumed,) = call.of_type("barge_in_resumed")
    assert resumed["reason"] == "backchannel"
    assert resumed["paused_ms"] == pytest.approx(400, abs=0.5)
    # The "waiting" of the graph would follow all of it.
    assert call.of_type("hangup")[0]["t"] >= end - 0.5


@pytest.mark.looptime
async def test_pause_then_confirm_cuts_at_the_pause() -> None:
    pcm = ramp(AUDIO_MS)
    call = await start_call(pcm)
    await asyncio.sleep(0.87)
    paused_at = loop_clock()
    await call.output.pause(onset_at=paused_at - 60)
    await asyncio.sleep(0.2)  # the barge-in is confirmed 200 ms later
    cuts = await call.interrupt()
    # Heard: 870 ms of 1800, i.e. 2.9 words (with the lead sent ahead, 3.2).
    assert cuts == {"m1": "one two"}
    await asyncio.sleep(1.0)
    assert not call.output.holding() and not call.output.paused
    assert call.far.heard() == pcm[: bytes_for_ms(870, RATE)]
    assert not call.of_type("barge_in_resumed")
    await finish(call)


@pytest.mark.looptime
async def test_pause_between_replies_holds_what_comes_next() -> None:
    # Paused while nothing plays (the agent still thinking): audio that arrives
    # waits for the resume, then plays whole.
    call = await start_call(b"")
    await asyncio.sleep(0.1)
    await call.output.pause(onset_at=loop_clock())
    pcm = ramp(600)
    call.output.put(AgentAudioFrame(pcm=pcm, message_id="m2", text="later", last_of_text=True))
    await asyncio.sleep(0.5)
    assert call.far.heard() == b""
    await call.output.resume("timeout")
    await finish(call)
    assert call.far.heard() == pcm


# --- the turn stage -------------------------------------------------------------------


@dataclass
class FakePlayback:
    calls: list[tuple[str, float]] = field(default_factory=list)
    paused: bool = False

    def holding(self) -> bool:
        return self.paused

    async def pause(self, onset_at: float) -> float:
        self.paused = True
        self.calls.append(("pause", onset_at))
        return onset_at + 70.0

    async def resume(self, reason: str) -> None:
        self.paused = False
        self.calls.append(("resume:" + reason, 0.0))


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Turns:
    stage: TurnStage
    clock: Clock
    playback: FakePlayback
    interrupts: list[InterruptionFrame]

    async def audio(self, ms: float) -> None:
        """Caller audio of `ms` arriving in real time."""
        for _ in range(int(ms // 20)):
            self.clock.now += 20.0
            await self.stage.process(UserAudioFrame(pcm=b"\x00" * 640))


def turns(**config: Any) -> Turns:
    clock = Clock()
    interrupts: list[InterruptionFrame] = []

    async def emit(name: str, data: dict[str, Any]) -> None:
        return None

    async def interrupt(frame: InterruptionFrame) -> None:
        interrupts.append(frame)

    shared = CallShared(
        config=PipelineConfig(**config), emit=emit, interrupt=interrupt, clock=clock
    )
    playback = FakePlayback()
    shared.playback = playback
    shared.pending_sentences = 1  # the agent is speaking
    return Turns(TurnStage(shared), clock, playback, interrupts)


async def test_a_backchannel_pauses_then_resumes() -> None:
    t = turns()
    await t.audio(1000)
    await t.stage.process(SpeechStartedFrame(onset_ms=940.0))
    assert t.playback.calls == [("pause", t.clock.now - 60)]
    # 200 ms of voiced speech, measured as a detector's probabilities.
    await t.audio(140)
    await t.stage.process(SpeechProgressFrame(onset_ms=940.0, speech_ms=256, voiced_ms=228))
    await t.audio(240)
    await t.stage.process(SpeechStoppedFrame(end_ms=1140.0))
    assert [c for c, _ in t.playback.calls] == ["pause", "resume:backchannel"]
    assert not t.interrupts


async def test_confirmed_speech_interrupts_with_the_pause_as_the_stop() -> None:
    t = turns()
    await t.audio(1000)
    await t.stage.process(SpeechStartedFrame(onset_ms=940.0))
    paused_at = t.clock.now
    await t.audio(200)
    # The span reached the threshold but the expected speech did not yet.
    await t.stage.process(SpeechProgressFrame(onset_ms=940.0, speech_ms=256, voiced_ms=240))
    assert not t.interrupts
    await t.stage.process(SpeechProgressFrame(onset_ms=940.0, speech_ms=288, voiced_ms=270))
    (frame,) = t.interrupts
    assert frame.detected_ms == paused_at
    assert frame.stopped_ms == paused_at - 60 + 70  # what pause() returned
    assert frame.onset_ms == pytest.approx(t.clock.now - 260)
    assert [c for c, _ in t.playback.calls] == ["pause"]  # no resume


async def test_an_unconfirmed_pause_resumes_after_resume_ms() -> None:
    # Only words interrupt here; the recogniser gives none, the caller goes on.
    t = turns(barge_in_min_speech_ms=60_000, barge_in_min_words=3, barge_in_resume_ms=1000)
    await t.audio(500)
    await t.stage.process(SpeechStartedFrame(onset_ms=440.0))
    await t.audio(980)
    assert [c for c, _ in t.playback.calls] == ["pause"]
    assert t.stage.wait_timeout_s() == pytest.approx(0.02)
    await t.audio(20)
    assert [c for c, _ in t.playback.calls] == ["pause", "resume:timeout"]
    await t.audio(500)
    await t.stage.process(SpeechStoppedFrame(end_ms=1900.0))
    assert len(t.playback.calls) == 2 and not t.interrupts


async def test_the_pause_can_be_turned_off() -> None:
    t = turns(barge_in_pause=False)
    await t.audio(500)
    await t.stage.process(SpeechStartedFrame(onset_ms=440.0))
    await t.stage.process(SpeechProgressFrame(onset_ms=440.0, speech_ms=260, voiced_ms=260))
    assert not t.playback.calls
    (frame,) = t.interrupts
    assert frame.stopped_ms is None and frame.detected_ms == t.clock.now


async def test_a_hang_up_mid_pause_resumes_so_the_output_can_finish() -> None:
    t = turns()
    await t.audio(500)
    await t.stage.process(SpeechStartedFrame(onset_ms=440.0))
    await t.stage.process(EndFrame(reason="hangup"))
    assert [c for c, _ in t.playback.calls] == ["pause", "resume:hangup"]
    assert not t.interrupts
