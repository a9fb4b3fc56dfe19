"""Twilio Media Streams: the call transport and the FastAPI routes that connect a
phone number to it.

A call arrives as `POST /twilio/voice` (Twilio's voice webhook); the answer is
TwiML `<Connect><Stream url="wss://.../twilio/stream/{graph}">`, which opens a
bidirectional Media Stream: Twilio sends JSON text messages `connected`,
`start`, `media` (base64 G.711 mu-law, 8 kHz mono, 20 ms per message), `mark`,
`dtmf` and `stop`; we send `media`, `mark` and `clear`.

`TwilioTransport` turns that into the pipeline's `Transport`: caller audio is
decoded to 16-bit PCM and resampled 8 -> 16 kHz; agent audio is resampled to
8 kHz, mu-law encoded and sent in 20 ms messages. After the last audio of each
agent sentence it sends a `mark`; Twilio echoes a mark when the audio before it
has been played, so `played_marks()` is what the caller has heard. `clear()`
makes Twilio drop its buffered audio; Twilio then echoes the marks still queued,
and those are recorded as cleared, not played.

A malformed message (not JSON, unknown event, bad base64, missing fields, over
the size limit, a binary frame; parsed in `twilio_messages`) closes that stream
with a WebSocket close code and a reason; every other call keeps running.

When `TWILIO_AUTH_TOKEN` is set, both the webhook and the stream's WebSocket
handshake must carry a valid `X-Twilio-Signature` (HMAC-SHA1 of the public URL,
checked by the `twilio` package's `RequestValidator`).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, HTTPException, Request, WebSocket
from fastapi.responses import Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from runtime.voice.audio import Resampler, ulaw_decode, ulaw_encode
from runtime.voice.frames import AgentAudioFrame, UserAudioFrame
from runtime.voice.transport import TransportClosed
from runtime.voice.twilio_messages import (
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_UNSUPPORTED,
    DEFAULT_MAX_MESSAGE_BYTES,
    ConnectedMessage,
    DtmfMessage,
    InboundMessage,
    MarkMessage,
    MediaMessage,
    StartMessage,
    StopMessage,
    TwilioProtocolError,
    decode_payload,
    parse_message,
)

log = logging.getLogger(__name__)

TWILIO_RATE = 8000
#: 20 ms of 8 kHz mu-law: one byte per sample.
FRAME_BYTES = 160
#: mu-law code of a zero sample; pads the last frame of a sentence.
MULAW_SILENCE = b"\xff"
SIGNATURE_HEADER = "X-Twilio-Signature"


# --- the transport -----------------------------------------------------------


@dataclass(frozen=True)
class StreamStart:
    """What the `start` message said about the stream."""

    stream_sid: str
    call_sid: str = ""
    account_sid: str = ""
    tracks: tuple[str, ...] = ("inbound",)
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Mark:
    """A mark sent after the last audio of one agent sentence."""

    name: str
    message_id: str
    text: str
    #: Milliseconds of audio sent for this sentence (since the previous mark).
    audio_ms: float


class MessageSocket(Protocol):
    """The part of Starlette's `WebSocket` the transport uses (a seam for tests)."""

    async def receive(self) -> Mapping[str, Any]: ...

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


def _close_reason(reason: str) -> str:
    """A close reason must fit in 123 UTF-8 bytes."""
    data = reason.encode("utf-8")[:123]
    return data.decode("utf-8", errors="ignore")


