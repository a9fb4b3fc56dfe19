"""Twilio Media Streams wire format: the JSON text messages Twilio sends on a
stream (`connected`, `start`, `media`, `mark`, `dtmf`, `stop`), parsed and
validated with pydantic, and the WebSocket close codes a malformed one earns.

Every failure is a `TwilioProtocolError` carrying an RFC 6455 close code and a
reason that names what is wrong (size, JSON, event, field), so the transport
can close that stream with it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from runtime.voice.transport import TransportClosed

#: A Twilio message is a few hundred bytes (`start` with custom parameters a few KiB).
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024

# WebSocket close codes (RFC 6455) used for the reasons a stream is closed.
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011


class TwilioProtocolError(TransportClosed):
    """Twilio (or whoever is on the socket) sent something this stream cannot
    accept; the stream is closed with `code` and `reason`."""

    def __init__(self, reason: str, code: int = CLOSE_INVALID) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


# --- inbound messages --------------------------------------------------------


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Event(_Msg):
    streamSid: str | None = None


class ConnectedMessage(_Event):
    event: Literal["connected"]
    protocol: str = ""
    version: str = ""


class MediaFormat(_Msg):
    encoding: str
    sampleRate: int
    channels: int


class StartInfo(_Msg):
    streamSid: str = Field(min_length=1)
    accountSid: str = ""
    callSid: str = ""
    tracks: list[str] = Field(default_factory=lambda: ["inbound"])
    customParameters: dict[str, str] = Field(default_factory=dict)
    mediaFormat: MediaFormat


class StartMessage(_Event):
    event: Literal["start"]
    start: StartInfo


class MediaInfo(_Msg):
    payload: str
    track: str = "inbound"
    chunk: str | int | None = None
    timestamp: str | int | None = None


class MediaMessage(_Event):
    event: Literal["media"]
    media: MediaInfo


class MarkInfo(_Msg):
    name: str


class MarkMessage(_Event):
    event: Literal["mark"]
    mark: MarkInfo


class DtmfInfo(_Msg):
    digit: str = Field(min_length=1, max_length=1)
    track: str = "inbound_track"


class DtmfMessage(_Event):
    event: Literal["dtmf"]
    dtmf: DtmfInfo


class StopMessage(_Event):
    event: Literal["stop"]


InboundMessage = (
    ConnectedMessage | StartMessage | MediaMessage | MarkMessage | DtmfMessage | StopMessage
)
_MESSAGE: TypeAdapter[InboundMessage] = TypeAdapter(
    Annotated[InboundMessage, Field(discriminator="event")]
)


def parse_message(raw: str, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> InboundMessage:
    """Parse one Media Streams text message, or raise `TwilioProtocolError` with
    a close code and a reason naming what is wrong (size, JSON, event, field)."""
    size = len(raw) if len(raw) > max_bytes else len(raw.encode("utf-8"))
    if size > max_bytes:
        raise TwilioProtocolError(f"message too big: {size} bytes > {max_bytes}", CLOSE_TOO_BIG)
    try:
        return _MESSAGE.validate_json(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        kind = err["type"]
        if kind == "json_invalid":
            raise TwilioProtocolError("message is not valid JSON") from None
        if kind == "union_tag_invalid":
            tag = err.get("ctx", {}).get("tag", "")
            raise TwilioProtocolError(f"unknown event {tag!r}", CLOSE_UNSUPPORTED) from None
        if not err["loc"]:
            raise TwilioProtocolError("message is not an object with an 'event'") from None
        loc = ".".join(str(p) for p in err["loc"][1:])
        event = str(err["loc"][0])
        raise TwilioProtocolError(f"bad {event!r} message: {loc}: {err['msg']}") from None


def decode_payload(payload: str) -> bytes:
    """The mu-law bytes of a `media` payload; `TwilioProtocolError` if not base64."""
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise TwilioProtocolError("media payload is not valid base64") from None
