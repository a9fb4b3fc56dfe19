"""Twilio Media Streams transport and routes, driven the way Twilio drives them."""

from __future__ import annotations

import asyncio
import base64
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from runtime.voice.audio import ulaw_decode, ulaw_encode
from runtime.voice.frames import AgentAudioFrame, UserAudioFrame
from runtime.voice.transport import TransportClosed
from runtime.voice.twilio import (
    FRAME_BYTES,
    Mark,
    TwilioCall,
    TwilioTransport,
    twilio_router,
)
from runtime.voice.twilio_messages import TwilioProtocolError, parse_message
from tests.fakes.twilio_media import (
    TwilioStreamClient,
    dominant_hz,
    sign,
    tone_pcm,
    tone_ulaw,
)

TOKEN = "test-auth-token"


# --- a call runner that echoes the caller ------------------------------------


@dataclass
class EchoAgent:
    """Echoes caller audio back as agent audio. DTMF drives it: `#` ends the
    current agent sentence (flush + mark), `*` barges in (clear)."""

    calls: list[TwilioCall] = field(default_factory=list)
    frames: dict[str, list[UserAudioFrame]] = field(default_factory=dict)
    transports: dict[str, TwilioTransport] = field(default_factory=dict)
    errors: dict[str, TransportClosed] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)

    async def __call__(self, transport: TwilioTransport, call: TwilioCall) -> None:
        sid = call.start.stream_sid
        self.calls.append(call)
        self.transports[sid] = transport
        frames = self.frames.setdefault(sid, [])
        control: asyncio.Queue[str] = asyncio.Queue()
        transport.on_dtmf = control.put_nowait
        sentence = 0

        async def controls() -> None:
            nonlocal sentence
            while True:
                digit = await control.get()
                if digit == "#":
                    sentence += 1
                    await transport.play(
                        AgentAudioFrame(
                            pcm=b"", message_id=f"m{sentence}", text="echo", last_of_text=True
                        )
                    )
                elif digit == "*":
                    await transport.clear()

        task = asyncio.create_task(controls())
        try:
            async for frame in transport.incoming():
                frames.append(frame)
                await transport.play(
                    AgentAudioFrame(
                        pcm=frame.pcm, sample_rate=frame.sample_rate, message_id=f"m{sentence + 1}"
                    )
                )
        except TransportClosed as exc:
            self.errors[sid] = exc
            raise
        finally:
            task.cancel()
        self.finished.append(sid)


def make_client(agent: EchoAgent, **options: Any) -> TestClient:
    app = FastAPI()
    options.setdefault("auth_token", "")
    app.include_router(twilio_router(agent, **options))
    return TestClient(app)


def drain_until_closed(twilio: TwilioStreamClient) -> WebSocketDisconnect:
    """Read (echoed media) until the server closes the socket."""
    for _ in range(10_000):
        try:
            twilio.receive()
        except WebSocketDisconnect as closed:
            return closed
    raise AssertionError("the server never closed the stream")


def pcm_rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2)))


# --- message parsing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        ("not json", 1007, "not valid JSON"),
        ("[1, 2]", 1007, "not an object"),
        ("{}", 1007, "not an object with an 'event'"),
        ('{"event": "hangup"}', 1003, "unknown event 'hangup'"),
        ('{"event": "media"}', 1007, "bad 'media' message: media: Field required"),
        ('{"event": "media", "media": {}}', 1007, "media.payload"),
        ('{"event": "mark", "mark": {}}', 1007, "mark.name"),
        ('{"event": "dtmf", "dtmf": {"digit": "12"}}', 1007, "dtmf.digit"),
        ('{"event": "start", "start": {"streamSid": "MZ1"}}', 1007, "start.mediaFormat"),
    ],
)
def test_malformed_messages_name_what_is_wrong(raw: str, code: int, reason: str) -> None:
    with pytest.raises(TwilioProtocolError) as err:
        parse_message(raw)
    assert err.value.code == code
    assert reason in err.value.reason


