"""Output stage: agent audio to the transport at real time, stopped at once by
a barge-in, and the account of what the caller actually heard.

Audio goes out in `chunk_ms` pieces, each sent no earlier than `lead_ms`
before the previous one ends at the far end, so the far end never holds more
than about `lead_ms` of agent audio and `clear()` on barge-in discards at most
that. Events that must follow the audio (the graph waiting for the caller,
the end of the call) travel through this stage's queue and are sent when the
audio before them has played out.

`HeardLedger` keeps, for each agent message being spoken, its sentences and
the intervals at which their audio played. At a barge-in, a message not heard
to its end is reported as heard up to the whole sentences played plus the
played fraction of the current sentence, by words (rounded down).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from runtime.voice.audio import bytes_for_ms, duration_s
from runtime.voice.frames import (
    AgentAudioFrame,
    DataFrame,
    EndFrame,
    EventFrame,
    Frame,
    InterruptionFrame,
    MetricsFrame,
)
from runtime.voice.sentences import first_words, word_count
from runtime.voice.stages.base import CallShared, Stage
from runtime.voice.transport import Transport, TransportClosed

#: Speech length assumed per word for a sentence whose audio is not all
#: synthesized yet (about 170 words per minute).
EST_WORD_MS = 350.0


@dataclass
class _Sentence:
    text: str
    #: Audio accounted to this sentence (played or still queued), in clock ms.
    audio_ms: float = 0.0
    played: list[tuple[float, float]] = field(default_factory=list)
    synthesized: bool = False

    def heard_ms(self, now: float) -> float:
        return sum(min(max(now - start, 0.0), end - start) for start, end in self.played)

    def total_ms(self, speed: float) -> float:
        if self.synthesized:
            return self.audio_ms
        return max(self.audio_ms, word_count(self.text) * EST_WORD_MS / speed)


@dataclass
class _Message:
    sentences: list[_Sentence] = field(default_factory=list)
    complete: bool = False


class HeardLedger:
    """What of each agent message the caller has heard (one per call)."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self._messages: dict[str, _Message] = {}
        self._aliases: dict[str, str] = {}

    def rename(self, old: str, new: str) -> None:
        """Text streamed under a provisional id turned out to be message `new`."""
        self._aliases[old] = new
        if old in self._messages:
            self._messages[new] = self._messages.pop(old)

    def add_sentence(self, message_id: str, text: str) -> None:
        """A sentence of `message_id` is on its way to TTS (in order)."""
        self._messages.setdefault(message_id, _Message()).sentences.append(_Sentence(text))

    def complete(self, message_id: str) -> None:
        """No more sentences will be added to `message_id`."""
        self._messages.setdefault(message_id, _Message()).complete = True

    def account(
        self,
        message_id: str,
        text: str,
        audio_ms: float,
        *,
        start: float | None = None,
        last: bool = False,
    ) -> None:
        """Audio of the current sentence of `message_id`: played from `start`
        (clock ms), or queued and never played when `start` is None. `last`
        marks the end of that sentence's audio."""
        message_id = self._aliases.get(message_id, message_id)
        message = self._messages.setdefault(message_id, _Message())
        sentence = next((s for s in message.sentences if not s.synthesized), None)
        if sentence is None:
            sentence = _Sentence(text)
            message.sentences.append(sentence)
        sentence.audio_ms += audio_ms
        if start is not None and audio_ms > 0:
            sentence.played.append((start, start + audio_ms))
        if last:
            sentence.synthesized = True

    def heard(self, message_id: str, now: float) -> tuple[str, bool]:
        """(text heard by `now`, whether the whole message was heard)."""
        message = self._messages.get(message_id)
        if message is None:
            return "", False
        parts: list[str] = []
        whole = message.complete
        for sentence in message.sentences:
            total = sentence.total_ms(self.speed)
            heard = sentence.heard_ms(now)
            if heard >= total - 1e-6:
                parts.append(sentence.text)
                continue
            fraction = heard / total if total > 0 else 0.0
            parts.append(
                first_words(sentence.text, math.floor(fraction * word_count(sentence.text)))
            )
            whole = False
            break
        return " ".join(p for p in parts if p), whole

    def cut(self, now: float) -> dict[str, str]:
        """Messages not heard to their end by `now`, with what was heard; the
        ledger is emptied (everything after a barge-in is dropped)."""
        out: dict[str, str] = {}
        for message_id in self._messages:
            text, whole = self.heard(message_id, now)
            if not whole:
                out[message_id] = text
        self._messages.clear()
        self._aliases.clear()
        return out

    def prune(self, now: float) -> None:
        """Forget messages heard to their end."""
        for message_id in [m for m in self._messages if self.heard(m, now)[1]]:
            del self._messages[message_id]

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._messages


