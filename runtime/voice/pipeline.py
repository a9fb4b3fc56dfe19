"""One voice call: a transport, the speech providers and a `CallSession`, wired
into a pipeline of asyncio stages.

    transport in -> VAD -> STT -> turn-taking -> agent -> TTS -> output -> transport out

Each stage owns a queue and a task (`runtime.voice.stages`). Barge-in is
handled here, outside the queues: `_interrupt()` drops every queued
`DataFrame` (agent text and audio not yet played), cancels synthesis, asks a
running LLM generation to stop, has the transport `clear()` its buffer, and
records what the caller heard of each cut agent line; those cuts go to the
graph with the next caller turn (or the hang-up). Every event also goes to the
transport (`Transport.event`) and into `events`, the call's log.

`VoicePipeline(...).run()` returns when the call is over: the graph ended and
its last words played, or the caller hung up (the transport's audio ended or
it raised `TransportClosed`). Nothing waits without a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.session import CallSession
from runtime.voice.frames import EndFrame, InterruptionFrame, StartFrame, UserAudioFrame
from runtime.voice.metrics import CallMetrics, Clock, LoopClock
from runtime.voice.providers.base import VAD, STTProvider, TTSProvider
from runtime.voice.stages.agent import AgentStage
from runtime.voice.stages.base import CallShared, PipelineConfig, Stage, log
from runtime.voice.stages.output import HeardLedger, OutputStage
from runtime.voice.stages.stt import STTStage
from runtime.voice.stages.tts import TTSStage
from runtime.voice.stages.turns import TurnStage
from runtime.voice.stages.vad import VADStage
from runtime.voice.transport import Transport, TransportClosed
from runtime.voice.voices import Voices

#: After the caller hangs up, the stages get this long beyond a graph step's
#: own limit to finish before they are cancelled.
SHUTDOWN_GRACE_S = 5.0

#: Sees every event of the call as it is emitted; a coroutine is awaited.
EventHook = Callable[[dict[str, Any]], Awaitable[None] | None]


@dataclass
class CallReport:
    """How a voice call went: its outcome, every event (with `t_ms` since the
    call began) and the per-turn metrics."""

    call_id: str
    outcome: str | None
    end_reason: str
    events: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


class VoicePipeline:
    """The stages of one call, wired between `transport` and `session`."""

    def __init__(
        self,
        session: CallSession,
        transport: Transport,
        *,
        vad: VAD,
        stt: STTProvider,
        tts: TTSProvider,
        config: PipelineConfig | None = None,
        clock: Clock | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        """`clock` (ms) defaults to the event loop's the call runs on."""
        clock = clock if clock is not None else LoopClock()
        self.session = session
        self.transport = transport
        self.config = config or PipelineConfig.for_graph(session.compiled.root)
        self.clock = clock
        self.on_event = on_event
        self.events: list[dict[str, Any]] = []
        self._t0: float | None = None
        self.shared = CallShared(
            config=self.config,
            emit=self._emit,
            interrupt=self._interrupt,
            clock=clock,
            metrics=CallMetrics(clock=clock),
            sample_rate=transport.sample_rate,
        )
        self.ledger = HeardLedger(self.config.speed)
        self.vad = VADStage(self.shared, vad)
        self.stt = STTStage(self.shared, stt)
        self.turns = TurnStage(self.shared)
        self.agent = AgentStage(self.shared, session, self.ledger)
        self.tts = TTSStage(self.shared, tts, self.ledger, Voices.for_call(tts, session.compiled))
        self.output = OutputStage(self.shared, transport, self.ledger)
        self.stages: list[Stage] = [
            self.vad,
            self.stt,
            self.turns,
            self.agent,
            self.tts,
            self.output,
        ]
        for upstream, downstream in zip(self.stages, self.stages[1:], strict=False):
            upstream.downstream = downstream
        self._close_reason = ""

    @property
    def metrics(self) -> CallMetrics:
        return self.shared.metrics

    async def run(self) -> CallReport:
        """Run the call to its end; the transport is closed on return."""
        self._t0 = self.clock()
        tasks = {
            asyncio.create_task(stage.run(), name=f"voice-{stage.name}"): stage
            for stage in self.stages
        }
        output_task = next(t for t, s in tasks.items() if s is self.output)
        reader = asyncio.create_task(self._read(), name="voice-reader")
        self.vad.put(
            StartFrame(
                call_id=self.session.call_id,
                sample_rate=self.transport.sample_rate,
                ts_ms=self.clock(),
            )
        )
        pending: set[asyncio.Task[None]] = {*tasks, reader}
        deadline: float | None = None
        try:
            while not output_task.done():
                timeout = None if deadline is None else max(0.0, deadline - self.clock()) / 1000
                done, pending = await asyncio.wait(
                    pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    log.warning("call %s: stages hung after hang-up", self.session.call_id)
                    break
                failed = [t for t in done if not t.cancelled() and t.exception() is not None]
                if failed:
                    exc = failed[0].exception()
                    name = failed[0].get_name()
                    log.error("call %s: %s failed", self.session.call_id, name, exc_info=exc)
                    self._close_reason = self._close_reason or "internal error"
                    break
                if reader in done and deadline is None:
                    grace = self.config.step_timeout_s + SHUTDOWN_GRACE_S
                    deadline = self.clock() + grace * 1000
        finally:
            for task in [*tasks, reader]:
                if not task.done():
                    task.cancel()
            for task in [*tasks, reader]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await self.transport.close(self._close_reason or self.output.end_reason or "")
        try:
            outcome = (await self.session.state()).get("outcome")
        except Exception as exc:  # the report must not fail when the store does
            log.warning("call %s: cannot read the final state: %s", self.session.call_id, exc)
            outcome = None
        return CallReport(
            call_id=self.session.call_id,
            outcome=outcome,
            end_reason=self.output.end_reason or self._close_reason or "",
            events=list(self.events),
            metrics=self.metrics.summary(),
        )

    async def _read(self) -> None:
        """Caller audio into the VAD stage until the caller side ends."""
        try:
            async for frame in self.transport.incoming():
                if not isinstance(frame, UserAudioFrame):
                    continue
                frame.ts_ms = self.clock()
                await self.vad.put_paced(frame)
        except TransportClosed as exc:
            self._close_reason = str(exc) or "transport closed"
        self.vad.put(EndFrame(reason="hangup", ts_ms=self.clock()))

    async def _emit(self, name: str, data: dict[str, Any]) -> None:
        entry = {"type": name, **data}
        t0 = self._t0 if self._t0 is not None else self.clock()
        self.events.append({**entry, "t_ms": round(self.clock() - t0, 1)})
        if self.on_event is not None:
            try:
                result = self.on_event(entry)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # an observer must not break the call
                log.exception("voice event hook failed")
        try:
            await self.transport.event(name, data)
        except Exception as exc:  # the caller's side is gone; the call winds down
            log.debug("event %s not delivered: %s", name, exc)

    async def _interrupt(self, frame: InterruptionFrame) -> None:
        """Barge-in: stop the agent's audio now and drop everything queued."""
        shared = self.shared
        shared.epoch += 1
        for stage in reversed(self.stages):
            stage.flush()
        cut_at = self.clock()
        cuts = self.ledger.cut(cut_at)
        shared.add_cuts(cuts)
        shared.pending_sentences = 0
        if shared.step_running:
            shared.llm_stop.set()
        for stage in reversed(self.stages):
            await stage.interrupt(frame)
        try:
            await self.transport.clear()
        except Exception as exc:
            log.debug("clear not delivered: %s", exc)
        stopped = self.clock()
        shared.play_until = min(shared.play_until, stopped)
        if frame.stopped_ms is not None:  # paused at the onset: stopped then
            stopped = frame.stopped_ms
        turn = shared.metrics.barge_in(
            onset_at=frame.onset_ms, detected_at=frame.detected_ms, stopped_at=stopped
        )
        await self._emit(
            "barge_in",
            {
                "cut": [{"message_id": m, "heard": h} for m, h in cuts.items()],
                "detect_to_stop_ms": turn.barge_in_stop_ms,
                "onset_to_stop_ms": turn.barge_in_onset_stop_ms,
            },
        )
