"""LiveKit transport: tokens, the real SDK's join attempt against a local
signaling endpoint, the room link over real `rtc` objects, and the transport's
frame conversion and queueing. Media through a room (the real SDK against a
local fake SFU) is in `test_livekit_media.py`."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from livekit import rtc

from runtime.voice.frames import AgentAudioFrame
from runtime.voice.livekit_tokens import LiveKitSettings, mint_token, verify_token
from runtime.voice.livekit_transport import (
    EVENTS_TOPIC,
    LiveKitError,
    LiveKitTransport,
    RtcRoomLink,
    abandoned_joins_settled,
    join_room,
)
from runtime.voice.transport import TransportClosed
from tests.fakes.livekit_signal import FakeSignalServer
from tests.fakes.twilio_media import dominant_hz, tone_pcm

KEY = "APIswitchboardtest"
SECRET = "a-test-secret-that-is-long-enough-for-hs256!"
#: Upper bound for the SDK's (fast, local) failed join; it normally takes < 1 s.
JOIN_CEILING_S = 30.0


# --- tokens --------------------------------------------------------------------------


def test_minted_token_carries_room_join_grant_identity_and_ttl() -> None:
    before = int(time.time())
    token = mint_token(
        KEY,
        SECRET,
        room="call-42",
        identity="caller-1",
        name="Maria",
        ttl=datetime.timedelta(minutes=10),
        can_publish=False,
        metadata='{"graph": "dental"}',
    )
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["iss"] == KEY and claims["sub"] == "caller-1"
    assert claims["name"] == "Maria" and claims["metadata"] == '{"graph": "dental"}'
    assert claims["video"] == {
        "roomJoin": True,
        "room": "call-42",
        "canPublish": False,
        "canSubscribe": True,
        "canPublishData": True,
    }
    assert claims["exp"] - claims["nbf"] == 600
    assert before - 1 <= claims["nbf"] <= int(time.time()) + 1
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-of-sufficient-length-0123", algorithms=["HS256"])


def test_verify_token_accepts_ours_and_explains_refusals() -> None:
    token = mint_token(KEY, SECRET, room="r", identity="agent", hidden=True)
    claims = verify_token(token, KEY, SECRET)
    assert claims.identity == "agent"
    assert claims.video is not None
    assert (claims.video.room, claims.video.room_join, claims.video.hidden) == ("r", True, True)

    with pytest.raises(ValueError, match="invalid LiveKit token: Signature verification"):
        verify_token(token, KEY, "x" * 40)
    expired = jwt.encode(
        {"iss": KEY, "sub": "a", "nbf": 0, "exp": int(time.time()) - 3600, "video": {}},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(ValueError, match="expired"):
        verify_token(expired, KEY, SECRET)
    with pytest.raises(ValueError, match="invalid LiveKit token"):
        verify_token("not-a-jwt", KEY, SECRET)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"room": " "}, "room name"),
        ({"identity": ""}, "identity"),
        ({"ttl": datetime.timedelta(0)}, "TTL must be positive"),
        ({"api_secret": ""}, "API key and secret"),
    ],
)
def test_bad_token_requests_are_refused_clearly(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"api_key": KEY, "api_secret": SECRET, "room": "r", "identity": "a"}
    with pytest.raises(ValueError, match=message):
        mint_token(**{**args, **kwargs})


def test_settings_come_from_the_environment() -> None:
    with pytest.raises(ValueError, match="LIVEKIT_URL, LIVEKIT_API_SECRET"):
        LiveKitSettings.from_env({"LIVEKIT_API_KEY": KEY})
    settings = LiveKitSettings.from_env(
        {
            "LIVEKIT_URL": "wss://lk.example.com",
            "LIVEKIT_API_KEY": KEY,
            "LIVEKIT_API_SECRET": SECRET,
        }
    )
    assert settings == LiveKitSettings("wss://lk.example.com", KEY, SECRET)
    assert SECRET not in repr(settings)


# --- the real SDK against a local signaling endpoint ---------------------------------


async def test_sdk_join_sends_the_minted_token_and_a_refusal_is_a_clear_error() -> None:
    async with FakeSignalServer(KEY, SECRET) as server:
        settings = LiveKitSettings(server.url, KEY, SECRET)
        async with asyncio.timeout(JOIN_CEILING_S):
            with pytest.raises(LiveKitError) as refused:
                await join_room(settings, "call-7", identity="agent-7", connect_timeout_s=20)
    message = str(refused.value)
    assert "'call-7'" in message and settings.url in message and "503" in message
    joins = [a for a in server.attempts if a.path == "/rtc/v1"]
    assert joins, server.attempts
    for attempt in joins:
        assert attempt.token_error is None
        assert attempt.claims is not None and attempt.claims.identity == "agent-7"
        assert attempt.claims.video is not None
        assert (attempt.claims.video.room, attempt.claims.video.room_join) == ("call-7", True)
        assert attempt.join is not None and attempt.join.connection_settings.auto_subscribe


async def test_sdk_join_with_a_wrong_secret_is_refused_by_the_server() -> None:
    async with FakeSignalServer(KEY, SECRET) as server:
        settings = LiveKitSettings(server.url, KEY, "a-different-secret-also-long-enough-123")
        async with asyncio.timeout(JOIN_CEILING_S):
            with pytest.raises(LiveKitError, match="401"):
                await join_room(settings, "call-7", connect_timeout_s=20)
    assert server.attempts and all(a.token_error for a in server.attempts)


async def test_unreachable_server_is_a_clear_error() -> None:
    async with FakeSignalServer(KEY, SECRET) as server:
        url = server.url  # closed when the block ends: nothing listens there now
    async with asyncio.timeout(JOIN_CEILING_S):
        with pytest.raises(LiveKitError, match="could not join LiveKit room 'r'"):
            await join_room(LiveKitSettings(url, KEY, SECRET), "r", connect_timeout_s=20)


# --- the room link over real rtc objects ---------------------------------------------


@dataclass
class ScriptedAudio:
    """Stands in for `rtc.AudioStream`: yields chunks pushed by the test."""

    opened: list[tuple[str, int]] = field(default_factory=list)
    queue: asyncio.Queue[tuple[bytes, int] | None] = field(default_factory=asyncio.Queue)

    async def __call__(self, track: Any, sample_rate: int) -> AsyncIterator[tuple[bytes, int]]:
        self.opened.append((track.sid, sample_rate))
        while (chunk := await self.queue.get()) is not None:
            yield chunk


def audio_track(sid: str) -> Any:
    return SimpleNamespace(kind=rtc.TrackKind.KIND_AUDIO, sid=sid)


def participant(identity: str) -> Any:
    return SimpleNamespace(identity=identity)


async def next_pcm(frames: AsyncIterator[Any]) -> bytes:
    async with asyncio.timeout(5):
        frame = await anext(frames)
    assert frame.sample_rate == 16000
    return bytes(frame.pcm)


async def test_room_link_reads_the_callers_audio_track_and_ends_when_they_leave() -> None:
    audio = ScriptedAudio()
    transport = LiveKitTransport()
    room = rtc.Room()
    link = RtcRoomLink(room, transport, reader=audio)
    transport.link = link
    try:
        video = SimpleNamespace(kind=rtc.TrackKind.KIND_VIDEO, sid="TR_video")
        room.emit("track_subscribed", video, None, participant("caller"))
        room.emit("track_subscribed", audio_track("TR_a"), None, participant("caller"))
        room.emit("track_subscribed", audio_track("TR_b"), None, participant("someone-else"))
        frames = transport.incoming()
        audio.queue.put_nowait((b"\x01\x00" * 160, 16000))
        assert await next_pcm(frames) == b"\x01\x00" * 160
        assert audio.opened == [("TR_a", 16000)]  # one caller track; video ignored
        assert link.caller_identity == "caller"

        room.emit("participant_disconnected", participant("someone-else"))
        audio.queue.put_nowait((tone_pcm(300, 300, 48000), 48000))  # resampled to 16 kHz
        assert len(await next_pcm(frames)) > 0
        room.emit("participant_disconnected", participant("caller"))
        async with asyncio.timeout(5):
            rest = [f async for f in frames]
        assert all(f.sample_rate == 16000 for f in rest)
    finally:
        await transport.close("test over")
    assert transport.close_reason == "test over"


async def test_room_link_waits_for_the_named_caller_and_room_disconnect_ends_the_call() -> None:
    audio = ScriptedAudio()
    transport = LiveKitTransport()
    room = rtc.Room()
    link = RtcRoomLink(room, transport, caller_identity="sip-caller", reader=audio)
    try:
        room.emit("track_subscribed", audio_track("TR_bot"), None, participant("other-bot"))
        room.emit("track_subscribed", audio_track("TR_sip"), None, participant("sip-caller"))
        await asyncio.sleep(0)  # let the reader task start
        assert audio.opened == [("TR_sip", 16000)]
        room.emit("track_unsubscribed", audio_track("TR_sip"), None, participant("sip-caller"))
        room.emit("track_subscribed", audio_track("TR_sip2"), None, participant("sip-caller"))
        await asyncio.sleep(0)
        assert [sid for sid, _ in audio.opened] == ["TR_sip", "TR_sip2"]
        room.emit("disconnected", "server shutdown")
        async with asyncio.timeout(5):
            assert [f async for f in transport.incoming()] == []
    finally:
        await link.disconnect()


async def test_room_link_queues_agent_audio_in_a_real_audio_source_and_clears_it() -> None:
    transport = LiveKitTransport()
    link = RtcRoomLink(rtc.Room(), transport, queue_ms=5000, reader=ScriptedAudio())
    transport.link = link
    try:
        tone = tone_pcm(440, 2000, 16000)
        await transport.play(AgentAudioFrame(pcm=tone, message_id="m", text="Hello."))
        # 2 s queued, minus what already played out (generous for a loaded machine)
        assert link.queued_ms() > 1000
        assert transport.queued_ms() == pytest.approx(link.queued_ms(), abs=50)
        await transport.clear()
        assert link.queued_ms() == 0.0
    finally:
        await transport.close()


# --- the transport's conversion and queueing ------------------------------------------


@dataclass
class FakeLink:
    captured: list[tuple[bytes, int]] = field(default_factory=list)
    data: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    clears: int = 0
    disconnects: int = 0
    playouts: int = 0

    async def capture(self, pcm: bytes, sample_rate: int) -> None:
        self.captured.append((pcm, sample_rate))

    def clear(self) -> None:
        self.clears += 1

    def queued_ms(self) -> float:
        return 12.5

    async def publish_data(self, payload: bytes, topic: str) -> None:
        self.data.append((json.loads(payload), topic))

    async def playout(self) -> None:
        self.playouts += 1

    async def disconnect(self) -> None:
        self.disconnects += 1


async def test_agent_audio_is_sent_in_20ms_frames_and_sentence_ends_flush() -> None:
    link = FakeLink()
    transport = LiveKitTransport(link)
    pcm = tone_pcm(440, 50, 16000)  # 2.5 frames
    await transport.play(AgentAudioFrame(pcm=pcm, message_id="m"))
    assert [len(c) for c, _ in link.captured] == [640, 640]
    await transport.play(AgentAudioFrame(pcm=b"", message_id="m", last_of_text=True))
    assert [len(c) for c, _ in link.captured] == [640, 640, 320]
    assert b"".join(c for c, _ in link.captured) == pcm
    assert {rate for _, rate in link.captured} == {16000}


async def test_tts_rate_audio_is_resampled_to_the_transport_rate() -> None:
    link = FakeLink()
    transport = LiveKitTransport(link)
    pcm = tone_pcm(600, 400, 22050)
    step = 441 * 2  # 20 ms at 22.05 kHz
    for i in range(0, len(pcm), step):
        await transport.play(AgentAudioFrame(pcm=pcm[i : i + step], sample_rate=22050))
    await transport.play(AgentAudioFrame(pcm=b"", sample_rate=22050, last_of_text=True))
    out = b"".join(c for c, _ in link.captured)
    assert len(out) == 400 * 16 * 2
    assert abs(dominant_hz(out, 16000) - 600) < 5


async def test_clear_drops_held_audio_and_events_go_to_the_data_channel() -> None:
    link = FakeLink()
    transport = LiveKitTransport(link)
    await transport.play(AgentAudioFrame(pcm=b"\x00\x01" * 100))  # under one frame: held
    await transport.clear()
    await transport.play(AgentAudioFrame(pcm=b"", last_of_text=True))
    assert link.captured == [] and link.clears == 1
    await transport.event("transcript", {"text": "hi", "final": True})
    assert link.data == [({"type": "transcript", "text": "hi", "final": True}, EVENTS_TOPIC)]
    assert transport.queued_ms() == 12.5


async def test_caller_audio_is_queued_in_order_and_close_ends_everything() -> None:
    link = FakeLink()
    transport = LiveKitTransport(link)
    transport.feed_caller_audio(b"\x01\x00" * 320, 16000)
    transport.feed_caller_audio(b"\x02\x00" * 320, 16000)
    transport.caller_left("caller left")
    transport.feed_caller_audio(b"\x03\x00" * 320, 16000)  # after the end: ignored
    frames = [f.pcm async for f in transport.incoming()]
    assert frames == [b"\x01\x00" * 320, b"\x02\x00" * 320]

    await transport.close("graph ended")
    await transport.close("again")
    assert link.disconnects == 1 and transport.close_reason == "graph ended"
    assert link.playouts == 0  # the caller had left: nobody to hear the rest
    with pytest.raises(TransportClosed, match="graph ended"):
        await transport.play(AgentAudioFrame(pcm=b"\x00\x00"))
    with pytest.raises(TransportClosed):
        await transport.event("hangup", {})


async def test_closing_while_the_caller_is_there_plays_out_queued_audio_first() -> None:
    link = FakeLink()
    transport = LiveKitTransport(link)
    await transport.close("completed")
    assert (link.playouts, link.disconnects) == (1, 1)


async def test_bad_agent_audio_and_missing_room_are_refused() -> None:
    with pytest.raises(TransportClosed, match="not connected"):
        await LiveKitTransport().play(AgentAudioFrame(pcm=b"\x00\x00"))
    with pytest.raises(ValueError, match="odd"):
        await LiveKitTransport(FakeLink()).play(AgentAudioFrame(pcm=b"\x00"))


async def test_a_server_that_never_answers_times_out_the_join() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept the connection, never answer the upgrade
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    try:
        async with asyncio.timeout(JOIN_CEILING_S):
            with pytest.raises(LiveKitError, match=r"no answer within 0\.5 s"):
                settings = LiveKitSettings(f"ws://{host}:{port}", KEY, SECRET)
                await join_room(settings, "r", connect_timeout_s=0.5)
    finally:
        server.close()
    # the SDK's own attempts go on after the join gave up; they end within this test
    async with asyncio.timeout(JOIN_CEILING_S):
        await abandoned_joins_settled()


class RoomWithCaller:
    """An already-connected room as the link sees it: handlers and participants."""

    def __init__(self, *participants: Any) -> None:
        self.handlers: dict[str, Any] = {}
        self.remote_participants = {p.identity: p for p in participants}

    def on(self, event: str, callback: Any) -> Any:
        self.handlers[event] = callback
        return callback


async def test_a_caller_track_subscribed_before_the_link_is_read() -> None:
    track = audio_track("TR_early")
    publication = SimpleNamespace(track=track, subscribed=True)
    unsubscribed = SimpleNamespace(track=None, subscribed=False)
    caller = SimpleNamespace(
        identity="caller", track_publications={"TR_early": publication, "TR_x": unsubscribed}
    )
    audio = ScriptedAudio()
    transport = LiveKitTransport()
    link = RtcRoomLink(RoomWithCaller(caller), transport, reader=audio)  # type: ignore[arg-type]
    try:
        link.subscribe_existing()
        audio.queue.put_nowait((b"\x05\x00" * 320, 16000))
        assert await next_pcm(transport.incoming()) == b"\x05\x00" * 320
        assert audio.opened == [("TR_early", 16000)]
    finally:
        audio.queue.put_nowait(None)
        await link.source.aclose()


async def test_an_event_the_room_does_not_take_is_dropped_not_waited_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class StuckLink(FakeLink):
        async def publish_data(self, payload: bytes, topic: str) -> None:
            await asyncio.Event().wait()

    monkeypatch.setattr("runtime.voice.livekit_transport.ROOM_OP_TIMEOUT_S", 0.05)
    transport = LiveKitTransport(StuckLink())
    async with asyncio.timeout(JOIN_CEILING_S):
        await transport.event("metrics", {"e2e_ms": 640})
    assert transport.close_reason is None
