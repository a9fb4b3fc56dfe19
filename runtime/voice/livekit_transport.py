"""LiveKit rooms as a call transport.

The agent joins a LiveKit room as a participant with the `livekit` rtc SDK (a
Rust WebRTC core driven over FFI): it subscribes to the caller's audio track
and reads it through `rtc.AudioStream` as 16 kHz mono PCM, and publishes its
own voice as a `LocalAudioTrack` fed by an `rtc.AudioSource`. `clear()` (barge-
in) empties the source's queue, so audio not yet sent stops at once.
`join_room()` returns once the agent's track sends RTP (audio captured before
that is lost), and `close()` lets queued audio reach the wire first. Events
(transcripts, agent text, metrics) go to the room as reliable data packets on
the `switchboard.events` topic. The agent's token is minted by
`runtime.voice.livekit_tokens`.

`LiveKitTransport` holds the frame conversion and queueing logic and talks to
the room only through the small `RoomLink` seam; `RtcRoomLink` is the real
link over an `rtc.Room`, and `join_room()` wires them together.

How it is tested: `tests/runtime/voice/test_livekit_media.py` runs the real
SDK (libwebrtc over FFI, default single-peer-connection mode) against a local
SFU fake (`tests/fakes/livekit_sfu.py`) that speaks LiveKit's signalling
protobuf on `/rtc/v1` and answers WebRTC with aiortc: join with the minted
token, the caller's Opus audio arriving as 16 kHz PCM through `incoming()`,
`play()` reaching the SFU as Opus, `clear()` stopping it, events as reliable
data packets, the caller leaving ending `incoming()`, a late join being left,
and a whole call through the voice pipeline. `test_livekit.py` covers tokens,
refused and unanswered joins, the link's events, conversion and queueing.

What that does not show: a real LiveKit server (none can be installed here).
The fake follows the protocol as the SDK uses it (join request with the
publisher offer, the answer's `mid_to_track_id`, `add_track` /
`track_published`, trickle, ping) but implements no routing, no
subscription permissions, reconnection or region handling, and only the
single-peer-connection mode; ICE uses host candidates on one machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from livekit import rtc

from runtime.voice.audio import Resampler
from runtime.voice.frames import AgentAudioFrame, UserAudioFrame
from runtime.voice.livekit_tokens import DEFAULT_TTL, LiveKitSettings, mint_token
from runtime.voice.transport import TransportClosed

log = logging.getLogger(__name__)

EVENTS_TOPIC = "switchboard.events"
#: Agent audio is handed to the AudioSource in frames of this many milliseconds.
FRAME_MS = 20
#: Bound on one data packet publish and on leaving the room (both FFI round trips).
ROOM_OP_TIMEOUT_S = 5.0
#: After the audio source's queue is empty, its last frames still pass libwebrtc's
#: encoder and pacer before they are on the wire (~100 ms measured locally).
PLAYOUT_GRACE_S = 0.2
#: How often `join_room()` looks at the published track's send statistics.
SEND_POLL_S = 0.02


class LiveKitError(TransportClosed):
    """Joining the room failed, or the room went away."""


# --- the transport -----------------------------------------------------------------


class RoomLink(Protocol):
    """What the transport needs from a joined room."""

    async def capture(self, pcm: bytes, sample_rate: int) -> None:
        """Queue agent audio for the published track (waits while the queue is full)."""
        ...

    def clear(self) -> None:
        """Drop agent audio queued but not yet sent."""
        ...

    def queued_ms(self) -> float: ...

    async def publish_data(self, payload: bytes, topic: str) -> None: ...

    async def playout(self) -> None:
        """Wait (bounded) until the agent audio already queued is on the wire."""
        ...

    async def disconnect(self) -> None: ...


class LiveKitTransport:
    """The pipeline's `Transport` over a LiveKit room (16 kHz PCM both ways).

    Caller audio arrives through `feed_caller_audio()` (called by the link) and
    is queued for `incoming()`; the queue is unbounded because caller audio is
    never dropped. Agent audio is resampled to `sample_rate` if needed and
    handed to the link in `FRAME_MS` frames.
    """

    name = "livekit"

    def __init__(self, link: RoomLink | None = None, *, sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate
        self.link = link
        #: Why the transport closed (None while open).
        self.close_reason: str | None = None
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._in_rs: Resampler | None = None
        self._out_rs: Resampler | None = None
        self._out = bytearray()
        self._ended = False
        #: Set once the caller's audio track is subscribed (or the caller is gone).
        self.caller_joined = asyncio.Event()

    # -- caller side ------------------------------------------------------------

    def feed_caller_audio(self, pcm: bytes, sample_rate: int) -> None:
        """Queue one chunk of caller audio (any rate; resampled to `sample_rate`)."""
        if self._ended:
            return
        if sample_rate != self.sample_rate:
            if self._in_rs is None or self._in_rs.from_rate != sample_rate:
                self._in_rs = Resampler(sample_rate, self.sample_rate)
            pcm = self._in_rs.process(pcm)
        if pcm:
            self._inbox.put_nowait(pcm)

    def caller_left(self, reason: str) -> None:
        """The caller is gone: `incoming()` ends after the audio already queued."""
        if not self._ended:
            self._ended = True
            self.caller_joined.set()  # nobody waits for a caller who is gone
            log.info("LiveKit caller side ended: %s", reason)
            self._inbox.put_nowait(None)

    async def incoming(self) -> AsyncIterator[UserAudioFrame]:
        """Caller audio until the caller leaves or the transport closes."""
        while (pcm := await self._inbox.get()) is not None:
            yield UserAudioFrame(pcm=pcm, sample_rate=self.sample_rate)

    # -- agent side -------------------------------------------------------------

    def _require_link(self) -> RoomLink:
        if self.close_reason is not None:
            raise TransportClosed(self.close_reason)
        if self.link is None:
            raise TransportClosed("not connected to a LiveKit room")
        return self.link

    async def play(self, frame: AgentAudioFrame) -> None:
        """Send agent audio in `FRAME_MS` frames; the last frame of a sentence
        flushes the resampler and any partial frame."""
        if len(frame.pcm) % 2:
            raise ValueError(f"agent audio must be 16-bit PCM: {len(frame.pcm)} bytes is odd")
        link = self._require_link()
        pcm = frame.pcm
        if frame.sample_rate != self.sample_rate:
            if self._out_rs is None or self._out_rs.from_rate != frame.sample_rate:
                self._out += self._out_rs.flush() if self._out_rs else b""
                self._out_rs = Resampler(frame.sample_rate, self.sample_rate)
            pcm = self._out_rs.process(pcm)
            if frame.last_of_text:
                pcm += self._out_rs.flush()
        self._out += pcm
        step = self.sample_rate * FRAME_MS // 1000 * 2
        while len(self._out) >= step or (frame.last_of_text and self._out):
            chunk = bytes(self._out[:step])
            del self._out[:step]
            await link.capture(chunk, self.sample_rate)

    async def clear(self) -> None:
        """Drop agent audio held here and queued in the room's audio source."""
        self._out.clear()
        if self._out_rs is not None:
            self._out_rs.flush()  # discards the filter's tail, restarts the stream
        if self.link is not None and self.close_reason is None:
            self.link.clear()

    def queued_ms(self) -> float:
        """Agent audio handed to the room but not yet sent to the caller."""
        return 0.0 if self.link is None else self.link.queued_ms()

    async def event(self, name: str, data: dict[str, object]) -> None:
        """Publish `{"type": name, **data}` as a reliable data packet; one the
        room does not take within `ROOM_OP_TIMEOUT_S` is dropped with a warning."""
        link = self._require_link()
        payload = json.dumps({"type": name, **data}, default=str).encode("utf-8")
        try:
            async with asyncio.timeout(ROOM_OP_TIMEOUT_S):
                await link.publish_data(payload, EVENTS_TOPIC)
        except TimeoutError:
            log.warning("LiveKit room did not take the %r event in time; dropped", name)

    async def close(self, reason: str = "") -> None:
        """Leave the room; `incoming()` ends. While the caller is still in the
        room the agent audio already queued (a goodbye) is sent first. Idempotent."""
        if self.close_reason is not None:
            return
        caller_present = not self._ended
        self.close_reason = reason or "call ended"
        self.caller_left(self.close_reason)
        if self.link is not None:
            try:
                if caller_present:
                    await self.link.playout()
                await self.link.disconnect()
            except Exception as exc:  # the room may already be gone
                log.debug("LiveKit disconnect: %s", exc)


