"""TTS stage: agent sentences to audio, streamed as the provider produces it.

Each sentence is synthesized in its own task so a barge-in can cancel it;
chunks are resampled to the transport's rate and handed to the output stage
at once, so playback of a sentence starts with its first chunk and the next
sentence is synthesized while this one plays. Every sentence ends with an
`AgentAudioFrame(last_of_text=True)` (empty if synthesis failed), which the
heard-accounting relies on. The first chunk and every later one must come
within `tts_timeout_s`. A failure (timeout, `ProviderError`) is reported as an
`error` event and the graph's fallback line is said instead, once per agent
message; if that cannot be synthesized either, it goes out as a `fallback`
event. Each sentence is spoken in the voice of the agent that says it
(`runtime.voice.voices`), so a handoff changes the voice.

Synthesis runs at most `MAX_AHEAD_MS` of audio ahead of playback (a provider
faster than real time waits between chunks): enough to hide the next
sentence's time to first audio, and little to synthesize, resample and throw
away at a barge-in, whose stop time grows with the audio queued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from runtime.voice.audio import Resampler, duration_s
from runtime.voice.frames import AgentAudioFrame, AgentTextFrame, Frame, InterruptionFrame
from runtime.voice.providers.base import ProviderError, TTSProvider
from runtime.voice.stages.base import CallShared, Stage, log
from runtime.voice.stages.output import HeardLedger
from runtime.voice.voices import Voices

#: Audio synthesized beyond what has played, at most (ms of playback).
MAX_AHEAD_MS = 2000.0


class TTSFailed(Exception):
    """Synthesis of one sentence failed or timed out."""


class TTSStage(Stage):
    name = "tts"

    def __init__(
        self,
        shared: CallShared,
        tts: TTSProvider,
        ledger: HeardLedger,
        voices: Voices | None = None,
    ) -> None:
        super().__init__(shared)
        self.tts = tts
        self.voices = voices or Voices(tts)
        self.ledger = ledger
        #: Clock time at which the audio handed on so far ends, played back to back.
        self._ahead_until = 0.0
        self._job: asyncio.Task[None] | None = None
        self._fallback_for: set[str] = set()

    async def process(self, frame: Frame) -> None:
        if not isinstance(frame, AgentTextFrame):
            await self.push(frame)
            return
        self._job = asyncio.create_task(self._speak(frame, self.shared.epoch), name="tts-job")
        await asyncio.wait({self._job})
        self._job = None

    async def interrupt(self, frame: InterruptionFrame) -> None:
        self._ahead_until = 0.0
        if self._job is not None:
            self._job.cancel()

    async def _speak(self, frame: AgentTextFrame, epoch: int) -> None:
        self.shared.metrics.tts_started()
        try:
            await self._synthesize(frame.text, frame.message_id, epoch, frame.agent)
            return
        except TTSFailed as exc:
            error = str(exc)
        log.warning("TTS: %s", error)
        await self._out(
            AgentAudioFrame(
                message_id=frame.message_id,
                text=frame.text,
                last_of_text=True,
                sample_rate=self.shared.sample_rate,
            ),
            epoch,
        )
        await self.shared.emit("error", {"stage": "tts", "error": error, "text": frame.text})
        line = self.shared.config.fallback_line
        if (
            frame.message_id in self._fallback_for
            or frame.text == line
            or epoch != self.shared.epoch
        ):
            return
        self._fallback_for.add(frame.message_id)
        fallback_id = f"fallback:{frame.message_id}"
        self.ledger.add_sentence(fallback_id, line)
        self.ledger.complete(fallback_id)
        self.shared.pending_sentences += 1
        try:
            await self._synthesize(line, fallback_id, epoch, frame.agent)
        except TTSFailed as exc:
            log.warning("TTS: fallback line failed too: %s", exc)
            await self._out(
                AgentAudioFrame(
                    message_id=fallback_id,
                    text=line,
                    last_of_text=True,
                    sample_rate=self.shared.sample_rate,
                ),
                epoch,
            )
            await self.shared.emit("fallback", {"text": line, "error": str(exc)})

    async def _synthesize(self, text: str, message_id: str, epoch: int, agent: str = "") -> None:
        """Stream `text` in `agent`'s voice to the output stage; raise
        `TTSFailed` on failure."""
        tts = self.voices.for_agent(agent)
        rate = self.shared.sample_rate
        resampler = Resampler(tts.sample_rate, rate)
        timeout = self.shared.config.tts_timeout_s
        chunks: AsyncIterator[bytes] = aiter(tts.synthesize(text))
        first = True
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                pcm = resampler.process(chunk)
                if first and chunk:
                    self.shared.metrics.tts_first_audio()
                    first = False
                if pcm:
                    await self._out(
                        AgentAudioFrame(
                            pcm=pcm, sample_rate=rate, message_id=message_id, text=text
                        ),
                        epoch,
                    )
                    await self._keep_pace()
        except TimeoutError as exc:
            raise TTSFailed(f"speech synthesis timed out after {timeout:g} s") from exc
        except (ProviderError, OSError, ValueError) as exc:
            raise TTSFailed(f"speech synthesis failed: {type(exc).__name__}: {exc}") from exc
        finally:
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        await self._out(
            AgentAudioFrame(
                pcm=resampler.flush(),
                sample_rate=rate,
                message_id=message_id,
                text=text,
                last_of_text=True,
            ),
            epoch,
        )

    async def _out(self, frame: AgentAudioFrame, epoch: int) -> None:
        if epoch == self.shared.epoch:
            now = frame.ts_ms = self.shared.clock()
            await self.push(frame)
            if frame.pcm:
                audio_ms = 1000.0 * duration_s(frame.pcm, frame.sample_rate)
                self._ahead_until = (
                    max(now, self._ahead_until) + audio_ms / self.shared.config.speed
                )

    async def _keep_pace(self) -> None:
        """Wait while more than `MAX_AHEAD_MS` of handed-on audio is still to play."""
        delay = self._ahead_until - MAX_AHEAD_MS - self.shared.clock()
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)
