"""Per-turn latency records of a voice call, and the clock they are read from.

Every time in the pipeline is milliseconds on one clock, by default the event
loop's (`loop_clock`): it is monotonic, it is what `asyncio.sleep` and timeouts
use, and tests that fake the loop's time (looptime) fake every measurement
consistently. A `TurnMetrics` is opened when a caller turn ends (or for the
opening of the call) and filled in by the stages as its milestones happen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

Clock = Callable[[], float]


def loop_clock() -> float:
    """Milliseconds on the running event loop's clock."""
    return asyncio.get_running_loop().time() * 1000.0


class LoopClock:
    """`loop_clock` for one call, bound to the event loop it is first read on
    (a call lives on one loop): the same readings, without looking the
    running loop up each time (in CPython that costs a `getpid()` system call,
    and the pipeline reads the clock for every frame)."""

    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self) -> float:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.time() * 1000.0


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass
class TurnMetrics:
    """Latencies of one turn, in ms; None where the turn had no such step.

    - `stt_final_ms`: end of caller speech -> final transcript;
    - `graph_step_ms`: caller turn handed to the graph -> the step finished;
    - `llm_first_token_ms`: step start -> first LLM token (llm nodes only);
    - `tts_first_audio_ms`: first sentence given to TTS -> its first audio;
    - `end_to_end_ms`: end of caller speech -> first agent audio sent out;
    - `barge_in_stop_ms`: barge-in detected -> agent audio stopped;
    - `barge_in_onset_stop_ms`: caller speech onset -> agent audio stopped.
    """

    turn: int
    caller_text: str | None = None
    stt_final_ms: float | None = None
    graph_step_ms: float | None = None
    llm_first_token_ms: float | None = None
    tts_first_audio_ms: float | None = None
    end_to_end_ms: float | None = None
    barge_in_stop_ms: float | None = None
    barge_in_onset_stop_ms: float | None = None
    # Milestones (clock ms) the latencies are computed from; not reported.
    speech_end_at: float | None = field(default=None, repr=False)
    step_start_at: float | None = field(default=None, repr=False)
    tts_start_at: float | None = field(default=None, repr=False)
    emitted: bool = field(default=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The reported fields, rounded to 0.1 ms."""
        data = asdict(self)
        out: dict[str, Any] = {"turn": self.turn, "caller_text": self.caller_text}
        for key in (
            "stt_final_ms",
            "graph_step_ms",
            "llm_first_token_ms",
            "tts_first_audio_ms",
            "end_to_end_ms",
            "barge_in_stop_ms",
            "barge_in_onset_stop_ms",
        ):
            out[key] = _ms(data[key])
        return out


@dataclass
class CallMetrics:
    """The turns of one call, oldest first; `current` is the turn in progress."""

    clock: Clock = loop_clock
    turns: list[TurnMetrics] = field(default_factory=list)

    @property
    def current(self) -> TurnMetrics:
        if not self.turns:
            self.turns.append(TurnMetrics(turn=0))
        return self.turns[-1]

    def open_turn(self, caller_text: str | None, speech_end_at: float | None) -> TurnMetrics:
        """Start the record of a new caller turn."""
        turn = TurnMetrics(
            turn=len(self.turns), caller_text=caller_text, speech_end_at=speech_end_at
        )
        self.turns.append(turn)
        return turn

    def step_started(self) -> TurnMetrics:
        """A graph step began for the current turn; returns that turn's record
        (the step may end after the caller has begun another turn)."""
        turn = self.current
        turn.step_start_at = self.clock()
        return turn

    def step_finished(self, turn: TurnMetrics) -> None:
        if turn.step_start_at is not None and turn.graph_step_ms is None:
            turn.graph_step_ms = self.clock() - turn.step_start_at

    def llm_token(self, turn: TurnMetrics) -> None:
        if turn.step_start_at is not None and turn.llm_first_token_ms is None:
            turn.llm_first_token_ms = self.clock() - turn.step_start_at

    def tts_started(self) -> None:
        turn = self.current
        if turn.tts_start_at is None:
            turn.tts_start_at = self.clock()

    def tts_first_audio(self) -> None:
        turn = self.current
        if turn.tts_start_at is not None and turn.tts_first_audio_ms is None:
            turn.tts_first_audio_ms = self.clock() - turn.tts_start_at

    def audio_out(self) -> None:
        """Agent audio went to the transport (first one per turn counts)."""
        turn = self.current
        if turn.speech_end_at is not None and turn.end_to_end_ms is None:
            turn.end_to_end_ms = self.clock() - turn.speech_end_at

    def barge_in(self, *, onset_at: float, detected_at: float, stopped_at: float) -> TurnMetrics:
        """Record a barge-in on the turn whose reply was interrupted."""
        turn = self.current
        turn.barge_in_stop_ms = max(0.0, stopped_at - detected_at)
        turn.barge_in_onset_stop_ms = max(0.0, stopped_at - onset_at)
        return turn

    def turn(self, index: int) -> TurnMetrics | None:
        return self.turns[index] if 0 <= index < len(self.turns) else None

    def summary(self) -> list[dict[str, Any]]:
        return [t.as_dict() for t in self.turns]
