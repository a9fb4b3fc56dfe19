"""Transport interface: where caller audio comes from and agent audio goes.

The pipeline's output stage paces agent audio at real time (a small lead of
buffered audio at most), so what a transport has been given is, within that
lead, what the caller has heard; `clear()` discards the far end's buffer on
barge-in (Twilio `clear`, a WebSocket `clear` event, a LiveKit track flush).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from runtime.voice.frames import AgentAudioFrame, MetricsFrame, UserAudioFrame


class TransportClosed(Exception):
    """The caller's side went away, or sent something that ends the call."""


class Transport(Protocol):
    name: str
    #: Sample rate of the PCM this transport yields and accepts.
    sample_rate: int

    def incoming(self) -> AsyncIterator[UserAudioFrame]:
        """Caller audio until the caller hangs up (then the iterator ends)."""
        ...

    async def play(self, frame: AgentAudioFrame) -> None:
        """Send agent audio to the caller now."""
        ...

    async def clear(self) -> None:
        """Drop agent audio still buffered at the caller's side."""
        ...

    async def event(self, name: str, data: dict[str, object]) -> None:
        """A JSON event for the caller's side (transcripts, agent text, node,
        barge-in, metrics, hang-up); transports without a data channel drop it."""
        ...

    async def close(self, reason: str = "") -> None: ...


__all__ = ["MetricsFrame", "Transport", "TransportClosed"]
