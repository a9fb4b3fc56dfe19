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
event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from runtime.voice.audio import Resampler
from runtime.voice.frames import AgentAudioFrame, AgentTextFrame, Frame, InterruptionFrame
from runtime.voice.providers.base import ProviderError, TTSProvider
from runtime.voice.stages.base import CallShared, Stage, log
from runtime.voice.stages.output import HeardLedger


class TTSFailed(Exception):
    """Synthesis of one sentence failed or timed out."""


class TTSStage(Stage):
    name = "tts"

    def __init__(self, shared: CallShared, tts: TTSProvider, ledger: HeardLedger) -> None:
        super().__init__(shared)
        self.tts = tts
        self.ledger = ledger
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
        if self._job is not None:
            self._job.cancel()

    async def _speak(self, frame: AgentTextFrame, epoch: int) -> None:
        self.shared.metrics.tts_started()
        try:
            await self._synthesize(frame.text, frame.message_id, epoch)
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
            await self._synthesize(line, fallback_id, epoch)
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

    async def _synthesize(self, text: str, message_id: str, epoch: int) -> None:
        """Stream `text` to the output stage; raise `TTSFailed` on failure."""
        rate = self.shared.sample_rate
        resampler = Resampler(self.tts.sample_rate, rate)
        timeout = self.shared.config.tts_timeout_s
        chunks: AsyncIterator[bytes] = aiter(self.tts.synthesize(text))
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
            frame.ts_ms = self.shared.clock()
            await self.push(frame)