class OutputStage(Stage):
    name = "output"

    def __init__(self, shared: CallShared, transport: Transport, ledger: HeardLedger) -> None:
        super().__init__(shared)
        self.transport = transport
        self.ledger = ledger
        #: What `_sleep_until` waits on; a barge-in resolves it at once.
        self._wake: asyncio.Future[None] | None = None
        #: The frame being played and the index of its next piece.
        self._playing: tuple[AgentAudioFrame, list[bytes], int] | None = None
        self.end_reason: str | None = None
        self._gone = False

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, AgentAudioFrame):
            await self._play(frame)
        elif isinstance(frame, EventFrame) and frame.type == "waiting":
            await self._sleep_until(self.shared.play_until)
            self.ledger.prune(self.shared.clock())
            data = dict(frame.data)
            turn = data.pop("turn", None)
            epoch = data.pop("epoch", None)
            await self.shared.emit_metrics(turn if isinstance(turn, int) else None)
            if epoch is None or epoch == self.shared.epoch:
                # (A step interrupted by a barge-in does not announce it: the
                # caller has the floor and the next step will.)
                await self.shared.emit("waiting", data)
        elif isinstance(frame, EventFrame):
            await self.shared.emit(frame.type, dict(frame.data))
        elif isinstance(frame, MetricsFrame):
            await self.shared.emit("metrics", {"name": frame.name, **frame.data})
        elif isinstance(frame, EndFrame):
            if frame.reason != "hangup":
                await self._sleep_until(self.shared.play_until)
            await self.shared.emit_metrics()
            self.end_reason = frame.reason
            await self.shared.emit("hangup", {"reason": frame.reason})

    async def _play(self, frame: AgentAudioFrame) -> None:
        shared = self.shared
        epoch = shared.epoch
        step = max(2, bytes_for_ms(shared.config.chunk_ms, frame.sample_rate))
        pieces = [frame.pcm[i : i + step] for i in range(0, len(frame.pcm), step)] or [b""]
        for index, piece in enumerate(pieces):
            self._playing = (frame, pieces, index)
            await self._sleep_until(shared.play_until - shared.config.lead_ms)
            if epoch != shared.epoch:
                return
            last = frame.last_of_text and index == len(pieces) - 1
            audio_ms = 1000.0 * duration_s(piece, frame.sample_rate) / shared.config.speed
            now = shared.clock()
            start = max(shared.play_until, now) if piece else now
            if piece and not self._gone:
                try:
                    await self.transport.play(
                        AgentAudioFrame(
                            pcm=piece,
                            sample_rate=frame.sample_rate,
                            message_id=frame.message_id,
                            text=frame.text,
                            last_of_text=last,
                            ts_ms=now,
                        )
                    )
                except TransportClosed:
                    # The caller is gone; the reader ends the call. Keep
                    # pacing so the heard-accounting stays true to time.
                    self._gone = True
                if epoch != shared.epoch:
                    return  # flush() accounted this piece as not heard
                shared.metrics.audio_out()
                shared.play_until = start + audio_ms
            self.ledger.account(frame.message_id, frame.text, audio_ms, start=start, last=last)
        self._playing = None
        if frame.last_of_text:
            shared.pending_sentences = max(0, shared.pending_sentences - 1)

    async def _sleep_until(self, t: float) -> None:
        """Wait until clock time `t`; a barge-in ends the wait at once."""
        delay = t - self.shared.clock()
        if delay <= 0:
            return
        # One future and one timer per wait (no timeout context, no exception).
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        wake = self._wake = loop.create_future()
        timer = loop.call_later(delay / 1000.0, _resolve, wake)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None

    def flush(self) -> int:
        """Drop queued audio, first accounting it (never played) to its
        sentences so the played fraction of each is known."""
        speed = self.shared.config.speed
        if self._playing is not None:
            frame, pieces, index = self._playing
            rest = b"".join(pieces[index:])
            self.ledger.account(
                frame.message_id,
                frame.text,
                1000.0 * duration_s(rest, frame.sample_rate) / speed,
                last=frame.last_of_text,
            )
            self._playing = None
        return super().flush()

    def dropping(self, frame: DataFrame) -> None:
        if isinstance(frame, AgentAudioFrame):
            self.ledger.account(
                frame.message_id,
                frame.text,
                1000.0 * duration_s(frame.pcm, frame.sample_rate) / self.shared.config.speed,
                last=frame.last_of_text,
            )

    async def interrupt(self, frame: InterruptionFrame) -> None:
        if self._wake is not None:
            _resolve(self._wake)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
