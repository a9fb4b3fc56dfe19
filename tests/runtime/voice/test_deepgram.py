"""Deepgram streaming STT through the real SDK against a local server speaking
Deepgram's live websocket protocol (tests/fakes/deepgram_server.py).

Time bounds asserted here are generous ceilings (CPU is shared); the
provider's own timeouts are set small so a failure shows up quickly.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from runtime.voice.providers.base import ProviderError, Transcript
from runtime.voice.providers.deepgram_stt import (
    DeepgramConfig,
    DeepgramStream,
    DeepgramSTT,
    make_deepgram_stt,
)
from schemas.spec import VoiceSettings
from tests.fakes.deepgram_server import (
    FakeDeepgramServer,
    Fault,
    Utterance,
    deepgram_server_fixture,  # noqa: F401  (provides the `deepgram_server` fixture)
)

KEY = "dg-test-key"
#: 100 ms of linear16 audio at 16 kHz.
FRAME = b"\x01\x00" * 1600
#: Ceiling for anything the tests wait on; far above every configured timeout.
CEILING_S = 10.0


def config(server: FakeDeepgramServer, **overrides: object) -> DeepgramConfig:
    fields: dict[str, object] = {
        "api_key": KEY,
        "url": server.url,
        "connect_timeout_s": 5.0,
        "first_result_timeout_s": 5.0,
        "inactivity_timeout_s": 5.0,
        "finalize_timeout_s": 5.0,
    }
    fields.update(overrides)
    return DeepgramConfig(**fields)  # type: ignore[arg-type]


async def next_result(results: AsyncIterator[Transcript]) -> Transcript:
    async with asyncio.timeout(CEILING_S):
        return await anext(results)


async def send_frames(stream: DeepgramStream, count: int) -> None:
    for _ in range(count):
        await stream.send(FRAME)


async def test_interim_then_final_round_trip(deepgram_server: FakeDeepgramServer) -> None:
    deepgram_server.script(
        Utterance("I'd like to book a cleaning.", audio_s=0.6),
        Utterance("next Tuesday", audio_s=0.4, endpoint=True, confidence=0.91),
    )
    stream = await DeepgramSTT(config(deepgram_server, vad_events=True)).open()
    results = stream.interim()
    try:
        await send_frames(stream, 2)
        first = await next_result(results)
        assert not first.final
        assert first.text and "I'd like to book a cleaning.".startswith(first.text)
        await send_frames(stream, 6)
        seen = [first]
        while seen[-1].text != "I'd like to book a cleaning.":
            seen.append(await next_result(results))
        assert all(not t.final for t in seen)
        assert [len(t.text) for t in seen] == sorted(len(t.text) for t in seen)

        turn = await stream.finalize()
        assert turn == Transcript(
            text="I'd like to book a cleaning.", final=True, end_s=0.8, confidence=0.98
        )
        assert await next_result(results) == Transcript(
            text="I'd like to book a cleaning.", final=True, end_s=0.8, confidence=0.98
        )

        # second turn: the server endpoints it itself (speech_final + UtteranceEnd)
        await send_frames(stream, 5)
        second: list[Transcript] = []
        while not second or not second[-1].final:
            second.append(await next_result(results))
        last = second[-1]
        assert (last.text, last.final, last.confidence) == ("next Tuesday", True, 0.91)
        assert last.end_s == pytest.approx(1.2)
        assert all("cleaning" not in t.text for t in second)
        turn = await stream.finalize()
        assert turn.text == "next Tuesday"
        assert turn.final
    finally:
        await stream.close()

    sent_types = [m["type"] for m in deepgram_server.connections[0].sent]
    assert "SpeechStarted" in sent_types and "UtteranceEnd" in sent_types
    assert await anext(results, None) is None  # closed: the iterator ends


async def test_sdk_sends_key_params_audio_and_controls(
    deepgram_server: FakeDeepgramServer,
) -> None:
    deepgram_server.script(Utterance("hello", audio_s=0.2))
    stream = await DeepgramSTT(
        config(deepgram_server, model="nova-2", endpointing_ms=None, sample_rate=16000)
    ).open()
    await send_frames(stream, 3)
    assert (await stream.finalize()).text == "hello"
    await stream.close()

    [conn] = deepgram_server.connections
    assert conn.path == "/v1/listen"
    assert conn.headers["Authorization"] == f"Token {KEY}"
    assert conn.headers.get("x-deepgram-session-id")
    assert conn.query == {
        "model": "nova-2",
        "language": "en",
        "encoding": "linear16",
        "sample_rate": "16000",
        "channels": "1",
        "interim_results": "true",
        "endpointing": "false",
        "smart_format": "true",
        "vad_events": "false",
        "utterance_end_ms": "1000",
    }
    assert bytes(conn.audio) == FRAME * 3
    assert conn.control_types() == ["Finalize", "CloseStream"]
    assert stream.request_id is not None  # from the Metadata sent before closing


async def test_finalize_without_audio_returns_at_once(
    deepgram_server: FakeDeepgramServer,
) -> None:
    stream = await DeepgramSTT(config(deepgram_server)).open()
    try:
        turn = await stream.finalize()
    finally:
        await stream.close()
    assert turn == Transcript(text="", final=True, end_s=0.0, confidence=None)
    assert deepgram_server.connections[0].control_types() == ["CloseStream"]


async def test_finalize_with_nothing_pending_tolerates_no_answer(
    deepgram_server: FakeDeepgramServer,
) -> None:
    # Deepgram may not answer Finalize when nothing significant is buffered.
    deepgram_server.fail(Fault.IGNORE_FINALIZE)
    stream = await DeepgramSTT(config(deepgram_server, finalize_quiet_s=0.05)).open()
    try:
        await send_frames(stream, 2)
        turn = await stream.finalize()
        assert turn.text == "" and turn.final
    finally:
        await stream.close()


async def test_bad_key_is_a_provider_error(deepgram_server: FakeDeepgramServer) -> None:
    stt = DeepgramSTT(config(deepgram_server, api_key="wrong"))
    with pytest.raises(ProviderError, match=r"API key \(HTTP 401\)"):
        await stt.open()
    assert deepgram_server.rejected[0][0] == 401
    assert not deepgram_server.connections


async def test_rejected_parameters_are_a_provider_error(
    deepgram_server: FakeDeepgramServer,
) -> None:
    stt = DeepgramSTT(config(deepgram_server, extra_query={"smart_format": "yes"}))
    with pytest.raises(ProviderError, match="HTTP 400"):
        await stt.open()


async def test_server_closing_surfaces_promptly(deepgram_server: FakeDeepgramServer) -> None:
    deepgram_server.script(Utterance("never finished", audio_s=5.0))
    deepgram_server.fail(Fault.CLOSE, after_bytes=len(FRAME) * 2)
    stream = await DeepgramSTT(config(deepgram_server)).open()
    results = stream.interim()
    try:
        await send_frames(stream, 1)
        assert not (await next_result(results)).final
        await stream.send(FRAME)
        with pytest.raises(ProviderError, match=r"closed: code 1011"):
            await next_result(results)
        with pytest.raises(ProviderError, match="1011"):
            await stream.send(FRAME)
        with pytest.raises(ProviderError, match="1011"):
            await stream.finalize()
    finally:
        await stream.close()


async def test_garbage_from_server_is_a_provider_error(
    deepgram_server: FakeDeepgramServer,
) -> None:
    deepgram_server.fail(Fault.GARBAGE, after_bytes=1)
    stream = await DeepgramSTT(config(deepgram_server)).open()
    try:
        await stream.send(FRAME)
        with pytest.raises(ProviderError, match="not JSON"):
            await next_result(stream.interim())
        with pytest.raises(ProviderError, match="not JSON"):
            await stream.finalize()
    finally:
        await stream.close()


async def test_silent_server_times_out(deepgram_server: FakeDeepgramServer) -> None:
    deepgram_server.fail(Fault.SILENT)
    stream = await DeepgramSTT(config(deepgram_server, first_result_timeout_s=0.2)).open()
    started = time.monotonic()
    try:
        await stream.send(FRAME)
        with pytest.raises(ProviderError, match=r"no result for 0\.2 s"):
            await next_result(stream.interim())
    finally:
        await stream.close()
    assert time.monotonic() - started < CEILING_S


async def test_finalize_is_bounded_when_words_are_pending(
    deepgram_server: FakeDeepgramServer,
) -> None:
    deepgram_server.script(Utterance("a long sentence", audio_s=5.0))
    deepgram_server.fail(Fault.IGNORE_FINALIZE)
    stream = await DeepgramSTT(config(deepgram_server, finalize_timeout_s=0.2)).open()
    results = stream.interim()
    try:
        await stream.send(FRAME)
        assert (await next_result(results)).text == "a"
        async with asyncio.timeout(CEILING_S):
            with pytest.raises(
                ProviderError, match=r"did not finalize the transcript within 0\.2 s"
            ):
                await stream.finalize()
        with pytest.raises(ProviderError):
            await stream.send(FRAME)
    finally:
        await stream.close()


@pytest.fixture
def unresponsive_port() -> Iterator[int]:
    """A TCP port that accepts connections (kernel backlog) but never speaks."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def test_connect_is_bounded(unresponsive_port: int) -> None:
    cfg = DeepgramConfig(
        api_key=KEY,
        url=f"ws://127.0.0.1:{unresponsive_port}",
        connect_timeout_s=0.2,
        close_timeout_s=0.2,
    )
    async with asyncio.timeout(CEILING_S):
        with pytest.raises(ProviderError, match=r"did not accept the stream within 0\.2 s"):
            await DeepgramSTT(cfg).open()


