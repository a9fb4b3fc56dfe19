"""ElevenLabs streaming TTS through the real SDK against a local server speaking
ElevenLabs' streaming HTTP API (tests/fakes/elevenlabs_server.py).

Ordering is shown by the fake holding its response, never by timing; the time
ceilings here are generous (CPU is shared), the provider's own bounds small.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

import pytest

from runtime.voice.providers.base import ProviderError
from runtime.voice.providers.elevenlabs_tts import (
    DEFAULT_VOICE,
    ElevenLabsConfig,
    ElevenLabsTTS,
    make_elevenlabs_tts,
)
from schemas.spec import VoiceSettings
from tests.fakes.elevenlabs_server import (
    FakeElevenLabsServer,
    elevenlabs_server_fixture,  # noqa: F401  (provides the `elevenlabs_server` fixture)
    tone,
)

KEY = "el-test-key"
CEILING_S = 10.0
TEXT = "Thanks for calling Bright Smiles. How can I help?"


def provider(server: FakeElevenLabsServer, **overrides: object) -> ElevenLabsTTS:
    fields: dict[str, object] = {"api_key": KEY, "url": server.url}
    fields.update(overrides)
    return ElevenLabsTTS(ElevenLabsConfig(**fields))  # type: ignore[arg-type]


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    async with asyncio.timeout(CEILING_S):
        return [chunk async for chunk in chunks]


async def test_first_chunk_arrives_before_the_server_finishes(
    elevenlabs_server: FakeElevenLabsServer,
) -> None:
    elevenlabs_server.hold_after_first = True
    tts = provider(elevenlabs_server)
    chunks = tts.synthesize(TEXT)
    try:
        async with asyncio.timeout(CEILING_S):
            first = await anext(chunks)
        [request] = elevenlabs_server.requests
        assert first and len(first) % 2 == 0
        assert request.chunks_sent == 1 and not request.finished  # the server is holding
        elevenlabs_server.release()
        rest = await collect(chunks)
    finally:
        await tts.aclose()
    assert request.finished
    audio = first + b"".join(rest)
    assert audio == tone(TEXT, 16000, elevenlabs_server.ms_per_char)
    assert all(len(chunk) % 2 == 0 for chunk in rest)
    assert len(rest) >= 2  # streamed in pieces, not one body


async def test_sdk_sends_key_voice_model_and_pcm_format(
    elevenlabs_server: FakeElevenLabsServer,
) -> None:
    tts = provider(elevenlabs_server, voice_id="voice-42", sample_rate=24000, model_id="m-1")
    try:
        audio = b"".join(await collect(tts.synthesize("Hi.")))
    finally:
        await tts.aclose()
    [request] = elevenlabs_server.requests
    assert request.voice_id == "voice-42"
    assert request.headers["xi-api-key"] == KEY
    assert request.query == {"output_format": "pcm_24000"}
    assert request.body == {"text": "Hi.", "model_id": "m-1"}
    assert audio == tone("Hi.", 24000, elevenlabs_server.ms_per_char)
    assert tts.sample_rate == 24000


async def test_bad_key_is_a_provider_error(elevenlabs_server: FakeElevenLabsServer) -> None:
    tts = provider(elevenlabs_server, api_key="wrong")
    with pytest.raises(ProviderError, match=r"API key \(HTTP 401\): Invalid API key"):
        await collect(tts.synthesize(TEXT))
    await tts.aclose()


@pytest.mark.parametrize("status", [429, 500])
async def test_http_errors_are_provider_errors(
    elevenlabs_server: FakeElevenLabsServer, status: int
) -> None:
    elevenlabs_server.fail_with(status)
    tts = provider(elevenlabs_server)
    with pytest.raises(ProviderError, match=f"HTTP {status}: scripted HTTP {status}"):
        await collect(tts.synthesize(TEXT))
    assert len(elevenlabs_server.requests) == 1  # streaming requests are not retried
    await tts.aclose()


async def test_unknown_voice_is_named(elevenlabs_server: FakeElevenLabsServer) -> None:
    elevenlabs_server.voices = {DEFAULT_VOICE}
    tts = provider(elevenlabs_server, voice_id="nobody")
    with pytest.raises(ProviderError, match="HTTP 404: A voice with the voice_id nobody"):
        await collect(tts.synthesize(TEXT))
    await tts.aclose()


async def test_first_chunk_is_bounded(elevenlabs_server: FakeElevenLabsServer) -> None:
    elevenlabs_server.delay_first()
    tts = provider(elevenlabs_server, first_chunk_timeout_s=0.2)
    try:
        with pytest.raises(ProviderError, match=r"no first audio within 0\.2 s"):
            await collect(tts.synthesize(TEXT))
    finally:
        elevenlabs_server.release()
        await tts.aclose()


async def test_stalled_stream_is_bounded(elevenlabs_server: FakeElevenLabsServer) -> None:
    elevenlabs_server.stall_after(2)
    tts = provider(elevenlabs_server, inactivity_timeout_s=0.2)
    received: list[bytes] = []
    try:
        with pytest.raises(ProviderError, match=r"no further audio within 0\.2 s"):
            async with asyncio.timeout(CEILING_S):
                async for chunk in tts.synthesize(TEXT):
                    received.append(chunk)
    finally:
        elevenlabs_server.release()
        await tts.aclose()
    assert received  # what arrived before the stall was delivered


async def test_dropped_connection_is_a_provider_error(
    elevenlabs_server: FakeElevenLabsServer,
) -> None:
    elevenlabs_server.cut_after(2)
    tts = provider(elevenlabs_server)
    with pytest.raises(ProviderError, match="failed"):
        await collect(tts.synthesize(TEXT))
    await tts.aclose()


async def test_closing_early_aborts_without_waiting(
    elevenlabs_server: FakeElevenLabsServer,
) -> None:
    elevenlabs_server.hold_after_first = True  # the server would hold for a minute
    tts = provider(elevenlabs_server)
    chunks = cast(AsyncGenerator[bytes, None], tts.synthesize(TEXT))
    try:
        async with asyncio.timeout(CEILING_S):
            await anext(chunks)
            await chunks.aclose()  # a barge-in drops the rest
        assert not elevenlabs_server.requests[0].finished
    finally:
        elevenlabs_server.release()
        await tts.aclose()


async def test_blank_text_makes_no_request(elevenlabs_server: FakeElevenLabsServer) -> None:
    tts = provider(elevenlabs_server)
    assert await collect(tts.synthesize("  \n")) == []
    assert elevenlabs_server.requests == []


def test_one_provider_serves_several_event_loops(elevenlabs_server: FakeElevenLabsServer) -> None:
    tts = provider(elevenlabs_server)

    async def speak() -> bytes:
        try:
            return b"".join(await collect(tts.synthesize("Hello.")))
        finally:
            await tts.aclose()

    assert asyncio.run(speak()) == asyncio.run(speak())
    assert len(elevenlabs_server.requests) == 2


def test_factory_reads_environment_and_voice_settings() -> None:
    env = {"ELEVENLABS_API_KEY": "k", "SWITCHBOARD_ELEVENLABS_URL": "http://127.0.0.1:9"}
    tts = make_elevenlabs_tts(VoiceSettings(tts="elevenlabs", voice="graph-voice"), env=env)
    assert tts.name == "elevenlabs" and tts.sample_rate == 16000
    assert (tts.config.api_key, tts.config.url) == ("k", "http://127.0.0.1:9")
    assert (tts.config.voice_id, tts.config.model_id) == ("graph-voice", "eleven_flash_v2_5")
    env["SWITCHBOARD_ELEVENLABS_VOICE"] = "env-voice"
    env["SWITCHBOARD_ELEVENLABS_MODEL"] = "eleven_turbo_v2_5"
    tts = make_elevenlabs_tts(VoiceSettings(voice="graph-voice"), env=env)
    assert (tts.config.voice_id, tts.config.model_id) == ("env-voice", "eleven_turbo_v2_5")
    assert make_elevenlabs_tts(env={"ELEVENLABS_API_KEY": "k"}).config.voice_id == DEFAULT_VOICE


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"api_key": ""}, "ELEVENLABS_API_KEY"),
        ({"url": "ws://x"}, "http:// or https://"),
        ({"sample_rate": 11025}, "not 11025"),
        ({"voice_id": " "}, "voice_id is empty"),
        ({"first_chunk_timeout_s": 0}, "positive"),
    ],
)
def test_config_errors_name_the_problem(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"api_key": KEY, **fields}
    with pytest.raises(ProviderError, match=message):
        ElevenLabsConfig(**values)  # type: ignore[arg-type]


def test_registry_builds_elevenlabs_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.voice.providers.registry import make_tts, tts_names

    monkeypatch.setenv("ELEVENLABS_API_KEY", "k")
    monkeypatch.setenv("SWITCHBOARD_TTS", "elevenlabs")
    monkeypatch.delenv("SWITCHBOARD_ELEVENLABS_VOICE", raising=False)
    assert "elevenlabs" in tts_names()
    tts = make_tts(VoiceSettings(voice="v-1"))
    assert isinstance(tts, ElevenLabsTTS) and tts.config.voice_id == "v-1"
