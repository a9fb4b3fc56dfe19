"""Twilio's side of a Media Stream, for tests: messages shaped exactly as Twilio
sends them (`connected`, `start`, 20 ms `media` with base64 mu-law, `mark`,
`dtmf`, `stop`, each with a growing `sequenceNumber`), sent over a Starlette
`TestClient` WebSocket session, and helpers to read what the server sends back.

    with client.websocket_connect("/twilio/stream/demo") as ws:
        twilio = TwilioStreamClient(ws)
        twilio.handshake(parameters={"caller": "+15550100"})
        twilio.send_audio(ulaw_bytes)          # split into 20 ms media messages
        media, mark = twilio.receive_until_mark()
        twilio.echo_mark(mark)                  # as Twilio does once it played it
        twilio.stop()
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from starlette.testclient import WebSocketTestSession
from twilio.request_validator import RequestValidator

from runtime.voice.audio import int16_to_pcm, ulaw_encode

FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law


def tone_pcm(freq_hz: float, ms: float, rate: int, amplitude: float = 0.3) -> bytes:
    """A sine tone as 16-bit PCM."""
    n = round(rate * ms / 1000)
    t = np.arange(n) / rate
    return int16_to_pcm((np.sin(2 * np.pi * freq_hz * t) * amplitude * 32767).astype(np.int16))


def tone_ulaw(freq_hz: float, ms: float, amplitude: float = 0.3) -> bytes:
    """A sine tone as 8 kHz mu-law, the way a phone caller's audio arrives."""
    return ulaw_encode(tone_pcm(freq_hz, ms, 8000, amplitude))


def dominant_hz(pcm: bytes, rate: int) -> float:
    """The frequency of the strongest FFT bin of `pcm`."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def sign(auth_token: str, url: str, params: dict[str, str] | None = None) -> str:
    """The X-Twilio-Signature Twilio would send for `url` and POST `params`."""
    return RequestValidator(auth_token).compute_signature(url, params or {})


class TwilioStreamClient:
    """Plays Twilio on a TestClient WebSocket session."""

    def __init__(
        self,
        ws: WebSocketTestSession,
        stream_sid: str = "MZ00000000000000000000000000000001",
        call_sid: str = "CA00000000000000000000000000000001",
    ) -> None:
        self.ws = ws
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.account_sid = "AC00000000000000000000000000000001"
        self._seq = 0
        self._chunk = 0
        self._timestamp_ms = 0

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send_text(json.dumps(message))

    def connected(self) -> None:
        self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(
        self,
        parameters: dict[str, str] | None = None,
        media_format: dict[str, Any] | None = None,
    ) -> None:
        self.send(
            {
                "event": "start",
                "sequenceNumber": self._next_seq(),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": media_format
                    or {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": parameters or {},
                },
                "streamSid": self.stream_sid,
            }
        )

    def handshake(self, parameters: dict[str, str] | None = None) -> None:
        self.connected()
        self.start(parameters)

    def media(self, ulaw: bytes) -> None:
        """One `media` message carrying `ulaw` as its payload."""
        self._chunk += 1
        self.send(
            {
                "event": "media",
                "sequenceNumber": self._next_seq(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str(self._timestamp_ms),
                    "payload": base64.b64encode(ulaw).decode("ascii"),
                },
                "streamSid": self.stream_sid,
            }
        )
        self._timestamp_ms += len(ulaw) // 8

    def send_audio(self, ulaw: bytes) -> int:
        """Send `ulaw` as 20 ms media messages; returns how many were sent."""
        count = 0
        for i in range(0, len(ulaw), FRAME_BYTES):
            self.media(ulaw[i : i + FRAME_BYTES])
            count += 1
        return count

    def echo_mark(self, name: str) -> None:
        self.send(
            {
                "event": "mark",
                "sequenceNumber": self._next_seq(),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )

    def dtmf(self, digit: str) -> None:
        self.send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    def stop(self) -> None:
        self.send(
            {
                "event": "stop",
                "sequenceNumber": self._next_seq(),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )

    def receive(self) -> dict[str, Any]:
        """The next message the server sent (raises WebSocketDisconnect on close)."""
        message: dict[str, Any] = json.loads(self.ws.receive_text())
        return message

    def receive_until(self, event: str) -> tuple[list[bytes], dict[str, Any]]:
        """Media payloads (decoded mu-law) received before the next `event`
        message, and that message."""
        media: list[bytes] = []
        while True:
            message = self.receive()
            if message["event"] == event:
                return media, message
            assert message["event"] == "media", message
            media.append(base64.b64decode(message["media"]["payload"]))

    def receive_until_mark(self) -> tuple[list[bytes], str]:
        media, message = self.receive_until("mark")
        return media, str(message["mark"]["name"])
