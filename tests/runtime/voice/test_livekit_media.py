"""LiveKit media end to end: the real `livekit` SDK (libwebrtc over FFI) joins
a local fake SFU (`tests.fakes.livekit_sfu`, aiortc on the server side) through
`join_room()`, and audio and data actually flow over ICE/DTLS/SRTP/SCTP.

Timing bounds are generous for a loaded 2-core machine; the media runs in real
time (a WebRTC session has no fake clock)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable

import pytest
from aioice.ice import get_host_addresses
from livekit.protocol import models

from runtime.voice.frames import AgentAudioFrame, UserAudioFrame
from runtime.voice.livekit_tokens import LiveKitSettings
from runtime.voice.livekit_transport import (
    EVENTS_TOPIC,
    LiveKitError,
    LiveKitTransport,
    abandoned_joins_settled,
    join_room,
)
from runtime.voice.pipeline import VoicePipeline
from runtime.voice.providers import standin
from runtime.voice.stages.base import PipelineConfig
from tests.fakes.livekit_sfu import FakeSfu
from tests.fakes.twilio_media import dominant_hz, tone_pcm
from tests.runtime.fixtures.calls import compile_graphs, graph, session

KEY = "APIswitchboardtest"
SECRET = "a-test-secret-that-is-long-enough-for-hs256!"
#: Upper bound on one test's media exchange; each normally takes a few seconds.
CEILING_S = 30.0
#: Agent audio louder than this RMS counts as speech (the tones are ~7000 RMS).
LOUD_RMS = 1000.0


@pytest.fixture(autouse=True)
def _non_loopback_interface() -> None:
    """ICE here pairs host candidates, which libwebrtc and aioice never take
    from loopback: without another interface no media can flow (CI must have one)."""
    if not get_host_addresses(use_ipv4=True, use_ipv6=True):
        reason = "no non-loopback network interface for ICE host candidates"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


async def join(
    sfu: FakeSfu, *, identity: str = "agent", caller_identity: str | None = None
) -> LiveKitTransport:
    settings = LiveKitSettings(sfu.url, KEY, SECRET)
    return await join_room(
        settings,
        "call-9",
        identity=identity,
        caller_identity=caller_identity,
        connect_timeout_s=20,
    )


async def caller_audio(frames: AsyncIterator[UserAudioFrame], ms: int) -> bytes:
    """`ms` of caller audio from the first non-silent frame on (16 kHz PCM)."""
    pcm = b""
    async for frame in frames:
        assert frame.sample_rate == 16000
        if pcm or any(frame.pcm):
            pcm += frame.pcm
        if len(pcm) >= ms * 32:
            return pcm[: ms * 32]
    raise AssertionError(f"caller audio ended after {len(pcm) // 32} ms")


async def play_tone(transport: LiveKitTransport, hz: float, ms: int) -> None:
    """Play a tone the way the pipeline does: 20 ms TTS chunks, then a sentence end."""
    pcm = tone_pcm(hz, ms, 16000)
    for i in range(0, len(pcm), 640):
        await transport.play(AgentAudioFrame(pcm=pcm[i : i + 640], message_id="m"))
    await transport.play(AgentAudioFrame(pcm=b"", message_id="m", last_of_text=True))


async def until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` (media runs in real time) until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def loud_ms(sfu: FakeSfu) -> float:
    return sum(len(a.pcm) / 96 for a in sfu.agent_audio if a.rms > LOUD_RMS)


async def test_the_agent_hears_the_caller_is_heard_and_sends_events() -> None:
    async with asyncio.timeout(CEILING_S), FakeSfu(KEY, SECRET) as sfu:
        transport = await join(sfu, identity="agent-9", caller_identity="caller")
        try:
            (session,) = sfu.sessions
            assert session.claims.identity == "agent-9"
            assert session.join is not None and session.join.connection_settings.auto_subscribe
            (published,) = sfu.published
            assert published.type == models.TrackType.AUDIO
            assert published.source == models.TrackSource.MICROPHONE

            # caller -> agent: a 440 Hz tone arrives as 16 kHz PCM
            sfu.caller.say(tone_pcm(440, 1500, 48000))
            heard = await caller_audio(transport.incoming(), 600)
            assert abs(dominant_hz(heard, 16000) - 440) < 5

            # agent -> caller: a 1 kHz tone arrives at the SFU as Opus, all of it
            await play_tone(transport, 1000, 800)
            await until(lambda: loud_ms(sfu) >= 780, 10, "the agent's audio at the SFU")
            loud = b"".join(a.pcm for a in sfu.agent_audio if a.rms > LOUD_RMS)
            assert abs(dominant_hz(loud, 48000) - 1000) < 10

            # events: a reliable data packet on the events topic
            await transport.event("transcript", {"text": "hello", "final": True})
            await until(lambda: sfu.data, 10, "the event's data packet")
            (label, packet) = sfu.data[0]
            assert label == "_reliable"
            assert packet.participant_identity == "agent-9"
            assert packet.user.topic == EVENTS_TOPIC
            assert json.loads(packet.user.payload) == {
                "type": "transcript",
                "text": "hello",
                "final": True,
            }
        finally:
            await transport.close("test over")
        await until(lambda: "leave" in session.requests, 5, "the agent's leave request")


async def test_clear_stops_the_agents_audio_at_the_sfu() -> None:
    async with asyncio.timeout(CEILING_S), FakeSfu(KEY, SECRET) as sfu:
        transport = await join(sfu)
        try:
            await play_tone(transport, 700, 900)  # fits the link's 1000 ms queue
            await until(lambda: sfu.last_loud_at(LOUD_RMS) is not None, 10, "agent audio")
            assert transport.queued_ms() > 300
            await transport.clear()
            cleared_at = time.monotonic()
            assert transport.queued_ms() == 0.0
            await asyncio.sleep(1.0)
            last_loud = sfu.last_loud_at(LOUD_RMS)
            assert last_loud is not None
            # what was in flight when clear() ran may still land, nothing queued after it
            assert last_loud - cleared_at < 0.4
            assert loud_ms(sfu) < 700  # of 900 ms played
        finally:
            await transport.close()


async def test_closing_right_after_the_last_words_still_sends_them() -> None:
    async with asyncio.timeout(CEILING_S), FakeSfu(KEY, SECRET) as sfu:
        transport = await join(sfu)
        await play_tone(transport, 500, 480)  # queued in the audio source, not yet sent
        await transport.close("completed")
        await until(lambda: loud_ms(sfu) >= 460, 5, "the last words at the SFU")
        await until(lambda: "leave" in sfu.sessions[0].requests, 5, "the agent's leave")


@pytest.mark.parametrize("ending", ["caller leaves", "room closed"])
async def test_the_caller_leaving_or_the_room_closing_ends_incoming(ending: str) -> None:
    async with asyncio.timeout(CEILING_S), FakeSfu(KEY, SECRET) as sfu:
        transport = await join(sfu)
        try:
            sfu.caller.say(tone_pcm(300, 400, 48000))
            frames = transport.incoming()
            await caller_audio(frames, 200)
            if ending == "caller leaves":
                await sfu.caller_leaves()
            else:
                await sfu.close_room()
            async with asyncio.timeout(10):
                rest = [f async for f in frames]
            assert all(f.sample_rate == 16000 for f in rest)
            assert transport.close_reason is None  # nothing closed it from this side
        finally:
            await transport.close()


@pytest.mark.parametrize("given_up_by", ["timeout", "cancel"])
async def test_a_join_that_completes_after_it_was_given_up_leaves_the_room(
    given_up_by: str,
) -> None:
    async with asyncio.timeout(CEILING_S), FakeSfu(KEY, SECRET, join_delay_s=1.0) as sfu:
        settings = LiveKitSettings(sfu.url, KEY, SECRET)
        if given_up_by == "timeout":
            with pytest.raises(LiveKitError, match=r"no answer within 0\.3 s"):
                await join_room(settings, "call-9", connect_timeout_s=0.3)
        else:
            joining = asyncio.create_task(join_room(settings, "call-9"))
            await asyncio.sleep(0.3)
            joining.cancel()
            with pytest.raises(asyncio.CancelledError):
                await joining
        await abandoned_joins_settled()
        # the SDK did join, late; nobody would drive that agent, so it left
        (session,) = sfu.sessions
        await until(lambda: "leave" in session.requests, 5, "the late agent's leave request")


FLOW = """
schema: switchboard/v1
id: livekit-call
name: LiveKit call
start: ask
voice: {end_of_turn_ms: 300}
nodes:
  ask: {type: collect, slot: name, kind: text, prompt: "Hello! What is your name?", next: bye}
  bye: {type: end, text: "Goodbye."}