def test_oversized_message_is_rejected_before_parsing() -> None:
    raw = json.dumps({"event": "media", "media": {"payload": "A" * 5000}})
    with pytest.raises(TwilioProtocolError) as err:
        parse_message(raw, max_bytes=4096)
    assert err.value.code == 1009
    assert "too big" in err.value.reason
    assert parse_message(raw, max_bytes=8192).event == "media"


# --- a whole stream through the routes ---------------------------------------------


def test_start_media_stop_session_round_trips_audio_and_marks() -> None:
    agent = EchoAgent()
    client = make_client(agent)
    with client.websocket_connect("/twilio/stream/dental-booking") as ws:
        twilio = TwilioStreamClient(ws)
        twilio.handshake(parameters={"caller": "+15550100", "graph": "dental-booking"})
        sent = tone_ulaw(440, 1000)
        assert twilio.send_audio(sent) == 50
        twilio.dtmf("#")
        media, mark = twilio.receive_until_mark()
        twilio.echo_mark(mark)
        twilio.stop()
        closed = drain_until_closed(twilio)
    assert closed.code == 1000

    [call] = agent.calls
    assert call.graph == "dental-booking"
    assert call.start.stream_sid == twilio.stream_sid
    assert call.start.call_sid == twilio.call_sid
    assert call.start.parameters == {"caller": "+15550100", "graph": "dental-booking"}
    assert agent.finished == [twilio.stream_sid]

    # Caller side: 8 kHz mu-law in, exactly one second of 16 kHz PCM out.
    frames = agent.frames[twilio.stream_sid]
    assert all(f.sample_rate == 16000 for f in frames)
    heard = b"".join(f.pcm for f in frames)
    assert len(heard) == 16000 * 2
    assert abs(dominant_hz(heard, 16000) - 440) < 5
    assert pcm_rms(heard) == pytest.approx(pcm_rms(ulaw_decode(sent)), rel=0.05)

    # Agent side: 20 ms mu-law frames, then the sentence's mark.
    assert media and all(len(m) == FRAME_BYTES for m in media)
    assert 45 <= len(media) <= 51
    echoed = ulaw_decode(b"".join(media))
    assert abs(dominant_hz(echoed, 8000) - 440) < 5
    assert pcm_rms(echoed) == pytest.approx(pcm_rms(ulaw_decode(sent)), rel=0.1)

    transport = agent.transports[twilio.stream_sid]
    [played] = transport.played_marks()
    assert (played.name, played.message_id, played.text) == (mark, "m1", "echo")
    assert played.audio_ms == len(media) * 20
    assert transport.pending_marks() == [] and transport.cleared_marks() == []
    assert transport.dtmf == ["#"]


def test_clear_drops_queued_marks_and_later_sentences_still_count() -> None:
    agent = EchoAgent()
    client = make_client(agent)
    with client.websocket_connect("/twilio/stream/demo") as ws:
        twilio = TwilioStreamClient(ws)
        twilio.handshake()
        twilio.send_audio(tone_ulaw(300, 200))
        twilio.dtmf("#")
        _, first = twilio.receive_until_mark()
        twilio.dtmf("*")  # barge-in before Twilio played the first sentence
        _, clear = twilio.receive_until("clear")
        assert clear == {"event": "clear", "streamSid": twilio.stream_sid}
        twilio.echo_mark(first)  # Twilio echoes marks a clear dropped
        twilio.send_audio(tone_ulaw(300, 200))
        twilio.dtmf("#")
        _, second = twilio.receive_until_mark()
        twilio.echo_mark(second)
        twilio.stop()
        drain_until_closed(twilio)
    transport = agent.transports[twilio.stream_sid]
    assert [m.name for m in transport.cleared_marks()] == [first]
    assert [m.name for m in transport.played_marks()] == [second]
    assert [m.message_id for m in transport.played_marks()] == ["m2"]