async def test_unreachable_server_is_a_provider_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ProviderError, match="cannot connect to Deepgram"):
        await DeepgramSTT(DeepgramConfig(api_key=KEY, url=f"ws://127.0.0.1:{port}")).open()


async def test_keepalive_when_no_audio_flows(deepgram_server: FakeDeepgramServer) -> None:
    stream = await DeepgramSTT(config(deepgram_server, keepalive_interval_s=0.05)).open()
    try:
        async with asyncio.timeout(CEILING_S):
            while not any("KeepAlive" in c.control_types() for c in deepgram_server.connections):
                await asyncio.sleep(0.02)
    finally:
        await stream.close()


async def test_closed_stream_refuses_audio(deepgram_server: FakeDeepgramServer) -> None:
    stream = await DeepgramSTT(config(deepgram_server)).open()
    await stream.close()
    await stream.close()  # idempotent
    with pytest.raises(ProviderError, match="closed"):
        await stream.send(FRAME)


def test_factory_reads_environment_and_voice_settings() -> None:
    stt = make_deepgram_stt(
        VoiceSettings(stt="deepgram", language="en-GB"),
        env={
            "DEEPGRAM_API_KEY": "k",
            "SWITCHBOARD_DEEPGRAM_URL": "http://127.0.0.1:9/base/",
            "SWITCHBOARD_DEEPGRAM_MODEL": "nova-2",
        },
    )
    assert stt.name == "deepgram" and stt.sample_rate == 16000
    assert (stt.config.api_key, stt.config.model, stt.config.language) == ("k", "nova-2", "en-GB")
    env = stt.config.environment()
    assert env.production == "ws://127.0.0.1:9/base"
    assert env.base == "http://127.0.0.1:9/base"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DEEPGRAM_API_KEY"),
        ({"DEEPGRAM_API_KEY": "k", "SWITCHBOARD_DEEPGRAM_URL": "ftp://x"}, "ws://, wss://"),
        ({"DEEPGRAM_API_KEY": "k", "SWITCHBOARD_DEEPGRAM_URL": "not a url"}, "must be a"),
    ],
)
def test_factory_errors_name_the_problem(env: dict[str, str], message: str) -> None:
    with pytest.raises(ProviderError, match=message):
        make_deepgram_stt(env=env)


def test_config_rejects_bad_options() -> None:
    with pytest.raises(ProviderError, match="utterance_end_ms"):
        DeepgramConfig(api_key=KEY, utterance_end_ms=500)
    with pytest.raises(ProviderError, match="finalize_timeout_s must be positive"):
        DeepgramConfig(api_key=KEY, finalize_timeout_s=0)
    with pytest.raises(ProviderError, match="sample_rate"):
        DeepgramConfig(api_key=KEY, sample_rate=100)


def test_registry_builds_deepgram_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.voice.providers.registry import make_stt, stt_names

    monkeypatch.setenv("DEEPGRAM_API_KEY", "k")
    monkeypatch.delenv("SWITCHBOARD_STT", raising=False)
    assert "deepgram" in stt_names()
    stt = make_stt(VoiceSettings(stt="deepgram", language="de"))
    assert isinstance(stt, DeepgramSTT) and stt.config.language == "de"
