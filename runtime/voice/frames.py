"""Frames: everything that moves between voice pipeline stages.

Interruption behaviour is defined by frame class, not by each stage: on
barge-in every queue drops its `DataFrame`s (agent text not yet spoken, audio
not yet played) and keeps its `SystemFrame`s (start/end, speech events,
interruptions, metrics). Each stage owns one input queue and one task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


def now_ms() -> float:
    """Monotonic milliseconds; every frame timestamp uses this clock."""
    return time.monotonic() * 1000.0


@dataclass
class Frame:
    ts_ms: float = field(default_factory=now_ms, kw_only=True)


class SystemFrame(Frame):
    """Survives barge-in: control, speech events, metrics."""


class DataFrame(Frame):
    """Dropped on barge-in: content on its way to the caller."""


# --- system frames ---------------------------------------------------------


@dataclass
class StartFrame(SystemFrame):
    call_id: str = ""
    sample_rate: int = 16000


@dataclass
class EndFrame(SystemFrame):
    """The call is over (hang-up, graph ended); stages finish and exit."""

    reason: str = ""


@dataclass
class UserAudioFrame(SystemFrame):
    """Caller audio: 16-bit little-endian mono PCM. A system frame because
    caller audio must never be dropped by the caller's own barge-in."""

    pcm: bytes = b""
    sample_rate: int = 16000


@dataclass
class SpeechStartedFrame(SystemFrame):
    """VAD: caller speech began (`onset_ms` is when it started in the audio)."""

    onset_ms: float = 0.0


@dataclass
class SpeechStoppedFrame(SystemFrame):
    end_ms: float = 0.0


@dataclass
class TranscriptFrame(SystemFrame):
    text: str = ""
    final: bool = False


@dataclass
class UserTurnFrame(SystemFrame):
    """End of the caller's turn: the text the graph will receive."""

    text: str = ""
    speech_end_ms: float = 0.0


@dataclass
class InterruptionFrame(SystemFrame):
    """Barge-in: stop speaking now, flush everything queued. `stopped_ms` is
    set when the agent's audio already stopped then (paused at the speech's
    onset, before the barge-in was confirmed)."""

    onset_ms: float = 0.0
    detected_ms: float = 0.0
    stopped_ms: float | None = None


@dataclass
class MetricsFrame(SystemFrame):
    name: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class EventFrame(SystemFrame):
    """A call event for the transport (node entered, slot, tool, outcome...)."""

    type: str = ""
    data: dict[str, Any] = field(default_factory=dict)


# --- data frames -----------------------------------------------------------


@dataclass
class AgentTextFrame(DataFrame):
    """A sentence for TTS. `message_id` names the transcript message it belongs
    to, so the part the caller actually heard can be recorded; `agent` the
    agent (graph id) that says it, whose voice speaks it ("" for the call's)."""

    text: str = ""
    message_id: str = ""
    final: bool = True
    agent: str = ""


@dataclass
class AgentAudioFrame(DataFrame):
    """Synthesized agent audio for the transport, with the text it speaks."""

    pcm: bytes = b""
    sample_rate: int = 16000
    message_id: str = ""
    text: str = ""
    last_of_text: bool = False