def _bad_messages() -> Iterator[tuple[str, Any, int, str]]:
    media = {"event": "media", "streamSid": "MZ00000000000000000000000000000001"}
    yield "invalid json", "{not json", 1007, "not valid JSON"
    yield "unknown event", {"event": "hangup"}, 1003, "unknown event 'hangup'"
    yield "bad base64", {**media, "media": {"payload": "@@@"}}, 1007, "not valid base64"
    yield "missing payload", {**media, "media": {}}, 1007, "media.payload"
    yield "oversized", {**media, "media": {"payload": "A" * 8000}}, 1009, "too big"
    yield "binary frame", b"\x00\x01", 1003, "binary"
    yield "other stream", {**media, "streamSid": "MZ9", "media": {"payload": ""}}, 1008, "MZ9"
    yield "second start", "start", 1008, "unexpected 'start'"


@pytest.mark.parametrize(
    ("bad", "code", "reason"),
    [pytest.param(bad, code, reason, id=name) for name, bad, code, reason in _bad_messages()],
)
def test_malformed_message_closes_only_that_call(bad: Any, code: int, reason: str) -> None:
    agent = EchoAgent()
    client = make_client(agent, max_message_bytes=4096)
    with (
        client.websocket_connect("/twilio/stream/demo") as ws_a,
        client.websocket_connect("/twilio/stream/demo") as ws_b,
    ):
        a = TwilioStreamClient(ws_a, stream_sid="MZ00000000000000000000000000000001")
        b = TwilioStreamClient(ws_b, stream_sid="MZ00000000000000000000000000000002")
        a.handshake()
        b.handshake()
        a.send_audio(tone_ulaw(440, 100))
        b.send_audio(tone_ulaw(440, 100))
        if bad == "start":
            a.start()
        elif isinstance(bad, bytes):
            ws_a.send_bytes(bad)
        else:
            ws_a.send_text(bad if isinstance(bad, str) else json.dumps(bad))
        closed = drain_until_closed(a)
        assert closed.code == code
        assert reason in closed.reason

        # The other call is untouched: audio in, a sentence out, a clean end.
        b.send_audio(tone_ulaw(440, 100))
        b.dtmf("#")
        media, mark = b.receive_until_mark()
        assert media
        b.echo_mark(mark)
        b.stop()
        assert drain_until_closed(b).code == 1000

    error = agent.errors[a.stream_sid]
    assert isinstance(error, TwilioProtocolError) and reason in error.reason
    assert agent.transports[a.stream_sid].close_code == code
    assert agent.finished == [b.stream_sid]
    assert len(b"".join(f.pcm for f in agent.frames[b.stream_sid])) == 200 * 32
    assert [m.name for m in agent.transports[b.stream_sid].played_marks()] == [mark]


@pytest.mark.parametrize(
    ("first", "code", "reason"),
    [
        ({"event": "media", "media": {"payload": ""}}, 1008, "'media' before 'start'"),
        (
            {
                "event": "start",
                "start": {
                    "streamSid": "MZ1",
                    "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1},
                },
            },
            1003,
            "unsupported media format",
        ),
    ],
)
def test_a_stream_must_start_with_mulaw_start(
    first: dict[str, Any], code: int, reason: str
) -> None:
    agent = EchoAgent()
    client = make_client(agent)
    with client.websocket_connect("/twilio/stream/demo") as ws:
        twilio = TwilioStreamClient(ws)
        twilio.connected()
        twilio.send(first)
        closed = drain_until_closed(twilio)
    assert (closed.code, reason in closed.reason) == (code, True)
    assert agent.calls == []


def test_a_stream_that_never_starts_is_closed() -> None:
    agent = EchoAgent()
    client = make_client(agent, start_timeout_s=0.2)
    with client.websocket_connect("/twilio/stream/demo") as ws:
        twilio = TwilioStreamClient(ws)
        twilio.connected()
        closed = drain_until_closed(twilio)
    assert closed.code == 1008 and "no 'start'" in closed.reason
    assert agent.calls == []