class TwilioTransport:
    """One Media Stream as a pipeline `Transport` (16 kHz PCM both ways)."""

    name = "twilio"

    def __init__(
        self,
        socket: MessageSocket,
        *,
        sample_rate: int = 16000,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        on_mark_played: Callable[[Mark], None] | None = None,
        on_dtmf: Callable[[str], None] | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.max_message_bytes = max_message_bytes
        self.on_mark_played = on_mark_played
        self.on_dtmf = on_dtmf
        self.start: StreamStart | None = None
        self.dtmf: list[str] = []
        #: Why the stream was closed (None while open).
        self.close_reason: str | None = None
        self.close_code: int | None = None
        self._socket = socket
        self._send_lock = asyncio.Lock()
        self._in_rs = Resampler(TWILIO_RATE, sample_rate)
        self._out_rs: Resampler | None = None
        self._out = bytearray()
        self._sentence_bytes = 0
        self._mark_seq = itertools.count(1)
        self._pending: dict[str, Mark] = {}
        self._cleared: list[Mark] = []
        self._cleared_unechoed: set[str] = set()
        self._played: list[Mark] = []
        self._stopped = False

    # -- marks ----------------------------------------------------------------

    def played_marks(self) -> list[Mark]:
        """Marks Twilio echoed back without a `clear` in between, in play order:
        the sentences the caller has heard to the end."""
        return list(self._played)

    def pending_marks(self) -> list[Mark]:
        """Marks sent whose audio Twilio has not finished playing yet."""
        return list(self._pending.values())

    def cleared_marks(self) -> list[Mark]:
        """Marks whose audio a `clear()` dropped before it was played."""
        return list(self._cleared)

    @property
    def stream_sid(self) -> str:
        if self.start is None:
            raise TransportClosed("the Media Stream has not started")
        return self.start.stream_sid

    # -- inbound ----------------------------------------------------------------

    async def _next_message(self) -> InboundMessage:
        """The next parsed message; `TransportClosed` when the peer went away."""
        try:
            message = await self._socket.receive()
        except RuntimeError as exc:  # Starlette: receive after disconnect
            raise TransportClosed("the Media Stream socket is closed") from exc
        if message.get("type") == "websocket.disconnect":
            self._mark_closed("caller hung up", int(message.get("code") or CLOSE_NORMAL))
            raise TransportClosed("caller hung up")
        text = message.get("text")
        if text is None:
            raise TwilioProtocolError(
                "binary frames are not part of Media Streams", CLOSE_UNSUPPORTED
            )
        return parse_message(text, max_bytes=self.max_message_bytes)

    async def _fail(self, error: TwilioProtocolError) -> TwilioProtocolError:
        log.warning("closing Twilio stream %s: %s", self._sid_or_none(), error.reason)
        await self.close(error.reason, code=error.code)
        return error

    async def receive_start(self, timeout_s: float = 10.0) -> StreamStart:
        """Read `connected` and `start`; return the stream's metadata. A stream
        that does not start within `timeout_s`, or starts with anything other
        than mu-law 8 kHz mono, is closed (`TransportClosed`)."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    msg = await self._next_message()
                    if isinstance(msg, ConnectedMessage):
                        continue
                    if isinstance(msg, StopMessage):
                        self._stopped = True
                        await self.close("stream stopped before it started")
                        raise TransportClosed("stream stopped before it started")
                    if not isinstance(msg, StartMessage):
                        raise TwilioProtocolError(f"{msg.event!r} before 'start'", CLOSE_POLICY)
                    fmt = msg.start.mediaFormat
                    if (fmt.encoding, fmt.sampleRate, fmt.channels) != ("audio/x-mulaw", 8000, 1):
                        raise TwilioProtocolError(
                            f"unsupported media format {fmt.encoding} {fmt.sampleRate} Hz "
                            f"{fmt.channels} ch (expected audio/x-mulaw 8000 Hz mono)",
                            CLOSE_UNSUPPORTED,
                        )
                    info = msg.start
                    self.start = StreamStart(
                        stream_sid=info.streamSid,
                        call_sid=info.callSid,
                        account_sid=info.accountSid,
                        tracks=tuple(info.tracks),
                        parameters=dict(info.customParameters),
                    )
                    return self.start
        except TwilioProtocolError as exc:
            raise await self._fail(exc) from None
        except TimeoutError:
            raise await self._fail(
                TwilioProtocolError(f"no 'start' within {timeout_s:g} s", CLOSE_POLICY)
            ) from None

    async def incoming(self) -> AsyncIterator[UserAudioFrame]:
        """Caller audio as 16-bit PCM at `sample_rate` until `stop` or hang-up.
        Marks and DTMF are recorded as they arrive. A malformed message closes
        the stream and raises `TwilioProtocolError`."""
        if self.start is None:
            await self.receive_start()
        try:
            while not self._stopped:
                try:
                    msg = await self._next_message()
                except TransportClosed as exc:
                    if isinstance(exc, TwilioProtocolError):
                        raise
                    break
                if msg.streamSid is not None and msg.streamSid != self.stream_sid:
                    raise TwilioProtocolError(
                        f"message for stream {msg.streamSid!r} on stream {self.stream_sid!r}",
                        CLOSE_POLICY,
                    )
                if isinstance(msg, MediaMessage):
                    if msg.media.track not in ("inbound", "inbound_track"):
                        continue
                    pcm = self._in_rs.process(ulaw_decode(decode_payload(msg.media.payload)))
                    if pcm:
                        yield UserAudioFrame(pcm=pcm, sample_rate=self.sample_rate)
                elif isinstance(msg, MarkMessage):
                    self._mark_echoed(msg.mark.name)
                elif isinstance(msg, DtmfMessage):
                    self.dtmf.append(msg.dtmf.digit)
                    if self.on_dtmf is not None:
                        self.on_dtmf(msg.dtmf.digit)
                elif isinstance(msg, StopMessage):
                    self._stopped = True
                else:
                    raise TwilioProtocolError(
                        f"unexpected {msg.event!r} after 'start'", CLOSE_POLICY
                    )
        except TwilioProtocolError as exc:
            raise await self._fail(exc) from None
        tail = self._in_rs.flush()
        if tail:
            yield UserAudioFrame(pcm=tail, sample_rate=self.sample_rate)

    def _mark_echoed(self, name: str) -> None:
        mark = self._pending.pop(name, None)
        if mark is not None:
            self._played.append(mark)
            if self.on_mark_played is not None:
                self.on_mark_played(mark)
        elif name in self._cleared_unechoed:
            self._cleared_unechoed.discard(name)
        else:
            log.debug("Twilio echoed a mark this stream never sent: %r", name)

    # -- outbound ---------------------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        if self.close_reason is not None:
            raise TransportClosed(self.close_reason)
        try:
            await self._socket.send_text(json.dumps(message, separators=(",", ":")))
        except Exception as exc:  # the ASGI server's disconnect errors vary
            self._mark_closed("the Media Stream socket is closed", CLOSE_NORMAL)
            raise TransportClosed("the Media Stream socket is closed") from exc

    def _to_mulaw(self, pcm: bytes, rate: int, last: bool) -> bytes:
        if self._out_rs is not None and self._out_rs.from_rate != rate:
            tail = self._out_rs.flush()
            self._out_rs = None
            prefix = ulaw_encode(tail)
        else:
            prefix = b""
        if rate != TWILIO_RATE and self._out_rs is None:
            self._out_rs = Resampler(rate, TWILIO_RATE)
        if self._out_rs is None:
            return prefix + ulaw_encode(pcm)
        out = self._out_rs.process(pcm)
        if last:
            out += self._out_rs.flush()
        return prefix + ulaw_encode(out)

    async def play(self, frame: AgentAudioFrame) -> None:
        """Send agent audio as 20 ms mu-law `media` messages; after the last
        frame of a sentence, pad the final message with silence and send a mark."""
        if len(frame.pcm) % 2:
            raise ValueError(f"agent audio must be 16-bit PCM: {len(frame.pcm)} bytes is odd")
        if self.close_reason is not None:
            raise TransportClosed(self.close_reason)
        async with self._send_lock:
            self._out += self._to_mulaw(frame.pcm, frame.sample_rate, frame.last_of_text)
            if frame.last_of_text and len(self._out) % FRAME_BYTES:
                self._out += MULAW_SILENCE * (FRAME_BYTES - len(self._out) % FRAME_BYTES)
            sid = self.stream_sid
            while len(self._out) >= FRAME_BYTES:
                chunk = bytes(self._out[:FRAME_BYTES])
                del self._out[:FRAME_BYTES]
                payload = base64.b64encode(chunk).decode("ascii")
                await self._send(
                    {"event": "media", "streamSid": sid, "media": {"payload": payload}}
                )
                self._sentence_bytes += FRAME_BYTES
            if frame.last_of_text:
                mark = Mark(
                    name=f"{next(self._mark_seq)}:{frame.message_id}",
                    message_id=frame.message_id,
                    text=frame.text,
                    audio_ms=self._sentence_bytes * 1000 / TWILIO_RATE,
                )
                self._sentence_bytes = 0
                self._pending[mark.name] = mark
                await self._send({"event": "mark", "streamSid": sid, "mark": {"name": mark.name}})

    async def clear(self) -> None:
        """Drop agent audio not yet sent and make Twilio drop what it buffered;
        marks still queued are recorded as cleared, not played."""
        async with self._send_lock:
            self._out.clear()
            self._sentence_bytes = 0
            if self._out_rs is not None:
                self._out_rs.flush()  # discards the filter's tail, restarts the stream
            self._cleared += self._pending.values()
            self._cleared_unechoed.update(self._pending)
            self._pending.clear()
            if self.start is not None and self.close_reason is None:
                await self._send({"event": "clear", "streamSid": self.stream_sid})

    async def event(self, name: str, data: dict[str, object]) -> None:
        """Media Streams has no data channel: events are dropped."""

    def _mark_closed(self, reason: str, code: int) -> None:
        if self.close_reason is None:
            self.close_reason, self.close_code = reason, code

    async def close(self, reason: str = "", *, code: int = CLOSE_NORMAL) -> None:
        """Close the stream (Twilio then ends the `<Connect>` and the call); the
        first reason given is kept in `close_reason`. Idempotent."""
        if self.close_reason is not None:
            return
        self._mark_closed(reason or "call ended", code)
        try:
            await self._socket.close(code=code, reason=_close_reason(reason))
        except Exception as exc:  # already closed by the peer
            log.debug("Twilio stream close: %s", exc)

    def _sid_or_none(self) -> str | None:
        return self.start.stream_sid if self.start else None


# --- routes ------------------------------------------------------------------


@dataclass(frozen=True)
class TwilioCall:
    """A started Media Stream: the graph the TwiML named and the `start` metadata
    (`start.parameters` holds the TwiML `<Parameter>`s: caller, called, call_sid)."""

    graph: str
    start: StreamStart


CallRunner = Callable[[TwilioTransport, TwilioCall], Awaitable[None]]


def twiml_connect_stream(stream_url: str, parameters: Mapping[str, str] | None = None) -> str:
    """TwiML that connects the call to a bidirectional Media Stream at
    `stream_url`, passing `parameters` to its `start` message."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in (parameters or {}).items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def _external_base(headers: Mapping[str, str], url_scheme: str, public_url: str | None) -> str:
    """scheme://host[/prefix] under which Twilio reaches this service."""
    if public_url:
        return public_url.rstrip("/")
    proto = (headers.get("x-forwarded-proto") or url_scheme).split(",")[0].strip()
    host = (headers.get("x-forwarded-host") or headers.get("host") or "").split(",")[0].strip()
    return f"{proto}://{host}"


def _to_ws_scheme(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return parts._replace(scheme=scheme).geturl()


def _to_http_scheme(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
    return parts._replace(scheme=scheme).geturl()


def twilio_router(
    run_call: CallRunner,
    *,
    auth_token: str | None = None,
    public_url: str | None = None,
    default_graph: str | None = None,
    graph_exists: Callable[[str], bool] | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    start_timeout_s: float = 10.0,
) -> APIRouter:
    """Routes `POST /twilio/voice` (TwiML webhook; `?graph=ID` or `default_graph`)
    and WebSocket `/twilio/stream/{graph}` (the Media Stream; each started stream
    is handed to `run_call` with its `TwilioTransport`).

    `auth_token` defaults to $TWILIO_AUTH_TOKEN; when set, requests without a
    valid `X-Twilio-Signature` get 403. `public_url` (default
    $SWITCHBOARD_PUBLIC_URL) is the https origin Twilio calls; without it the
    Host / X-Forwarded-* headers are used. `graph_exists` rejects unknown graphs.
    """
    token = os.environ.get("TWILIO_AUTH_TOKEN", "") if auth_token is None else auth_token
    validator = RequestValidator(token) if token else None
    base_url = public_url if public_url is not None else os.environ.get("SWITCHBOARD_PUBLIC_URL")
    router = APIRouter()

    def check_graph(graph: str) -> None:
        if graph_exists is not None and not graph_exists(graph):
            raise HTTPException(404, f"no graph with id {graph!r}")

    @router.post("/twilio/voice", name="twilio_voice")
    async def twilio_voice(request: Request, graph: str | None = None) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        params = dict(parse_qsl(body, keep_blank_values=True))
        base = _external_base(request.headers, request.url.scheme, base_url)
        if validator is not None:
            url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
            signature = request.headers.get(SIGNATURE_HEADER, "")
            if not signature or not validator.validate(url, params, signature):
                raise HTTPException(403, f"invalid or missing {SIGNATURE_HEADER}")
        graph_id = graph or default_graph
        if not graph_id:
            raise HTTPException(400, "no graph: pass ?graph=ID or configure a default graph")
        check_graph(graph_id)
        path = request.app.url_path_for("twilio_stream", graph=graph_id)
        stream_url = _to_ws_scheme(base) + str(path)
        parameters = {
            "graph": graph_id,
            "caller": params.get("From", ""),
            "called": params.get("To", ""),
            "call_sid": params.get("CallSid", ""),
        }
        xml = twiml_connect_stream(stream_url, {k: v for k, v in parameters.items() if v})
        return Response(content=xml, media_type="application/xml")

    @router.websocket("/twilio/stream/{graph}", name="twilio_stream")
    async def twilio_stream(websocket: WebSocket, graph: str) -> None:
        if validator is not None:
            base = _external_base(websocket.headers, websocket.url.scheme, base_url)
            query = websocket.url.query
            url = _to_ws_scheme(base) + websocket.url.path + (f"?{query}" if query else "")
            signature = websocket.headers.get(SIGNATURE_HEADER, "")
            valid = bool(signature) and (
                validator.validate(url, {}, signature)
                or validator.validate(_to_http_scheme(url), {}, signature)
            )
            if not valid:
                await websocket.close(code=CLOSE_POLICY)  # before accept: HTTP 403
                return
        await websocket.accept()
        transport = TwilioTransport(websocket, max_message_bytes=max_message_bytes)
        if graph_exists is not None and not graph_exists(graph):
            await transport.close(f"no graph with id {graph!r}", code=CLOSE_POLICY)
            return
        try:
            start = await transport.receive_start(start_timeout_s)
        except TransportClosed:
            return
        try:
            await run_call(transport, TwilioCall(graph=graph, start=start))
        except TransportClosed:
            pass
        except Exception:
            log.exception("Twilio call %s on graph %r failed", start.call_sid, graph)
            await transport.close("internal error", code=CLOSE_INTERNAL)
        finally:
            await transport.close("call ended")

    return router
