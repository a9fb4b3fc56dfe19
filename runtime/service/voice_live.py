"""What a service voice call adds to the live feed and the record.

The graph's events of a voice call are published and recorded by its
`ObservedSession` like a text call's. The voice pipeline's own events go
through `VoiceCallObserver`, the pipeline's event hook: interim and final
caller transcripts, backchannels, the agent's audio paused at caller speech
and resumed after a backchannel, barge-ins (with what the caller heard of each
cut line as `text`), each turn's metrics and the hang-up are published on the
live feed in the message format the dashboard reads (`live_message`), and each
turn's speech latencies are merged into the turn of the step they measure
(`CallRecorder.turn_metrics`), under the stage names of `LATENCY_STAGES`.

A turn's metrics are matched to its step by order, not by text: the pipeline
starts one graph step per turn it marks started (`step_start_at`), the session
runs them in that order and notes each one's step number as it records it.
Latencies of a step not recorded yet wait until it is (the next event writes
them); a step never recorded (abandoned on a timeout) keeps none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.service.live import live_message

if TYPE_CHECKING:
    from runtime.service.calls import ObservedSession
    from runtime.voice.metrics import CallMetrics, TurnMetrics
    from runtime.voice.pipeline import VoicePipeline

log = logging.getLogger("switchboard.service.voice")

#: Pipeline events put on the live feed (graph events go there already).
LIVE_TYPES = frozenset(
    {
        "transcript",
        "backchannel",
        "barge_in_paused",
        "barge_in_resumed",
        "barge_in",
        "metrics",
        "hangup",
    }
)
#: Pipeline metric -> latency stage as the database and dashboards name it.
STAGES = {
    "stt_final_ms": "stt_ms",
    "graph_step_ms": "graph_ms",
    "llm_first_token_ms": "llm_ttft_ms",
    "tts_first_audio_ms": "tts_ttfa_ms",
    "end_to_end_ms": "e2e_ms",
    "barge_in_stop_ms": "bargein_ms",
}


def turn_latencies(turn: dict[str, Any]) -> dict[str, float]:
    """The latencies (ms) a turn's metrics report, by stage name; stages the
    turn did not have are left out."""
    out: dict[str, float] = {}
    for metric, stage in STAGES.items():
        value = turn.get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[stage] = float(value)
    return out


def latency_summary(latencies: dict[str, float]) -> str:
    """One line for an operator: `stt 210 ms · e2e 780 ms`."""
    return " · ".join(f"{k.removesuffix('_ms')} {v:,.0f} ms" for k, v in latencies.items())


@dataclass
class VoiceCallObserver:
    """The event hook of one service voice call's pipeline (module docstring)."""

    session: ObservedSession
    metrics: CallMetrics
    #: Latencies not written yet, by the position of their turn's step.
    _pending: dict[int, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def for_pipeline(cls, session: ObservedSession, pipeline: VoicePipeline) -> VoiceCallObserver:
        return cls(session, pipeline.metrics)

    async def __call__(self, event: dict[str, Any]) -> None:
        """Publish and record one pipeline event; never raises into the call
        (the pipeline logs what an observer raises)."""
        observer = self.session.observer
        kind = event.get("type")
        if observer is None or kind not in LIVE_TYPES:
            return
        message = dict(event)
        if kind == "barge_in":
            cut = [c for c in message.get("cut") or [] if isinstance(c, dict)]
            message["text"] = " / ".join(str(c.get("heard") or "") for c in cut)
            self._measured(self.metrics.current)
        elif kind == "metrics" and isinstance(event.get("turn"), int):
            turn = self.metrics.turn(event["turn"])
            latencies = turn_latencies(event)
            message["latencies"] = latencies
            message["text"] = latency_summary(latencies)
            position = self._position(turn)
            if position is not None:
                step = self._step(position)
                if step is not None:
                    message["step"] = step
            if turn is not None:
                self._measured(turn)
        await observer.live.publish(live_message(self.session.call_id, observer.agent, message))
        await self._write_ready()

    def _position(self, turn: TurnMetrics | None) -> int | None:
        """Which of the call's graph steps (in order) `turn` started, if any."""
        if turn is None or turn.step_start_at is None:
            return None
        started = [t for t in self.metrics.turns if t.step_start_at is not None]
        return next((i for i, t in enumerate(started) if t is turn), None)

    def _step(self, position: int) -> int | None:
        steps = self.session.steps
        return steps[position] if position < len(steps) else None

    def _measured(self, turn: TurnMetrics) -> None:
        position = self._position(turn)
        latencies = turn_latencies(turn.as_dict())
        if position is not None and latencies:
            self._pending[position] = {**self._pending.get(position, {}), **latencies}

    async def _write_ready(self) -> None:
        observer = self.session.observer
        if observer is None:
            return
        for position in sorted(self._pending):
            step = self._step(position)
            if step is not None:
                latencies = self._pending.pop(position)
                await observer.recorder.turn_metrics(self.session.call_id, step, latencies)