def test_unknown_graph_stream_is_refused() -> None:
    agent = EchoAgent()
    client = make_client(agent, graph_exists=lambda g: g == "demo")
    with client.websocket_connect("/twilio/stream/nope") as ws:
        closed = drain_until_closed(TwilioStreamClient(ws))
    assert closed.code == 1008 and "nope" in closed.reason


def test_failing_runner_closes_with_internal_error() -> None:
    async def broken(transport: TwilioTransport, call: TwilioCall) -> None:
        raise RuntimeError("boom")

    app = FastAPI()
    app.include_router(twilio_router(broken, auth_token=""))
    with TestClient(app).websocket_connect("/twilio/stream/demo") as ws:
        twilio = TwilioStreamClient(ws)
        twilio.handshake()
        closed = drain_until_closed(twilio)
    assert (closed.code, closed.reason) == (1011, "internal error")


# --- TwiML webhook and signatures ----------------------------------------------


FORM = {"CallSid": "CA123", "From": "+15550100", "To": "+15550199", "AccountSid": "AC1"}


def _stream_of(xml: str) -> tuple[str, dict[str, str]]:
    root = ET.fromstring(xml)
    assert root.tag == "Response"
    [connect] = list(root)
    assert connect.tag == "Connect"
    [stream] = list(connect)
    assert stream.tag == "Stream"
    params = {p.attrib["name"]: p.attrib["value"] for p in stream if p.tag == "Parameter"}
    return stream.attrib["url"], params


def test_voice_webhook_connects_the_call_to_the_stream() -> None:
    client = make_client(EchoAgent(), graph_exists=lambda g: g == "dental-booking")
    resp = client.post("/twilio/voice?graph=dental-booking", data=FORM)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/xml")
    url, params = _stream_of(resp.text)
    assert url == "ws://testserver/twilio/stream/dental-booking"
    assert params == {
        "graph": "dental-booking",
        "caller": "+15550100",
        "called": "+15550199",
        "call_sid": "CA123",
    }


def test_voice_webhook_uses_public_url_and_forwarded_headers() -> None:
    public = make_client(EchoAgent(), public_url="https://voice.example.com", default_graph="g1")
    url, _ = _stream_of(public.post("/twilio/voice", data=FORM).text)
    assert url == "wss://voice.example.com/twilio/stream/g1"

    proxied = make_client(EchoAgent(), default_graph="g1")
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "calls.example.org"}
    url, _ = _stream_of(proxied.post("/twilio/voice", data=FORM, headers=headers).text)
    assert url == "wss://calls.example.org/twilio/stream/g1"


def test_voice_webhook_rejects_missing_or_unknown_graph() -> None:
    client = make_client(EchoAgent(), graph_exists=lambda g: g == "known")
    missing = client.post("/twilio/voice", data=FORM)
    assert missing.status_code == 400 and "graph" in missing.json()["detail"]
    unknown = client.post("/twilio/voice?graph=other", data=FORM)
    assert unknown.status_code == 404 and "other" in unknown.json()["detail"]


def test_signed_webhook_is_accepted_and_unsigned_or_forged_is_rejected() -> None:
    client = make_client(
        EchoAgent(), auth_token=TOKEN, public_url="https://voice.example.com", default_graph="g"
    )
    url = "https://voice.example.com/twilio/voice?graph=g"
    good = sign(TOKEN, url, FORM)
    ok = client.post("/twilio/voice?graph=g", data=FORM, headers={"X-Twilio-Signature": good})
    assert ok.status_code == 200
    assert _stream_of(ok.text)[0] == "wss://voice.example.com/twilio/stream/g"

    forged = sign("another-token", url, FORM)
    tampered = {**FORM, "From": "+19990000"}
    for headers, data in [
        ({}, FORM),
        ({"X-Twilio-Signature": forged}, FORM),
        ({"X-Twilio-Signature": good}, tampered),
    ]:
        resp = client.post("/twilio/voice?graph=g", data=data, headers=headers)
        assert resp.status_code == 403, (headers, data)
        assert "X-Twilio-Signature" in resp.json()["detail"]


