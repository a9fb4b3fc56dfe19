"""LiveKit rooms as a call transport.

The agent joins a LiveKit room as a participant with the `livekit` rtc SDK (a
Rust WebRTC core driven over FFI): it subscribes to the caller's audio track
and reads it through `rtc.AudioStream` as 16 kHz mono PCM, and publishes its
own voice as a `LocalAudioTrack` fed by an `rtc.AudioSource`. `clear()` (barge-
in) empties the source's queue, so audio not yet sent stops at once. Events
(transcripts, agent text, metrics) go to the room as reliable data packets on
the `switchboard.events` topic. Participant tokens are JWTs minted with
`livekit-api` (`AccessToken` + `VideoGrants`: room_join, room, identity, TTL).

`LiveKitTransport` holds the frame conversion and queueing logic and talks to
the room only through the small `RoomLink` seam; `RtcRoomLink` is the real
link over an `rtc.Room`, and `join_room()` wires them together.

What is not tested end to end here, and why: there is no LiveKit server on the
development or CI machines, and a room join needs one: the SDK's signaling is
protobuf over a WebSocket (`/rtc/v1`) followed by a WebRTC (ICE/DTLS/SRTP)
session, which no small local fake can answer. The tests therefore cover token
minting and verification (the JWT decoded with the secret: grants, identity,
TTL); the real SDK reaching a local signaling endpoint with the minted token in
its `Authorization` header and `join_room()` turning the refused join into a
clear error; `RtcRoomLink` against a real `rtc.Room` object (its event
handlers, fired through the SDK's own emitter) and a real `rtc.AudioSource`
(capture, queue, clear) with only the remote track's audio stream faked; and
the transport's conversion and queueing. Media actually flowing through a
LiveKit server is not exercised.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jwt
from livekit import api, rtc
from livekit.api.access_token import Claims

from runtime.voice.audio import Resampler
from runtime.voice.frames import AgentAudioFrame, UserAudioFrame
from runtime.voice.transport import TransportClosed

log = logging.getLogger(__name__)

DEFAULT_TTL = datetime.timedelta(hours=1)
EVENTS_TOPIC = "switchboard.events"
#: Agent audio is handed to the AudioSource in frames of this many milliseconds.
FRAME_MS = 20
#: Bound on one data packet publish and on leaving the room (both FFI round trips).
ROOM_OP_TIMEOUT_S = 5.0


class LiveKitError(TransportClosed):
    """Joining the room failed, or the room went away."""


# --- settings and tokens -----------------------------------------------------------


@dataclass(frozen=True)
class LiveKitSettings:
    """Where the LiveKit server is and the API key pair that signs tokens."""

    url: str
    api_key: str
    api_secret: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LiveKitSettings:
        """From $LIVEKIT_URL, $LIVEKIT_API_KEY and $LIVEKIT_API_SECRET; a
        `ValueError` names every one that is missing."""
        source = os.environ if env is None else env
        names = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
        missing = [n for n in names if not source.get(n)]
        if missing:
            raise ValueError(f"LiveKit is not configured: set {', '.join(missing)}")
        return cls(*(source[n] for n in names))


def mint_token(
    api_key: str,
    api_secret: str,
    *,
    room: str,
    identity: str,
    name: str = "",
    ttl: datetime.timedelta = DEFAULT_TTL,
    can_publish: bool = True,
    can_subscribe: bool = True,
    metadata: str = "",
    hidden: bool = False,
) -> str:
    """A participant JWT that lets `identity` join `room` (and publish /
    subscribe as asked) until `ttl` from now. Empty names and a non-positive
    TTL raise `ValueError`."""
    if not api_key or not api_secret:
        raise ValueError("a LiveKit token needs an API key and secret")
    if not room.strip():
        raise ValueError("a LiveKit token needs a room name")
    if not identity.strip():
        raise ValueError("a LiveKit token needs a participant identity")
    if ttl <= datetime.timedelta(0):
        raise ValueError(f"a LiveKit token's TTL must be positive, got {ttl}")
    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=can_publish,
        can_subscribe=can_subscribe,
        can_publish_data=True,
        hidden=hidden or None,
    )
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_ttl(ttl)
        .with_grants(grants)
    )
    if name:
        token = token.with_name(name)
    if metadata:
        token = token.with_metadata(metadata)
    return token.to_jwt()


def verify_token(token: str, api_key: str, api_secret: str) -> Claims:
    """The claims of a token signed by this key pair and not expired; a
    `ValueError` says why any other token is refused."""
    try:
        return api.TokenVerifier(api_key, api_secret).verify(token)
    except jwt.PyJWTError as exc:
        raise ValueError(f"invalid LiveKit token: {exc}") from None


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
        """Leave the room; `incoming()` ends. Idempotent."""
        if self.close_reason is not None:
            return
        self.close_reason = reason or "call ended"
        self.caller_left(self.close_reason)
        if self.link is not None:
            try:
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
        self._reader = reader
        self._reading: asyncio.Task[None] | None = None
        self._reading_sid: str | None = None
        room.on("track_subscribed", self._on_track_subscribed)
        room.on("track_unsubscribed", self._on_track_unsubscribed)
        room.on("participant_disconnected", self._on_participant_disconnected)
        room.on("disconnected", self._on_disconnected)

    async def publish(self) -> None:
        """Publish the agent's voice as a microphone track (call after connect)."""
        track = rtc.LocalAudioTrack.create_audio_track("agent-voice", self.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)

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
    try:
        async with asyncio.timeout(connect_timeout_s):
            await room.connect(settings.url, token, rtc.RoomOptions(auto_subscribe=True))
            await link.publish()
    except Exception as exc:  # ConnectError, publish errors, timeout: all end the join
        detail = (getattr(exc, "message", None) or str(exc)).strip() or type(exc).__name__
        if isinstance(exc, TimeoutError):
            detail = f"no answer within {connect_timeout_s:g} s"
        with contextlib.suppress(Exception):
            await link.disconnect()
        raise LiveKitError(
            f"could not join LiveKit room {room_name!r} at {settings.url}: {detail}"
        ) from None
    transport.link = link
    link.subscribe_existing()
    return transport