"""
#: The stand-in TTS speaks a -30 dBFS tone (~730 RMS); silence decodes near 0.
SPOKEN_RMS = 300.0
#: Stand-in speech per sentence: round(characters * 60 ms / 200 ms) chunks of 200 ms.
QUESTION_MS = 400 + 1000  # "Hello!", "What is your name?"
GOODBYE_MS = 400  # "Goodbye."


def quiet_for(sfu: FakeSfu, seconds: float) -> bool:
    last = sfu.last_loud_at(SPOKEN_RMS)
    return last is not None and time.monotonic() - last > seconds


async def test_a_call_through_the_pipeline_over_livekit() -> None:
    spec = graph(FLOW)
    call = session(compile_graphs(spec))
    async with asyncio.timeout(CEILING_S), FakeSfu(KEY, SECRET) as sfu:
        transport = await join(sfu, caller_identity="caller")
        pipeline = VoicePipeline(
            call,
            transport,
            vad=standin.EnergyVAD(),
            stt=standin.StandinSTT(),
            tts=standin.StandinTTS(),
            config=PipelineConfig.for_graph(spec),
        )
        running = asyncio.create_task(pipeline.run())
        try:
            # the caller waits for the agent's question, then answers
            await until(lambda: quiet_for(sfu, 0.6), 15, "the agent's question")
            asked = [a.at for a in sfu.agent_audio if a.rms > SPOKEN_RMS]
            answered_at = time.monotonic()
            sfu.caller.say(tone_pcm(440, 800, 48000))
            report = await running
            # the pipeline closed the transport; the agent's leave reaches the SFU
            await until(lambda: "leave" in sfu.sessions[0].requests, 5, "the agent's leave")
        finally:
            if not running.done():
                running.cancel()
                await transport.close("test over")
    assert report.outcome == "completed"
    assert [e["text"] for e in report.of_type("caller")] == [standin.STANDIN_TEXT]
    assert [e["text"] for e in report.of_type("agent")] == [
        "Hello! What is your name?",
        "Goodbye.",
    ]
    # all of the question and of the goodbye reached the room (a ramp frame may be quiet)
    assert len(asked) * 20 >= QUESTION_MS - 40
    goodbye = [a for a in sfu.agent_audio if a.at > answered_at and a.rms > SPOKEN_RMS]
    assert len(goodbye) * 20 >= GOODBYE_MS - 20  # the call ends after it is on the wire
    # the pipeline's events went to the room as data packets
    sent = [json.loads(p.user.payload)["type"] for _, p in sfu.data]
    assert {"caller", "agent", "hangup"} <= set(sent), sent