def test_signature_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    app = FastAPI()
    app.include_router(twilio_router(EchoAgent(), default_graph="g"))
    resp = TestClient(app).post("/twilio/voice", data=FORM)
    assert resp.status_code == 403


def test_stream_handshake_signature_is_checked() -> None:
    agent = EchoAgent()
    client = make_client(agent, auth_token=TOKEN, public_url="https://voice.example.com")
    url = "wss://voice.example.com/twilio/stream/demo"
    path = "/twilio/stream/demo"
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(path):
        pass
    assert refused.value.code == 1008
    bad = {"X-Twilio-Signature": sign(TOKEN, url + "/other")}
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(path, headers=bad):
        pass

    headers = {"X-Twilio-Signature": sign(TOKEN, url)}
    with client.websocket_connect("/twilio/stream/demo", headers=headers) as ws:
        twilio = TwilioStreamClient(ws)
        twilio.handshake()
        twilio.stop()
        assert drain_until_closed(twilio).code == 1000
    assert len(agent.calls) == 1


# --- the transport on its own ----------------------------------------------------


class FakeSocket:
    """A MessageSocket fed by the test: what Twilio sends goes into `inbox`."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str | None] | None = None

    def push(self, message: dict[str, Any]) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": json.dumps(message)})

    async def receive(self) -> Mapping[str, Any]:
        return await self.inbox.get()

    async def send_text(self, data: str) -> None:
        if self.closed is not None:
            raise RuntimeError("closed")
        self.sent.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason)

    def media_bytes(self) -> list[bytes]:
        return [base64.b64decode(m["media"]["payload"]) for m in self.sent if m["event"] == "media"]


START = {
    "event": "start",
    "start": {
        "streamSid": "MZ1",
        "callSid": "CA1",
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"caller": "+1555"},
    },
}


async def started_transport(**options: Any) -> tuple[TwilioTransport, FakeSocket]:
    socket = FakeSocket()
    transport = TwilioTransport(socket, **options)
    socket.push({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    socket.push(START)
    start = await transport.receive_start()
    assert start.parameters == {"caller": "+1555"} and start.call_sid == "CA1"
    return transport, socket


async def test_8khz_agent_audio_is_bit_exact_mulaw_in_20ms_frames() -> None:
    transport, socket = await started_transport()
    pcm = tone_pcm(500, 70, 8000)  # 560 samples: 3.5 frames
    await transport.play(AgentAudioFrame(pcm=pcm, sample_rate=8000, message_id="a", text="Hi."))
    assert len(socket.media_bytes()) == 3  # the half frame waits for more audio
    await transport.play(
        AgentAudioFrame(pcm=b"", sample_rate=8000, message_id="a", text="Hi.", last_of_text=True)
    )
    frames = socket.media_bytes()
    assert [len(f) for f in frames] == [FRAME_BYTES] * 4
    assert b"".join(frames) == ulaw_encode(pcm) + b"\xff" * 80  # padded with mu-law silence
    assert socket.sent[-1] == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "1:a"}}
    assert transport.pending_marks() == [Mark("1:a", "a", "Hi.", audio_ms=80.0)]
    assert all(m["streamSid"] == "MZ1" for m in socket.sent)


async def test_16khz_and_24khz_agent_audio_is_resampled_to_8khz() -> None:
    transport, socket = await started_transport()
    for rate in (16000, 24000):
        pcm = tone_pcm(700, 400, rate)
        for i in range(0, len(pcm), rate // 50 * 2):  # 20 ms chunks, as the output stage sends
            chunk = pcm[i : i + rate // 50 * 2]
            await transport.play(AgentAudioFrame(pcm=chunk, sample_rate=rate, message_id=str(rate)))
        await transport.play(
            AgentAudioFrame(pcm=b"", sample_rate=rate, message_id=str(rate), last_of_text=True)
        )
        audio = ulaw_decode(b"".join(socket.media_bytes()))
        assert len(audio) == 400 * 8 * 2  # 400 ms at 8 kHz, no padding needed
        assert abs(dominant_hz(audio, 8000) - 700) < 5
        socket.sent.clear()
    assert [m.name for m in transport.pending_marks()] == ["1:16000", "2:24000"]


async def test_incoming_decodes_records_marks_and_dtmf_and_ends_on_stop() -> None:
    digits: list[str] = []
    played: list[Mark] = []
    transport, socket = await started_transport(on_dtmf=digits.append, on_mark_played=played.append)
    await transport.play(AgentAudioFrame(pcm=b"", message_id="x", text="Yes.", last_of_text=True))
    ulaw = tone_ulaw(400, 60)
    for i in range(0, len(ulaw), FRAME_BYTES):
        payload = base64.b64encode(ulaw[i : i + FRAME_BYTES]).decode()
        socket.push({"event": "media", "streamSid": "MZ1", "media": {"payload": payload}})
    socket.push({"event": "media", "media": {"payload": payload, "track": "outbound"}})
    socket.push({"event": "dtmf", "dtmf": {"digit": "5"}})
    socket.push({"event": "mark", "mark": {"name": "1:x"}})
    socket.push({"event": "mark", "mark": {"name": "never-sent"}})
    socket.push({"event": "stop", "stop": {"callSid": "CA1"}})
    frames = [f async for f in transport.incoming()]
    assert len(b"".join(f.pcm for f in frames)) == 60 * 16 * 2  # outbound track ignored
    assert digits == ["5"] == transport.dtmf
    assert [m.name for m in played] == ["1:x"] == [m.name for m in transport.played_marks()]
    assert transport.close_reason is None  # stop ends the audio; the runner closes


async def test_hangup_ends_incoming_and_play_after_close_raises() -> None:
    transport, socket = await started_transport()
    socket.inbox.put_nowait({"type": "websocket.disconnect", "code": 1006})
    assert [f async for f in transport.incoming()] == []
    assert transport.close_reason == "caller hung up"
    with pytest.raises(TransportClosed):
        await transport.play(AgentAudioFrame(pcm=b"\x00\x00" * 320))


async def test_clear_drops_unsent_audio_and_event_is_a_no_op() -> None:
    transport, socket = await started_transport()
    await transport.play(AgentAudioFrame(pcm=b"\x10\x00" * 100, sample_rate=8000, message_id="a"))
    await transport.clear()
    await transport.event("transcript", {"text": "hello"})
    assert socket.sent == [{"event": "clear", "streamSid": "MZ1"}]
    await transport.play(
        AgentAudioFrame(pcm=b"", sample_rate=8000, message_id="b", last_of_text=True)
    )
    assert socket.media_bytes() == []  # the 100 samples before the clear are gone
    assert socket.sent[-1]["event"] == "mark"


async def test_odd_pcm_is_refused_and_close_is_idempotent() -> None:
    transport, socket = await started_transport()
    with pytest.raises(ValueError, match="odd"):
        await transport.play(AgentAudioFrame(pcm=b"\x00\x00\x00"))
    await transport.close("graph ended")
    await transport.close("again")
    assert socket.closed == (1000, "graph ended")
    assert transport.close_reason == "graph ended"
    other_socket = FakeSocket()
    await TwilioTransport(other_socket).close("x" * 300)
    assert other_socket.closed is not None
    assert other_socket.closed[1] == "x" * 123  # a close reason fits in 123 bytes