# --- the real room link --------------------------------------------------------------


#: Reads one subscribed audio track as (PCM, sample rate) chunks.
AudioReader = Callable[[rtc.Track, int], AsyncIterator[tuple[bytes, int]]]


async def read_audio_stream(track: rtc.Track, sample_rate: int) -> AsyncIterator[tuple[bytes, int]]:
    """The SDK's `AudioStream` of `track` as mono PCM chunks at `sample_rate`."""
    stream = rtc.AudioStream.from_track(track=track, sample_rate=sample_rate, num_channels=1)
    try:
        async for event in stream:
            frame = event.frame
            yield frame.data.tobytes(), frame.sample_rate
    finally:
        await stream.aclose()


class RtcRoomLink:
    """A `RoomLink` over an `rtc.Room`: the caller's audio track feeds the
    transport, the agent's voice goes through an `rtc.AudioSource`."""

    def __init__(
        self,
        room: rtc.Room,
        transport: LiveKitTransport,
        *,
        caller_identity: str | None = None,
        queue_ms: int = 1000,
        reader: AudioReader = read_audio_stream,
    ) -> None:
        self.room = room
        self.transport = transport
        #: The participant whose audio is the caller's (the first one heard if None).
        self.caller_identity = caller_identity
        self.source = rtc.AudioSource(transport.sample_rate, 1, queue_size_ms=queue_ms)
        self.track: rtc.LocalAudioTrack | None = None
        self._reader = reader
        self._reading: asyncio.Task[None] | None = None
        self._reading_sid: str | None = None
        room.on("track_subscribed", self._on_track_subscribed)
        room.on("track_unsubscribed", self._on_track_unsubscribed)
        room.on("participant_disconnected", self._on_participant_disconnected)
        room.on("disconnected", self._on_disconnected)

    async def publish(self) -> None:
        """Publish the agent's voice as a microphone track (call after connect)."""
        self.track = rtc.LocalAudioTrack.create_audio_track("agent-voice", self.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(self.track, options)

    async def sending(self) -> None:
        """Return once the published track has sent RTP (the source sends
        silence while idle). A track counts as published when the server has
        answered `add_track`, before the offer that carries it is negotiated:
        audio captured in between is dropped, so the caller would miss the
        start of the greeting."""
        assert self.track is not None, "publish() first"
        while True:
            for stats in await self.track.get_stats():
                if (
                    stats.WhichOneof("stats") == "outbound_rtp"
                    and stats.outbound_rtp.sent.packets_sent
                ):
                    return
            await asyncio.sleep(SEND_POLL_S)

    def subscribe_existing(self) -> None:
        """Start reading a caller audio track subscribed before the handlers ran."""
        for participant in self.room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None and publication.subscribed:
                    self._on_track_subscribed(publication.track, publication, participant)

    def _is_caller(self, participant: rtc.RemoteParticipant) -> bool:
        return self.caller_identity is None or participant.identity == self.caller_identity

    def _on_track_subscribed(
        self, track: rtc.Track, publication: Any, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO or not self._is_caller(participant):
            return
        if self._reading is not None and not self._reading.done():
            return  # one caller track at a time
        self.caller_identity = participant.identity
        self._reading_sid = track.sid
        self._reading = asyncio.ensure_future(self._read(track))
        self.transport.caller_joined.set()

    async def _read(self, track: rtc.Track) -> None:
        try:
            async for pcm, rate in self._reader(track, self.transport.sample_rate):
                self.transport.feed_caller_audio(pcm, rate)
        except Exception:
            log.exception("reading the caller's LiveKit audio failed")
            self.transport.caller_left("caller audio stream failed")

    def _on_track_unsubscribed(
        self, track: rtc.Track, publication: Any, participant: rtc.RemoteParticipant
    ) -> None:
        if track.sid == self._reading_sid and self._reading is not None:
            self._reading.cancel()
            self._reading, self._reading_sid = None, None

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self.caller_identity:
            self.transport.caller_left(f"caller {participant.identity!r} left the room")

    def _on_disconnected(self, reason: Any = None) -> None:
        self.transport.caller_left(f"disconnected from the room ({reason})")

    async def capture(self, pcm: bytes, sample_rate: int) -> None:
        samples = len(pcm) // 2
        await self.source.capture_frame(rtc.AudioFrame(pcm, sample_rate, 1, samples))

    def clear(self) -> None:
        self.source.clear_queue()

    def queued_ms(self) -> float:
        return self.source.queued_duration * 1000.0

    async def publish_data(self, payload: bytes, topic: str) -> None:
        await self.room.local_participant.publish_data(payload, reliable=True, topic=topic)

    async def playout(self) -> None:
        queued_s = self.source.queued_duration
        try:
            async with asyncio.timeout(queued_s + 1.0):
                await self.source.wait_for_playout()
        except TimeoutError:
            log.warning("the agent's audio did not play out within %.1f s", queued_s + 1.0)
        await asyncio.sleep(PLAYOUT_GRACE_S)

    async def disconnect(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reading
        try:
            async with asyncio.timeout(ROOM_OP_TIMEOUT_S):
                await self.room.disconnect()
        except TimeoutError:
            log.warning("leaving the LiveKit room timed out after %g s", ROOM_OP_TIMEOUT_S)
        finally:
            await self.source.aclose()


#: Joins given up on while the SDK's connect was still running (see `_abandon`).
_abandoned: set[asyncio.Task[None]] = set()


def _abandon(connecting: asyncio.Future[None], link: RtcRoomLink) -> None:
    """Let a given-up connect finish, then leave, in the background. The SDK
    cannot cancel a connect in flight: cancelling the await would let it
    complete unobserved, leaving the agent in the room with nothing driving it."""

    async def leave_when_done() -> None:
        with contextlib.suppress(Exception):
            await connecting
        with contextlib.suppress(Exception):
            await link.disconnect()

    task = asyncio.ensure_future(leave_when_done())
    _abandoned.add(task)
    task.add_done_callback(_abandoned.discard)


async def abandoned_joins_settled() -> None:
    """Return once every join given up on has finished connecting or failing
    and left its room (for shutdown and tests)."""
    while _abandoned:
        await asyncio.gather(*_abandoned, return_exceptions=True)


async def join_room(
    settings: LiveKitSettings,
    room_name: str,
    *,
    identity: str = "switchboard-agent",
    display_name: str = "Switchboard agent",
    caller_identity: str | None = None,
    sample_rate: int = 16000,
    connect_timeout_s: float = 15.0,
    ttl: datetime.timedelta = DEFAULT_TTL,
) -> LiveKitTransport:
    """Join `room_name` as the agent, publish its voice track and return the
    transport; the caller's audio flows once their track is subscribed. A
    refused or timed-out join raises `LiveKitError` naming the room and URL."""
    token = mint_token(
        settings.api_key,
        settings.api_secret,
        room=room_name,
        identity=identity,
        name=display_name,
        ttl=ttl,
    )
    room = rtc.Room()
    transport = LiveKitTransport(sample_rate=sample_rate)
    link = RtcRoomLink(room, transport, caller_identity=caller_identity)
    # Each of the SDK's signalling attempts is bounded too: it retries on its own.
    options = rtc.RoomOptions(auto_subscribe=True, connect_timeout=connect_timeout_s)
    connecting = asyncio.ensure_future(room.connect(settings.url, token, options))
    try:
        async with asyncio.timeout(connect_timeout_s):
            await asyncio.shield(connecting)
            await link.publish()
            await link.sending()
    except asyncio.CancelledError:  # the call went away while joining: leave behind it
        _abandon(connecting, link)
        raise
    except Exception as exc:  # ConnectError, publish errors, timeout: all end the join
        detail = (getattr(exc, "message", None) or str(exc)).strip() or type(exc).__name__
        if isinstance(exc, TimeoutError):
            detail = f"no answer within {connect_timeout_s:g} s"
        if connecting.done():
            with contextlib.suppress(Exception):
                await link.disconnect()
        else:
            _abandon(connecting, link)
        raise LiveKitError(
            f"could not join LiveKit room {room_name!r} at {settings.url}: {detail}"
        ) from None
    transport.link = link
    link.subscribe_existing()
    return transport
