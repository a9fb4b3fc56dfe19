"""Agent stage: caller turns drive the graph; its replies become sentences for TTS.

Each caller turn is one graph step (`CallSession.stream_send`), given the agent
lines a barge-in cut short since the last turn so the checkpointed transcript
keeps only what the caller heard. While the step runs, agent lines go to TTS
sentence by sentence, and LLM `token` events are gathered into sentences that
go out as soon as each is complete, so speech starts before the model has
finished. Call events (node entered, slot, intent, tool, agent text, heard)
go to the transport at once; "waiting" and the end of the call go through TTS
and output so they follow the audio.

A barge-in during a step never cancels it (a transition or tool call is never
left half-done): the step runs to its end, a running LLM generation is asked
to stop through `CallContext.extra["interrupt"]`, nothing more of the step is
spoken, and its lines are reported as heard "" (or as far as they were heard).
A turn whose speech could not be recognised gets the fallback line and the
call goes on (the graph still waits for the caller). A step that raises or
exceeds `step_timeout_s` (tools and models have their own, shorter limits) is
abandoned at its last checkpoint, the fallback line is said and the call ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from nodes.llm import INTERRUPT_KEY
from runtime.session import CallEnded, CallEvent, CallSession
from runtime.voice.frames import (
    AgentTextFrame,
    EndFrame,
    EventFrame,
    Frame,
    InterruptionFrame,
    StartFrame,
    UserTurnFrame,
)
from runtime.voice.metrics import TurnMetrics
from runtime.voice.sentences import SentenceChunker, split_sentences
from runtime.voice.stages.base import CallShared, Stage, log
from runtime.voice.stages.output import HeardLedger


class AgentStage(Stage):
    name = "agent"

    def __init__(self, shared: CallShared, session: CallSession, ledger: HeardLedger) -> None:
        super().__init__(shared)
        self.ledger = ledger
        self.session = session
        # The call's own context, carrying the barge-in event for llm nodes.
        session.context = dataclasses.replace(
            session.context, extra={**session.context.extra, INTERRUPT_KEY: shared.llm_stop}
        )
        self._chunkers: dict[str, SentenceChunker] = {}
        self._fallbacks = 0
        #: The agent speaking now (its voice says the fallback line too).
        self._agent = ""
        self.outcome: str | None = None

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, EndFrame):
            await self._hangup()
            await self.push(frame)
        elif self.shared.ended:
            return  # the call is over: later caller turns go nowhere
        elif isinstance(frame, StartFrame):
            await self.push(frame)
            if not await self.session.started():
                await self._step(self.session.stream_start())
            else:
                await self.push(EventFrame(type="waiting", ts_ms=self.shared.clock()))
        elif isinstance(frame, UserTurnFrame):
            cuts = self.shared.take_cuts()
            await self._step(self.session.stream_send(frame.text, interrupted=cuts or None))
        elif isinstance(frame, EventFrame) and frame.type == "stt_error":
            await self._fallback("stt", str(frame.data.get("error", "")))
            await self.push(EventFrame(type="waiting", ts_ms=self.shared.clock()))
        else:
            await self.push(frame)

    async def interrupt(self, frame: InterruptionFrame) -> None:
        for chunker in self._chunkers.values():
            chunker.reset()

    # --- one graph step -----------------------------------------------------------

    async def _step(self, events: AsyncIterator[CallEvent]) -> None:
        shared = self.shared
        epoch = shared.epoch
        shared.llm_stop.clear()
        shared.step_running = True
        turn = shared.metrics.step_started()
        self._chunkers.clear()
        waiting: dict[str, Any] | None = None
        failure: str | None = None
        try:
            async with asyncio.timeout(shared.config.step_timeout_s):
                async for event in events:
                    if event.type == "waiting":
                        waiting = dict(event.data)
                    else:
                        await self._on_event(event, epoch, turn)
        except TimeoutError:
            failure = f"the graph step took longer than {shared.config.step_timeout_s:g} s"
        except CallEnded:
            self.outcome = self.outcome or "ended"
        except Exception as exc:  # the call goes on with the fallback line
            log.exception("graph step failed")
            failure = f"the graph step failed: {type(exc).__name__}: {exc}"
        finally:
            shared.step_running = False
            shared.metrics.step_finished(turn)
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
        for message_id, chunker in self._chunkers.items():
            # Streamed text that never became a message (the model failed
            # mid-reply): not spoken further, and nothing to record.
            chunker.reset()
            self.ledger.complete(message_id)
        self._chunkers.clear()
        if failure is not None:
            # The graph is left at its last checkpoint, possibly between two
            # nodes: no caller turn can resume it, so the call ends here.
            await self._fallback("graph", failure)
            self.outcome = self.outcome or "failed"
        if self.outcome is not None:
            shared.ended = True
            await self.push(EndFrame(reason=self.outcome, ts_ms=shared.clock()))
        elif waiting is not None:
            data = {**waiting, "turn": turn.turn, "epoch": epoch}
            await self.push(EventFrame(type="waiting", data=data, ts_ms=shared.clock()))

    async def _on_event(self, event: CallEvent, epoch: int, turn: TurnMetrics) -> None:
        data = event.data
        interrupted = epoch != self.shared.epoch
        speaker = data.get("to") if event.type == "handoff" else data.get("agent")
        if isinstance(speaker, str) and speaker:
            self._agent = speaker
        if event.type == "token":
            self.shared.metrics.llm_token(turn)
            if interrupted:
                return
            message_id = str(data.get("message_id") or f"stream:{data.get('node', '')}")
            chunker = self._chunkers.setdefault(message_id, SentenceChunker())
            for sentence in chunker.push(str(data.get("text", ""))):
                await self._say(message_id, sentence, epoch, self._agent)
            return
        if event.type == "agent":
            await self.shared.emit("agent", dict(data))
            message_id = str(data.get("message_id") or "")
            if interrupted:
                self.shared.add_cuts({message_id: ""})
                return
            await self._speak_message(message_id, str(data.get("text", "")), data, epoch)
            return
        if event.type == "outcome":
            self.outcome = str(data.get("outcome"))
        await self.shared.emit(event.type, dict(data))

    async def _speak_message(
        self, message_id: str, text: str, data: dict[str, Any], epoch: int
    ) -> None:
        chunker = self._chunkers.pop(message_id, None)
        if chunker is None:
            provisional = f"stream:{data.get('node', '')}"
            chunker = self._chunkers.pop(provisional, None)
            if chunker is not None:
                self.ledger.rename(provisional, message_id)
        sentences = chunker.flush() if chunker is not None else split_sentences(text)
        for sentence in sentences:
            await self._say(message_id, sentence, epoch, self._agent)
        self.ledger.complete(message_id)

    async def _say(self, message_id: str, sentence: str, epoch: int, agent: str = "") -> None:
        if epoch != self.shared.epoch:
            return
        self.ledger.add_sentence(message_id, sentence)
        self.shared.pending_sentences += 1
        await self.push(
            AgentTextFrame(
                text=sentence, message_id=message_id, agent=agent, ts_ms=self.shared.clock()
            )
        )

    async def _fallback(self, stage: str, error: str) -> None:
        """Say the graph's fallback line after a failure."""
        await self.shared.emit("error", {"stage": stage, "error": error})
        self._fallbacks += 1
        message_id = f"fallback:{self._fallbacks}"
        line = self.shared.config.fallback_line
        await self.shared.emit("agent", {"message_id": message_id, "text": line, "fallback": True})
        for sentence in split_sentences(line):
            await self._say(message_id, sentence, self.shared.epoch, self._agent)
        self.ledger.complete(message_id)

    # --- the caller hung up -------------------------------------------------------

    async def _hangup(self) -> None:
        shared = self.shared
        if shared.ended:
            return
        shared.ended = True
        shared.add_cuts(self.ledger.cut(shared.clock()))
        cuts = shared.take_cuts()
        try:
            async with asyncio.timeout(shared.config.step_timeout_s):
                events = await self.session.hangup(interrupted=cuts or None)
        except Exception as exc:  # the call is over either way
            log.warning("recording the hang-up failed: %s", exc)
            return
        for event in events:
            if event.type == "outcome":
                self.outcome = str(event.data.get("outcome"))
            await shared.emit(event.type, dict(event.data))
