"""A one-room LiveKit SFU for tests: the real `livekit` SDK joins it and media flows.

It speaks LiveKit's signalling protocol as the SDK's single-peer-connection mode
expects it (the SDK's default since `/rtc/v1`): protobuf `SignalRequest` /
`SignalResponse` over a WebSocket at `/rtc/v1`, the participant token checked
with the API secret (HTTP 401 for a bad one), then

- `join`: the room, the joining participant and one other participant, the
  caller, who publishes a microphone `TrackInfo`; `ping_req` gets `pong_resp`;
- the client is always the offerer and one `RTCPeerConnection` (aiortc) answers
  every offer: first the `publisher_offer` inside the join request (recvonly
  audio and video slots plus data channels), then each renegotiation sent as
  `offer`; trickled client candidates (`trickle.candidateInit`, JSON) are
  added to it, and aiortc's own candidates ride in its answer's SDP;
- the caller's audio goes out in the first recvonly audio slot, named for the
  SDK by `mid_to_track_id` in the answer and by the msid stream id
  `participant_sid|track_sid`; an offer without such a slot gets
  `media_sections_requirement{num_audios: 1}` (the client then adds one);
- `add_track` gets `track_published` with a server track sid; the published
  Opus audio is decoded by aiortc and kept with its arrival times;
- data packets (`DataPacket` protobuf) are kept with their channel's label;
  `caller_leaves()` sends the caller's `DISCONNECTED` participant update and
  `close_room()` a `leave` (room deleted) to every client;
- the peer connections stay up until the server stops, so media in flight
  when a client leaves still arrives; `join_delay_s` delays the join answer.

ICE uses host candidates only (no STUN servers), so it needs a non-loopback
interface: libwebrtc and aioice both skip 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import http
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.sdp import SessionDescription as ParsedSdp
from aiortc.sdp import candidate_from_sdp
from livekit.api import TokenVerifier
from livekit.api.access_token import Claims
from livekit.protocol import models
from livekit.protocol import rtc as signal
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.fakes.livekit_signal import decode_join_request

log = logging.getLogger(__name__)

RATE = 48000
FRAME_SAMPLES = RATE // 50  # 20 ms
ROOM_SID = "RM_fakeroom"
AGENT_SID = "PA_agent"
CALLER_SID = "PA_caller"
CALLER_TRACK_SID = "TR_callermic"
AGENT_TRACK_SID = "TR_agentvoice"


class CallerTrack(MediaStreamTrack):
    """The caller's microphone: 20 ms frames of 48 kHz mono PCM at real-time
    pace, the audio given to `say()` first and silence after it."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()
        self._start: float | None = None
        self._pts = 0

    def say(self, pcm: bytes) -> None:
        """Queue 48 kHz mono 16-bit PCM to be spoken next."""
        self._pending += pcm

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + self._pts / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        size = FRAME_SAMPLES * 2
        chunk = bytes(self._pending[:size]).ljust(size, b"\x00")
        del self._pending[:size]
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(chunk)
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += FRAME_SAMPLES
        return frame


@dataclass
class ReceivedAudio:
    """One decoded frame of the agent's published audio."""

    at: float  # time.monotonic() on arrival
    pcm: bytes  # 48 kHz mono 16-bit

    @property
    def rms(self) -> float:
        samples = np.frombuffer(self.pcm, dtype="<i2").astype(np.float64)
        return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


@dataclass
class Session:
    """One client's signalling connection and peer connection."""

    ws: ServerConnection
    claims: Claims
    join: signal.JoinRequest | None
    pc: RTCPeerConnection
    caller_slot: RTCRtpTransceiver | None = None
    requests: list[str] = field(default_factory=list)

    async def send(self, response: signal.SignalResponse) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(response.SerializeToString())


