"""VAD stage: caller audio in, the same audio out plus speech start/stop events.

Audio is resampled to the detector's rate and cut into its frame size; the
detector scores the frames of one incoming frame on the event loop (up to
`INLINE_MAX_CHUNKS` of them, the usual case), else in a worker thread. Onset needs
`vad_start_ms` of speech and the end of a segment `vad_stop_ms` of non-speech
(hysteresis between the start and stop thresholds). Event times
(`SpeechStartedFrame.onset_ms`, `SpeechStoppedFrame.end_ms`) are positions in
the caller's audio stream, in ms since the call's first audio frame. If the
audio stops coming during speech, the segment ends after `vad_stop_ms` on
the clock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from runtime.voice.audio import SAMPLE_WIDTH, Resampler
from runtime.voice.frames import (
    Frame,
    SpeechStartedFrame,
    SpeechStoppedFrame,
    SystemFrame,
    UserAudioFrame,
)
from runtime.voice.providers.base import VAD
from runtime.voice.stages.base import CallShared, Stage, log

#: Detector frames per incoming audio frame scored on the event loop (a Silero
#: frame costs ~0.05 ms, less than a hop to a worker thread, which under load
#: also queues behind every other call's work); larger batches go to a thread.
#: Up to 5 covers a coalesced 100 ms of caller audio (`COALESCE_MAX_MS`).
INLINE_MAX_CHUNKS = 5


@dataclass
class SpeechProgressFrame(SystemFrame):
    """VAD: the current speech segment has had speech from `onset_ms` to
    `onset_ms + speech_ms` of the audio stream (its trailing silence not counted).
    `voiced_ms` is the expected speech in it: the detector's speech probability
    summed over its frames judged speech, times the frame length, so the
    decaying frames a detector reports after the speech ended count for less
    than a frame each."""

    onset_ms: float = 0.0
    speech_ms: float = 0.0
    voiced_ms: float = 0.0


class VADStage(Stage):
    name = "vad"

    def __init__(self, shared: CallShared, vad: VAD) -> None:
        super().__init__(shared)
        self.vad = vad.clone()
        self._frame_bytes = vad.frame_samples * SAMPLE_WIDTH
        self._chunk_ms = 1000.0 * vad.frame_samples / vad.sample_rate
        self._resampler: Resampler | None = None
        self._buffer = b""
        #: Audio position (ms) of the start of `_buffer`.
        self._position_ms = 0.0
        self.in_speech = False
        self._speech_run_ms = 0.0
        self._silence_run_ms = 0.0
        self._candidate_onset = 0.0
        self._voiced_ms = 0.0
        self._silence_start = 0.0
        self._failed = False

    async def process(self, frame: Frame) -> None:
        if not isinstance(frame, UserAudioFrame):
            await self.push(frame)
            return
        await self.push(frame)
        pcm = frame.pcm
        # (Once a resampler is in use it stays: it may hold half a sample.)
        if self._resampler is not None or frame.sample_rate != self.vad.sample_rate or len(pcm) % 2:
            if self._resampler is None or self._resampler.from_rate != frame.sample_rate:
                self._resampler = Resampler(frame.sample_rate, self.vad.sample_rate)
            pcm = self._resampler.process(pcm)
        step = self._frame_bytes
        if not self._buffer and len(pcm) == step:
            chunks = [pcm]  # the usual case: one detector frame per audio frame
        else:
            self._buffer += pcm
            usable = len(self._buffer) - len(self._buffer) % step
            if usable == 0:
                return
            chunks = [self._buffer[i : i + step] for i in range(0, usable, step)]
            self._buffer = self._buffer[usable:]
        probabilities = await self._probabilities(chunks)
        for p in probabilities:
            events = self._step(p)
            self._position_ms += self._chunk_ms
            for event in events:
                await self.push(event)

    def wait_timeout_s(self) -> float | None:
        # Speech with no audio after it (a client that stops streaming when
        # the caller stops talking) still ends, by the clock.
        return self.shared.config.vad_stop_ms / 1000.0 if self.in_speech else None

    async def on_timeout(self) -> None:
        if self.in_speech:
            self.in_speech = False
            self._speech_run_ms = self._silence_run_ms = 0.0
            end = self._position_ms + self._buffered_ms()
            await self.push(SpeechStoppedFrame(end_ms=end, ts_ms=self.shared.clock()))

    def _buffered_ms(self) -> float:
        return 1000.0 * len(self._buffer) / SAMPLE_WIDTH / self.vad.sample_rate

    async def _probabilities(self, chunks: list[bytes]) -> list[float]:
        try:
            if len(chunks) <= INLINE_MAX_CHUNKS:
                return [self.vad.speech_probability(c) for c in chunks]
            return await asyncio.to_thread(lambda: [self.vad.speech_probability(c) for c in chunks])
        except Exception as exc:  # a broken detector must not end the call
            if not self._failed:
                log.warning("VAD failed, treating audio as silence: %s", exc)
                self._failed = True
            return [0.0] * len(chunks)

    def _step(self, p: float) -> list[Frame]:
        """Advance the speech state by one detector frame starting at
        `_position_ms`; return the events it causes."""
        cfg = self.shared.config
        start = self._position_ms
        out: list[Frame] = []
        if p >= cfg.vad_start_threshold:
            if self._speech_run_ms == 0.0 and not self.in_speech:
                self._candidate_onset = start
                self._voiced_ms = 0.0
            self._speech_run_ms += self._chunk_ms
            self._voiced_ms += p * self._chunk_ms
            self._silence_run_ms = 0.0
            if not self.in_speech and self._speech_run_ms >= cfg.vad_start_ms:
                self.in_speech = True
                out.append(
                    SpeechStartedFrame(onset_ms=self._candidate_onset, ts_ms=self.shared.clock())
                )
        elif p < cfg.vad_stop_threshold:
            if self._silence_run_ms == 0.0:
                self._silence_start = start
            self._silence_run_ms += self._chunk_ms
            if not self.in_speech:
                self._speech_run_ms = 0.0
            elif self._silence_run_ms >= cfg.vad_stop_ms:
                self.in_speech = False
                self._speech_run_ms = 0.0
                return [SpeechStoppedFrame(end_ms=self._silence_start, ts_ms=self.shared.clock())]
            return out
        elif self.in_speech:
            self._silence_run_ms = 0.0
            self._voiced_ms += p * self._chunk_ms
        else:
            self._speech_run_ms = 0.0
            return out
        if self.in_speech:
            speech_ms = start + self._chunk_ms - self._candidate_onset
            out.append(
                SpeechProgressFrame(
                    onset_ms=self._candidate_onset,
                    speech_ms=speech_ms,
                    voiced_ms=self._voiced_ms,
                    ts_ms=self.shared.clock(),
                )
            )
        return out
