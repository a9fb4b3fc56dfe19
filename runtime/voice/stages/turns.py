"""Turn-taking stage: speech segments and transcripts become caller turns, and
caller speech over the agent becomes a barge-in.

- A caller turn ends `end_of_turn_ms` after the last speech segment ended
  (measured on the caller's audio stream, or on the clock if the audio stops
  coming), once every segment's final transcript is in; the finals joined are
  the turn's text (`UserTurnFrame`). An empty turn (noise) is dropped; a turn
  whose recognition failed becomes `EventFrame("stt_error")` so the agent says
  the fallback line. After an empty turn an idle agent re-announces
  `waiting`, so a client always hears `waiting` or `hangup` after its turn.
- Speech that starts while the agent is active (working on or speaking a
  reply) is a barge-in candidate. With `barge_in_pause` the agent's audio is
  paused at its onset (`Playback.pause`: nothing more is heard, nothing is
  lost). It interrupts once it has `barge_in_min_speech_ms` of voiced audio
  (`SpeechProgressFrame.voiced_ms`: a detector's trailing frames after a short
  "uh-huh" count for little), or once an interim transcript has
  `barge_in_min_words` words (when that is set); it then is the caller's turn.
- A candidate that ends before that while the agent is still active is a
  backchannel ("uh-huh"): the agent's audio resumes where it was paused, and
  the transcript is reported as a `backchannel` event but never sent to the
  graph. A pause neither confirmed nor ended `barge_in_resume_ms` after it
  began resumes too (the candidate can still interrupt later). If the agent
  finished speaking before the candidate ended, it is an ordinary turn. With
  barge-in disabled, speech over the agent is ignored the same way.
- Once a caller turn is under way, further segments belong to it whatever the
  agent is doing: the caller has the floor.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from runtime.voice.audio import duration_s
from runtime.voice.frames import (
    EndFrame,
    EventFrame,
    Frame,
    InterruptionFrame,
    SpeechStartedFrame,
    SpeechStoppedFrame,
    TranscriptFrame,
    UserAudioFrame,
    UserTurnFrame,
)
from runtime.voice.sentences import word_count
from runtime.voice.stages.base import CallShared, Stage
from runtime.voice.stages.vad import SpeechProgressFrame

#: Extra wait on the clock, past `end_of_turn_ms`, when caller audio stopped
#: arriving (the audio stream is the primary measure).
WALL_SLACK_MS = 200.0

TURN, PENDING, BACKCHANNEL, IGNORED = "turn", "pending", "backchannel", "ignored"


@dataclass
class _Segment:
    mode: str
    onset_ms: float
    end_clock: float | None = None
    #: Clock times the agent's audio was paused for it (asked, stopped).
    paused_at: float | None = None
    stopped_at: float | None = None


class TurnStage(Stage):
    name = "turns"

    def __init__(self, shared: CallShared) -> None:
        super().__init__(shared)
        #: Caller audio received so far, in ms (the audio stream's own clock).
        self.audio_ms = 0.0
        self._speaking: _Segment | None = None
        self._awaiting: deque[_Segment] = deque()
        self._texts: list[str] = []
        self._stt_latency: float | None = None
        self._failure: str | None = None
        self._turn_open = False
        self._last_end_audio = 0.0
        self._last_end_clock = 0.0
        #: The segment the agent's audio is paused for, and when that resumes.
        self._paused: _Segment | None = None
        self._resume_at = 0.0

    # --- frames -----------------------------------------------------------------

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, UserAudioFrame):
            self.audio_ms += 1000.0 * duration_s(frame.pcm, frame.sample_rate)
            await self._resume_if_due()
            await self._maybe_end_turn()
        elif isinstance(frame, SpeechProgressFrame):
            seg = self._speaking
            if (
                seg is not None
                and seg.mode == PENDING
                and frame.voiced_ms >= self.shared.config.barge_in_min_speech_ms
            ):
                await self._barge_in(seg)
        elif isinstance(frame, SpeechStartedFrame):
            seg = self._speaking = _Segment(self._mode_for_new_speech(), frame.onset_ms)
            if seg.mode == PENDING and self.shared.config.barge_in_pause:
                await self._pause(seg)
        elif isinstance(frame, SpeechStoppedFrame):
            await self._speech_stopped(frame)
        elif isinstance(frame, TranscriptFrame) and not frame.final:
            await self.shared.emit("transcript", {"text": frame.text, "final": False})
            seg = self._speaking
            min_words = self.shared.config.barge_in_min_words
            if (
                seg is not None
                and seg.mode == PENDING
                and min_words > 0
                and word_count(frame.text) >= min_words
            ):
                await self._barge_in(seg)
        elif isinstance(frame, TranscriptFrame):
            await self._final(frame.text, None)
        elif isinstance(frame, EventFrame) and frame.type == "stt_error":
            await self._final("", str(frame.data.get("error", "speech recognition failed")))
        else:
            if isinstance(frame, EndFrame) and self._paused is not None:
                # The caller hung up mid-pause: the output must not wait for a
                # decision that will never come (its queue ends with this frame).
                await self._resume("hangup")
            await self.push(frame)

    def wait_timeout_s(self) -> float | None:
        deadlines = [self._turn_deadline()]
        if self._paused is not None:
            deadlines.append(self._resume_at)
        due = [d for d in deadlines if d is not None]
        if not due:
            return None
        return max(0.0, (min(due) - self.shared.clock()) / 1000.0)

    def _turn_deadline(self) -> float | None:
        if not self._turn_open or self._speaking is not None or self._turn_finals_pending():
            return None
        return self._last_end_clock + self.shared.config.end_of_turn_ms + WALL_SLACK_MS

    async def on_timeout(self) -> None:
        await self._resume_if_due()
        if self._turn_deadline() is not None:
            await self._maybe_end_turn(by_clock=True)

    # --- segments ---------------------------------------------------------------

    def _mode_for_new_speech(self) -> str:
        if self._turn_open or not self.shared.agent_active():
            return TURN
        return PENDING if self.shared.config.barge_in_enabled else IGNORED

    async def _speech_stopped(self, frame: SpeechStoppedFrame) -> None:
        seg, self._speaking = self._speaking, None
        if seg is None:
            return
        now = self.shared.clock()
        seg.end_clock = now - max(0.0, self.audio_ms - frame.end_ms)
        if seg.mode == PENDING:
            seg.mode = BACKCHANNEL if self.shared.agent_active() else TURN
            if seg is self._paused:
                await self._resume("backchannel")
        if seg.mode == TURN:
            self._turn_open = True
            self._last_end_audio = frame.end_ms
            self._last_end_clock = seg.end_clock
        self._awaiting.append(seg)

    def _onset_clock(self, seg: _Segment) -> float:
        return self.shared.clock() - max(0.0, self.audio_ms - seg.onset_ms)

    async def _barge_in(self, seg: _Segment) -> None:
        seg.mode = TURN
        self._turn_open = True
        now = self.shared.clock()
        onset = self._onset_clock(seg)
        frame = InterruptionFrame(onset_ms=onset, detected_ms=now, ts_ms=now)
        if seg is self._paused and seg.paused_at is not None:
            # The audio stopped at the pause: that is when the caller was heard.
            frame.detected_ms, frame.stopped_ms = seg.paused_at, seg.stopped_at
        self._paused = None
        await self.shared.interrupt(frame)

    async def _pause(self, seg: _Segment) -> None:
        playback = self.shared.playback
        if playback is None or self._paused is not None:
            return
        self._paused = seg
        seg.paused_at = now = self.shared.clock()
        self._resume_at = now + self.shared.config.barge_in_resume_ms
        seg.stopped_at = await playback.pause(self._onset_clock(seg))

    async def _resume(self, reason: str) -> None:
        playback, self._paused = self.shared.playback, None
        if playback is not None:
            await playback.resume(reason)

    async def _resume_if_due(self) -> None:
        if self._paused is not None and self.shared.clock() >= self._resume_at:
            await self._resume("timeout")

    async def _final(self, text: str, error: str | None) -> None:
        seg = self._awaiting.popleft() if self._awaiting else _Segment(TURN, self.audio_ms)
        if seg.mode in (BACKCHANNEL, IGNORED):
            if text:
                await self.shared.emit("backchannel", {"text": text})
            return
        if seg.end_clock is not None:
            latency = self.shared.clock() - seg.end_clock
            self._stt_latency = max(self._stt_latency or 0.0, latency)
        if error is not None:
            self._failure = error
        elif text:
            self._texts.append(text)
            await self.shared.emit("transcript", {"text": text, "final": True})
        await self._maybe_end_turn()

    def _turn_finals_pending(self) -> bool:
        return any(s.mode == TURN for s in self._awaiting)

    async def _maybe_end_turn(self, *, by_clock: bool = False) -> None:
        if not self._turn_open or self._turn_finals_pending():
            return
        if self._speaking is not None and self._speaking.mode == TURN:
            return
        silence = self.shared.config.end_of_turn_ms
        if by_clock:
            due = self.shared.clock() >= self._last_end_clock + silence + WALL_SLACK_MS
        else:
            due = self.audio_ms >= self._last_end_audio + silence
        if not due:
            return
        text = " ".join(self._texts).strip()
        failure, latency = self._failure, self._stt_latency
        self._texts, self._failure, self._stt_latency = [], None, None
        self._turn_open = False
        now = self.shared.clock()
        if (text or failure is not None) and not self.shared.step_running:
            await self.shared.emit_metrics()  # the previous turn's, if not sent yet
        if text:
            turn = self.shared.metrics.open_turn(text, self._last_end_clock)
            turn.stt_final_ms = latency
            await self.shared.emit("caller", {"text": text})
            await self.push(UserTurnFrame(text=text, speech_end_ms=self._last_end_clock, ts_ms=now))
        elif failure is not None:
            self.shared.metrics.open_turn(None, self._last_end_clock)
            await self.push(EventFrame(type="stt_error", data={"error": failure}, ts_ms=now))
        elif not self.shared.agent_active():
            # Nothing was recognised (noise): the agent still listens.
            await self.shared.emit("waiting", {"reason": "no speech recognised"})