class FakeSfu:
    """`async with FakeSfu(key, secret) as sfu:` then join `sfu.url`.

    `sfu.caller.say(pcm)` speaks into the room; `sfu.agent_audio` holds what
    the agent published, `sfu.data` its data packets, `sfu.sessions` each
    client's signalling (request kinds in order)."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        caller_identity: str = "caller",
        join_delay_s: float = 0.0,
    ) -> None:
        self.verifier = TokenVerifier(api_key, api_secret)
        self.caller_identity = caller_identity
        #: How long the server takes to answer a join (a slow or overloaded node).
        self.join_delay_s = join_delay_s
        self.caller = CallerTrack()
        self.agent_audio: list[ReceivedAudio] = []
        #: (data channel label, packet) for each data packet the agent sent.
        self.data: list[tuple[str, models.DataPacket]] = []
        self.sessions: list[Session] = []
        self.published: list[signal.AddTrackRequest] = []
        #: Set when the agent's published audio track arrives.
        self.agent_track_arrived = asyncio.Event()
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._caller_left = False

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}"

    # -- what a test drives -----------------------------------------------------

    def agent_pcm(self, since: float = 0.0) -> bytes:
        """The agent's audio (48 kHz mono) that arrived at or after `since`."""
        return b"".join(a.pcm for a in self.agent_audio if a.at >= since)

    def last_loud_at(self, threshold: float = 500.0) -> float | None:
        """When the last agent frame louder than `threshold` RMS arrived."""
        loud = [a.at for a in self.agent_audio if a.rms > threshold]
        return loud[-1] if loud else None

    async def caller_leaves(self) -> None:
        """The caller disconnects: every client gets their `DISCONNECTED` update."""
        self._caller_left = True
        info = self._caller_info()
        info.state = models.ParticipantInfo.DISCONNECTED
        update = signal.SignalResponse(update=signal.ParticipantUpdate(participants=[info]))
        for session in self.sessions:
            await session.send(update)

    async def close_room(self) -> None:
        """The room is deleted: every client is told to leave for good."""
        leave = signal.LeaveRequest(
            can_reconnect=False,
            reason=models.DisconnectReason.ROOM_DELETED,
            action=signal.LeaveRequest.DISCONNECT,
        )
        for session in self.sessions:
            await session.send(signal.SignalResponse(leave=leave))

    # -- server plumbing ----------------------------------------------------------

    async def __aenter__(self) -> FakeSfu:
        self._server = await serve(
            self._session, "127.0.0.1", 0, process_request=self._process, max_size=None
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for session in self.sessions:
            await session.pc.close()
        self.caller.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _process(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != "/rtc/v1":
            return connection.respond(http.HTTPStatus.NOT_FOUND, "only /rtc/v1 is served\n")
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            self.verifier.verify(token)
        except Exception as exc:
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, f"invalid token: {exc}\n")
        return None

    def _caller_info(self) -> models.ParticipantInfo:
        track = models.TrackInfo(
            sid=CALLER_TRACK_SID,
            type=models.TrackType.AUDIO,
            name="microphone",
            source=models.TrackSource.MICROPHONE,
            mime_type="audio/opus",
        )
        return models.ParticipantInfo(
            sid=CALLER_SID,
            identity=self.caller_identity,
            name="Caller",
            state=models.ParticipantInfo.ACTIVE,
            tracks=[track],
            is_publisher=True,
            joined_at=int(time.time()),
        )

    def _join_response(self, claims: Claims) -> signal.SignalResponse:
        room = claims.video.room if claims.video and claims.video.room else "room"
        agent = models.ParticipantInfo(
            sid=AGENT_SID,
            identity=claims.identity,
            name=claims.name or "",
            state=models.ParticipantInfo.JOINED,
            permission=models.ParticipantPermission(
                can_subscribe=True, can_publish=True, can_publish_data=True
            ),
            joined_at=int(time.time()),
        )
        join = signal.JoinResponse(
            room=models.Room(sid=ROOM_SID, name=room, creation_time=int(time.time())),
            participant=agent,
            other_participants=[] if self._caller_left else [self._caller_info()],
            server_version="1.9.0",
            server_info=models.ServerInfo(
                edition=models.ServerInfo.Standard, version="1.9.0", protocol=16
            ),
            subscriber_primary=True,
            ping_interval=5,
            ping_timeout=15,
        )
        return signal.SignalResponse(join=join)

    async def _session(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        token = ws.request.headers.get("Authorization", "").removeprefix("Bearer ")
        raw = parse_qs(urlsplit(ws.request.path).query).get("join_request", [""])[0]
        session = Session(
            ws=ws,
            claims=self.verifier.verify(token),
            join=decode_join_request(raw) if raw else None,
            pc=RTCPeerConnection(RTCConfiguration(iceServers=[])),
        )
        self.sessions.append(session)
        session.pc.on("track", self._on_track)
        session.pc.on("datachannel", self._on_datachannel)
        await asyncio.sleep(self.join_delay_s)
        await session.send(self._join_response(session.claims))
        if session.join is not None and session.join.HasField("publisher_offer"):
            # the SDK offers with its join request (receive slots and data channels)
            await self._answer(session, session.join.publisher_offer)
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    await self._handle(session, signal.SignalRequest.FromString(message))
        except ConnectionClosed:
            pass
        # the peer connection stays up until the server stops: media already in
        # flight when the client leaves is still received

    async def _handle(self, session: Session, request: signal.SignalRequest) -> None:
        kind = request.WhichOneof("message")
        session.requests.append(str(kind))
        log.debug("client sent %s", kind)
        if kind == "offer":
            await self._answer(session, request.offer)
        elif kind == "trickle":
            await self._add_candidate(session, request.trickle.candidateInit)
        elif kind == "add_track":
            self.published.append(request.add_track)
            track = models.TrackInfo(
                sid=AGENT_TRACK_SID,
                type=request.add_track.type,
                name=request.add_track.name,
                source=request.add_track.source,
                mime_type="audio/opus",
            )
            response = signal.TrackPublishedResponse(cid=request.add_track.cid, track=track)
            await session.send(signal.SignalResponse(track_published=response))
        elif kind == "ping_req":
            pong = signal.Pong(
                last_ping_timestamp=request.ping_req.timestamp,
                timestamp=int(time.time() * 1000),
            )
            await session.send(signal.SignalResponse(pong_resp=pong))
        elif kind == "ping":
            await session.send(signal.SignalResponse(pong=int(time.time() * 1000)))
        elif kind == "leave":
            await session.ws.close()

    async def _answer(self, session: Session, offer: signal.SessionDescription) -> None:
        pc = session.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type=offer.type))
        mid_to_track: dict[str, str] = {}
        if session.caller_slot is None and not self._caller_left:
            session.caller_slot = self._caller_slot(pc, offer.sdp)
            if session.caller_slot is not None:
                slot = session.caller_slot
                slot.sender.replaceTrack(self.caller)
                slot.direction = "sendonly"
                # the SDK maps a remote track to its publisher through the msid stream id
                slot.sender._stream_id = f"{CALLER_SID}|{CALLER_TRACK_SID}"
                slot.sender._track_id = CALLER_TRACK_SID
        if session.caller_slot is not None and session.caller_slot.mid is not None:
            mid_to_track[session.caller_slot.mid] = CALLER_TRACK_SID
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        local = pc.localDescription
        description = signal.SessionDescription(
            type=local.type, sdp=local.sdp, id=offer.id, mid_to_track_id=mid_to_track
        )
        await session.send(signal.SignalResponse(answer=description))
        if session.caller_slot is None and not self._caller_left:
            need = signal.MediaSectionsRequirement(num_audios=1)
            await session.send(signal.SignalResponse(media_sections_requirement=need))

    @staticmethod
    def _caller_slot(pc: RTCPeerConnection, sdp: str) -> RTCRtpTransceiver | None:
        """The audio transceiver the client offered as recvonly, if any."""
        recvonly = {
            m.rtp.muxId
            for m in ParsedSdp.parse(sdp).media
            if m.kind == "audio" and m.direction == "recvonly"
        }
        for transceiver in pc.getTransceivers():
            if transceiver.mid in recvonly and transceiver.sender.track is None:
                return transceiver
        return None

    @staticmethod
    async def _add_candidate(session: Session, candidate_init: str) -> None:
        init = json.loads(candidate_init)
        line = str(init.get("candidate", "")).removeprefix("candidate:")
        if not line:
            return
        candidate = candidate_from_sdp(line)
        if candidate.protocol.lower() != "udp":
            return  # aioice pairs UDP candidates only
        candidate.sdpMid = init.get("sdpMid")
        candidate.sdpMLineIndex = init.get("sdpMLineIndex")
        await session.pc.addIceCandidate(candidate)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self.agent_track_arrived.set()
            self._spawn(self._read_agent_audio(track))

    async def _read_agent_audio(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                channels = len(frame.layout.channels)
                samples = frame.to_ndarray().reshape(-1, channels)[:, 0]
                if frame.sample_rate != RATE:
                    log.warning("agent audio at %d Hz", frame.sample_rate)
                self.agent_audio.append(
                    ReceivedAudio(time.monotonic(), samples.astype("<i2").tobytes())
                )

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        @channel.on("message")
        def on_message(message: bytes | str) -> None:
            if isinstance(message, bytes):
                self.data.append((channel.label, models.DataPacket.FromString(message)))
