"""Output stage: agent audio to the transport at real time, paused at once
when the caller starts speaking over it (and resumed, or stopped for good by a
barge-in), and the account of what the caller actually heard.

Audio goes out in `chunk_ms` pieces, each sent no earlier than `lead_ms`
before the previous one ends at the far end, so the far end never holds more
than about `lead_ms` of agent audio and `clear()` on a pause or barge-in
discards at most that. Events that must follow the audio (the graph waiting
for the caller, the end of the call) travel through this stage's queue and are
sent when the audio before them has played out, after any pause.

`HeardLedger` keeps, for each agent message being spoken, its sentences and
the intervals at which their audio played. At a barge-in, a message not heard
to its end is reported as heard up to the whole sentences played plus the
played fraction of the current sentence, by words (rounded down).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field, replace

from runtime.voice.audio import bytes_for_ms, duration_s
from runtime.voice.frames import (
    AgentAudioFrame,
    DataFrame,
    EndFrame,
    EventFrame,
    Frame,
    InterruptionFrame,
    MetricsFrame,
    SystemFrame,
)
from runtime.voice.sentences import first_words, word_count
from runtime.voice.stages.base import CallShared, Stage, log
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
    ) -> _Sentence:
        """Audio of the current sentence of `message_id`: played from `start`
        (clock ms), or queued and never played when `start` is None. `last`
        marks the end of that sentence's audio. Returns the sentence it was
        accounted to."""
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
        return sentence

    @staticmethod
    def retract(
        sentence: _Sentence, start: float, audio_ms: float, keep_ms: float, last: bool
    ) -> None:
        """Take back audio accounted by `account(start=start)` to `sentence`
        except its first `keep_ms` (the part played before a pause): the rest
        is accounted again when it is played. Retracting the pieces of a pause
        latest first restores the ledger as it was before they were sent."""
        interval = (start, start + audio_ms)
        if interval in sentence.played:
            sentence.played.remove(interval)
        if keep_ms > 0:
            sentence.played.append((start, start + keep_ms))
        sentence.audio_ms = max(0.0, sentence.audio_ms - (audio_ms - keep_ms))
        if last and keep_ms < audio_ms:
            sentence.synthesized = False

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


@dataclass(frozen=True)
class _Piece:
    """A piece of agent audio on its way to the transport."""

    pcm: bytes
    sample_rate: int
    message_id: str
    text: str
    #: The last audio of its sentence (for the ledger).
    last: bool
    #: Sending it finishes a sentence counted in `pending_sentences`.
    counted: bool


@dataclass(frozen=True)
class _Sent:
    """A piece given to the transport, and where the ledger put it."""

    piece: _Piece
    start: float
    audio_ms: float
    sentence: _Sentence


class _Drain(SystemFrame):
    """Play the audio a pause took back (queued by `resume()` when the stage
    is not sending)."""


class OutputStage(Stage):
    """Paces agent audio to the transport; see the module docstring.

    `pause()` (the `Playback` of `CallShared`) stops the audio at once: the
    transport's buffer is cleared and the audio sent but not yet played
    (`lead_ms` at most) is taken back, cut at the clock time of the pause,
    ahead of what is still queued; its ledger entries are retracted, so what
    the caller heard is exact at the pause. `resume()` sends it again from
    there: the caller hears a gap, nothing lost or repeated. A barge-in
    (`flush()` + `interrupt()`) ends a pause and drops it all."""

    name = "output"

    def __init__(self, shared: CallShared, transport: Transport, ledger: HeardLedger) -> None:
        super().__init__(shared)
        self.transport = transport
        self.ledger = ledger
        #: What `_sleep_until` waits on; a barge-in or a pause resolves it at once.
        self._wake: asyncio.Future[None] | None = None
        #: Audio to send next, in order (taken-back audio first after a pause).
        self._pending: deque[_Piece] = deque()
        #: The piece being handed to the transport, if any.
        self._in_flight: _Piece | None = None
        #: Pieces sent whose audio may not have played yet at the far end.
        self._sent: deque[_Sent] = deque()
        self.paused = False
        self._paused_at = 0.0
        self._resumed: asyncio.Future[None] | None = None
        self._sending = False
        self.end_reason: str | None = None
        self._gone = False
        shared.playback = self

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, AgentAudioFrame):
            await self._play(frame)
        elif isinstance(frame, _Drain):
            await self._send_pending(self.shared.epoch)
        elif isinstance(frame, EventFrame) and frame.type == "waiting":
            await self._drain()
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
                await self._drain()
            await self.shared.emit_metrics()
            self.end_reason = frame.reason
            await self.shared.emit("hangup", {"reason": frame.reason})

    # --- sending ----------------------------------------------------------------

    async def _play(self, frame: AgentAudioFrame) -> None:
        step = max(2, bytes_for_ms(self.shared.config.chunk_ms, frame.sample_rate))
        pcm = frame.pcm
        chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)] or [b""]
        for index, chunk in enumerate(chunks):
            last = frame.last_of_text and index == len(chunks) - 1
            self._pending.append(
                _Piece(chunk, frame.sample_rate, frame.message_id, frame.text, last, last)
            )
        await self._send_pending(self.shared.epoch)

    async def _drain(self) -> None:
        """Wait until all audio sent or taken back has played (or a barge-in)."""
        shared = self.shared
        epoch = shared.epoch
        while True:
            await self._send_pending(epoch)
            if epoch != shared.epoch:
                return
            await self._sleep_until(shared.play_until)
            if epoch != shared.epoch or not (self.paused or self._pending):
                return

    async def _send_pending(self, epoch: int) -> None:
        """Send `_pending` at real time, holding while paused; returns when it
        is empty and not paused, or on a barge-in (epoch changed)."""
        shared = self.shared
        self._sending = True
        try:
            while True:
                if self.paused:
                    await self._until_resumed()
                    if epoch != shared.epoch:
                        return
                    continue
                if not self._pending:
                    return
                await self._sleep_until(shared.play_until - shared.config.lead_ms)
                if epoch != shared.epoch:
                    return
                if self.paused or not self._pending:
                    continue
                await self._send(self._pending.popleft(), epoch)
                if epoch != shared.epoch:
                    return
        finally:
            self._sending = False

    async def _send(self, piece: _Piece, epoch: int) -> None:
        shared = self.shared
        audio_ms = 1000.0 * duration_s(piece.pcm, piece.sample_rate) / shared.config.speed
        now = shared.clock()
        start = max(shared.play_until, now) if piece.pcm else now
        if piece.pcm and not self._gone:
            self._in_flight = piece
            try:
                await self.transport.play(
                    AgentAudioFrame(
                        pcm=piece.pcm,
                        sample_rate=piece.sample_rate,
                        message_id=piece.message_id,
                        text=piece.text,
                        last_of_text=piece.last,
                        ts_ms=now,
                    )
                )
            except TransportClosed:
                # The caller is gone; the reader ends the call. Keep
                # pacing so the heard-accounting stays true to time.
                self._gone = True
            if epoch != shared.epoch or self._in_flight is not piece:
                # flush() accounted it as not heard, or a pause took it back.
                return
            self._in_flight = None
            shared.metrics.audio_out()
            shared.play_until = start + audio_ms
        sentence = self.ledger.account(
            piece.message_id, piece.text, audio_ms, start=start, last=piece.last
        )
        sent = self._sent
        while sent and sent[0].start + sent[0].audio_ms <= now:
            sent.popleft()
        if audio_ms > 0:
            sent.append(_Sent(piece, start, audio_ms, sentence))
        if piece.counted:
            shared.pending_sentences = max(0, shared.pending_sentences - 1)

    async def _sleep_until(self, t: float) -> None:
        """Wait until clock time `t`; a barge-in or a pause ends the wait at once."""
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

    async def _until_resumed(self) -> None:
        if self._resumed is None or self._resumed.done():
            self._resumed = asyncio.get_running_loop().create_future()
        await self._resumed

    # --- pause and resume (`Playback`) -------------------------------------------

    def holding(self) -> bool:
        return self.paused or bool(self._pending)

    async def pause(self, onset_at: float) -> float:
        shared = self.shared
        now = shared.clock()
        if self.paused:
            return now
        self.paused = True
        self._paused_at = now
        held_ms = self._take_back(now)
        shared.play_until = min(shared.play_until, now)
        if self._wake is not None:
            _resolve(self._wake)
        if not self._gone:
            try:
                await self.transport.clear()
            except Exception as exc:
                log.debug("clear not delivered: %s", exc)
        stopped = shared.clock()
        await shared.emit(
            "barge_in_paused",
            {
                "held_ms": round(held_ms, 1),
                "detect_to_stop_ms": round(stopped - now, 2),
                "onset_to_stop_ms": round(max(0.0, stopped - onset_at), 1),
            },
        )
        return stopped

    async def resume(self, reason: str) -> None:
        if not self.paused:
            return
        self.paused = False
        if self._resumed is not None:
            _resolve(self._resumed)
        if self._pending and not self._sending:
            self.put(_Drain(ts_ms=self.shared.clock()))
        paused_ms = self.shared.clock() - self._paused_at
        await self.shared.emit(
            "barge_in_resumed", {"reason": reason, "paused_ms": round(paused_ms, 1)}
        )

    def _take_back(self, now: float) -> float:
        """Put the audio not played by `now` back at the head of `_pending`
        (a piece playing at `now` cut there) and retract it from the ledger;
        returns how much (ms) was taken back."""
        speed = self.shared.config.speed
        back: list[_Piece] = []
        held_ms = 0.0
        while self._sent:
            rec = self._sent.pop()
            if rec.start + rec.audio_ms <= now:
                break
            keep = max(0.0, now - rec.start)
            self.ledger.retract(rec.sentence, rec.start, rec.audio_ms, keep, rec.piece.last)
            held_ms += rec.audio_ms - keep
            cut = bytes_for_ms(keep * speed, rec.piece.sample_rate) if keep > 0 else 0
            back.append(replace(rec.piece, pcm=rec.piece.pcm[cut:], counted=False))
        self._sent.clear()
        back.reverse()
        if self._in_flight is not None:
            back.append(self._in_flight)
            self._in_flight = None
        self._pending.extendleft(reversed(back))
        return held_ms

    # --- barge-in -----------------------------------------------------------------

    def flush(self) -> int:
        """Drop queued audio, first accounting it (never played) to its
        sentences so the played fraction of each is known."""
        speed = self.shared.config.speed
        pieces = list(self._pending)
        if self._in_flight is not None:
            pieces.insert(0, self._in_flight)
        for piece in pieces:
            self.ledger.account(
                piece.message_id,
                piece.text,
                1000.0 * duration_s(piece.pcm, piece.sample_rate) / speed,
                last=piece.last,
            )
        self._pending.clear()
        self._sent.clear()
        self._in_flight = None
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
        self.paused = False
        for future in (self._wake, self._resumed):
            if future is not None:
                _resolve(future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
