"""STT stage: caller speech to interim and final transcripts.

Only speech goes to the recogniser: the last `pre_roll_ms` of audio before a
VAD onset (the detector confirms onsets late) and everything until the VAD
reports the end of the segment, which asks for the segment's final transcript.
Frames pass on to turn-taking at once; recognition runs in a worker task in
order (audio, then finalize), so a slow decode never delays barge-in or
end-of-turn detection. A finalize that times out or fails yields an
`EventFrame("stt_error")` in place of the transcript and the stream is opened
anew for the next segment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from runtime.voice.audio import Resampler, bytes_for_ms
from runtime.voice.frames import (
    EndFrame,
    EventFrame,
    Frame,
    SpeechStartedFrame,
    SpeechStoppedFrame,
    TranscriptFrame,
    UserAudioFrame,
)
from runtime.voice.providers.base import ProviderError, STTProvider, STTStream
from runtime.voice.stages.base import CallShared, Stage, log

#: Closing a broken stream may itself hang: bounded.
CLOSE_TIMEOUT_S = 2.0


class STTStage(Stage):
    name = "stt"

    def __init__(self, shared: CallShared, stt: STTProvider) -> None:
        super().__init__(shared)
        self.stt = stt
        self._stream: STTStream | None = None
        self._resampler: Resampler | None = None
        self._pre_roll: deque[bytes] = deque()
        self._pre_roll_bytes = 0
        self._in_speech = False
        self._work: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._error: str | None = None

    async def run(self) -> None:
        self._worker = asyncio.create_task(self._work_loop(), name="stt-worker")
        try:
            await super().run()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop the worker and close the recogniser stream (bounded)."""
        for task in (self._worker, self._reader):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._close_stream()

    async def process(self, frame: Frame) -> None:
        await self.push(frame)
        if isinstance(frame, UserAudioFrame):
            pcm = frame.pcm
            # (Once a resampler is in use it stays: it may hold half a sample.)
            if (
                self._resampler is not None
                or frame.sample_rate != self.stt.sample_rate
                or len(pcm) % 2
            ):
                if self._resampler is None or self._resampler.from_rate != frame.sample_rate:
                    self._resampler = Resampler(frame.sample_rate, self.stt.sample_rate)
                pcm = self._resampler.process(pcm)
            if self._in_speech:
                self._work.put_nowait(("audio", pcm))
            else:
                self._keep_pre_roll(pcm)
        elif isinstance(frame, SpeechStartedFrame):
            self._in_speech = True
            self._work.put_nowait(("audio", b"".join(self._pre_roll)))
            self._pre_roll.clear()
            self._pre_roll_bytes = 0
        elif isinstance(frame, SpeechStoppedFrame):
            self._in_speech = False
            self._work.put_nowait(("final", b""))
        elif isinstance(frame, EndFrame):
            self._work.put_nowait(("end", b""))

    def _keep_pre_roll(self, pcm: bytes) -> None:
        # Counted in bytes (16-bit mono at the recogniser's rate).
        self._pre_roll.append(pcm)
        self._pre_roll_bytes += len(pcm)
        limit = bytes_for_ms(self.shared.config.pre_roll_ms, self.stt.sample_rate)
        while self._pre_roll and self._pre_roll_bytes - len(self._pre_roll[0]) >= limit:
            self._pre_roll_bytes -= len(self._pre_roll.popleft())

    # --- recognition, in order, off the frame path ------------------------------

    async def _work_loop(self) -> None:
        while True:
            items = [await self._work.get()]
            while not self._work.empty():
                items.append(self._work.get_nowait())
            # Audio queued back to back goes to the recogniser in one send.
            audio: list[bytes] = []
            for kind, pcm in items:
                if kind == "audio":
                    audio.append(pcm)
                    continue
                if audio:
                    await self._send(b"".join(audio))
                    audio = []
                if kind == "end":
                    return
                await self._finalize()
            if audio:
                await self._send(b"".join(audio))

    async def _open(self) -> STTStream | None:
        if self._stream is not None:
            return self._stream
        try:
            async with asyncio.timeout(self.shared.config.stt_timeout_s):
                self._stream = await self.stt.open()
        except (TimeoutError, ProviderError, OSError) as exc:
            self._error = self._error or f"speech recognition unavailable: {_reason(exc)}"
            return None
        self._reader = asyncio.create_task(self._read_interim(self._stream), name="stt-interim")
        return self._stream

    async def _send(self, pcm: bytes) -> None:
        if not pcm or self._error is not None:
            return
        stream = await self._open()
        if stream is None:
            return
        try:
            async with asyncio.timeout(self.shared.config.stt_timeout_s):
                await stream.send(pcm)
        except (TimeoutError, ProviderError, OSError) as exc:
            self._error = f"speech recognition failed: {_reason(exc)}"

    async def _finalize(self) -> None:
        stream = None if self._error is not None else await self._open()
        text: str | None = None
        if stream is not None:
            try:
                async with asyncio.timeout(self.shared.config.stt_timeout_s):
                    text = (await stream.finalize()).text
            except TimeoutError:
                self._error = (
                    f"speech recognition timed out after {self.shared.config.stt_timeout_s:g} s"
                )
            except (ProviderError, OSError) as exc:
                self._error = f"speech recognition failed: {_reason(exc)}"
        now = self.shared.clock()
        if text is not None and self._error is None:
            await self.push(TranscriptFrame(text=" ".join(text.split()), final=True, ts_ms=now))
            return
        error, self._error = self._error or "no transcript", None
        log.warning("STT: %s", error)
        await self.push(EventFrame(type="stt_error", data={"error": error}, ts_ms=now))
        await self._close_stream()

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
        if stream is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await stream.close()

    async def _read_interim(self, stream: STTStream) -> None:
        try:
            async for result in stream.interim():
                text = " ".join(result.text.split())
                if text:
                    await self.push(
                        TranscriptFrame(text=text, final=False, ts_ms=self.shared.clock())
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # interim results are optional; finals still count
            log.warning("STT interim results stopped: %s", exc)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
