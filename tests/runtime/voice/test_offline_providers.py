"""The embedded providers: Silero VAD, faster-whisper STT, eSpeak NG TTS, and
choosing providers by name. Models load once for the whole module."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from runtime.voice import audio
from runtime.voice.providers import espeak_tts, registry, whisper_stt
from runtime.voice.providers.base import ProviderError, Transcript
from runtime.voice.providers.espeak_tts import EspeakTTS
from runtime.voice.providers.registry import ProviderConfigError
from runtime.voice.providers.silero_vad import FRAME_SAMPLES, SileroVAD
from runtime.voice.providers.whisper_stt import WhisperSTT
from schemas.spec import VoiceSettings

BOOKING = "I need a cleaning next Tuesday"
LONG_LINE = "Hello, I would like to book a cleaning for next Tuesday morning please."
#: Several minutes of speech: long enough that synthesis visibly streams.
LONG_TEXT = " ".join(
    f"Sentence number {i} of a long answer about opening hours and parking." for i in range(40)
)


@pytest.fixture(scope="module")
def tts() -> EspeakTTS:
    return EspeakTTS()


@pytest.fixture(scope="module")
def booking_16k(tts: EspeakTTS) -> bytes:
    return audio.resample(asyncio.run(tts.render(BOOKING)), tts.sample_rate, 16000)


@pytest.fixture(scope="module")
def long_line_16k(tts: EspeakTTS) -> bytes:
    return audio.resample(asyncio.run(tts.render(LONG_LINE)), tts.sample_rate, 16000)


@pytest.fixture(scope="module")
def whisper() -> WhisperSTT:
    whisper_stt.load_model()  # once per process; later loads are cache hits
    return WhisperSTT()


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


class _Gate:
    """Holds the eSpeak worker inside the library callback after the first
    chunk until the test lets it go: what the consumer sees meanwhile was
    streamed while synthesis was still running."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.release = threading.Event()
        self.waited_ok: bool | None = None
        self.chunks = 0
        self.threads: set[str] = set()
        self.lock_held_at_first_chunk: bool | None = None

    def __call__(self, loop: Any, queue: Any, item: object) -> bool:
        if not isinstance(item, bytes):
            return bool(self.real(loop, queue, item))
        self.chunks += 1
        self.threads.add(threading.current_thread().name)
        first = self.chunks == 1
        if first:
            self.lock_held_at_first_chunk = espeak_tts._Engine.lock.locked()
        delivered = bool(self.real(loop, queue, item))
        if first:
            self.waited_ok = self.release.wait(timeout=30)
        return delivered


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Gate]:
    g = _Gate(espeak_tts._post)
    monkeypatch.setattr(espeak_tts, "_post", g)
    yield g
    g.release.set()


# --- eSpeak NG ---------------------------------------------------------------


async def test_espeak_produces_speech_of_plausible_duration(tts: EspeakTTS) -> None:
    assert tts.sample_rate == 22050
    pcm = await tts.render(BOOKING)
    seconds = audio.duration_s(pcm, tts.sample_rate)
    # Six words at 160 words per minute is ~2.3 s, plus the end-of-sentence pause.
    assert 1.2 < seconds < 4.0
    assert audio.rms_dbfs(pcm) > -35
    assert await tts.render("   ") == b""


async def test_espeak_streams_the_first_chunk_before_synthesis_ends(
    tts: EspeakTTS, gate: _Gate
) -> None:
    chunks = tts.synthesize(LONG_TEXT)
    first = await asyncio.wait_for(anext(chunks), timeout=30)
    assert first and len(first) % 2 == 0
    # The worker is still parked inside the C callback: the first chunk reached
    # us while the library was in the middle of the text.
    assert gate.chunks == 1
    assert gate.lock_held_at_first_chunk is True
    gate.release.set()
    rest = [chunk async for chunk in chunks]
    assert gate.waited_ok is True
    assert audio.duration_s(first + b"".join(rest), tts.sample_rate) > 60
    assert all(name.startswith("espeak") for name in gate.threads)


async def test_espeak_stops_synthesising_when_the_listener_stops(
    tts: EspeakTTS, gate: _Gate
) -> None:
    gate.release.set()
    full_chunks = len([c async for c in tts.synthesize(LONG_TEXT)])
    gate.chunks = 0
    gate.release.clear()
    chunks = tts.synthesize(LONG_TEXT)
    await asyncio.wait_for(anext(chunks), timeout=30)
    await chunks.aclose()  # barge-in: the caller stopped listening
    gate.release.set()
    # The library aborts at its next buffer and frees the engine for others.
    after = [c async for c in tts.synthesize(BOOKING)]
    aborted_chunks = gate.chunks - len(after)  # one worker: the aborted job ran first
    assert full_chunks > 100
    assert aborted_chunks <= 2
    assert audio.duration_s(b"".join(after), tts.sample_rate) > 1.2


async def test_concurrent_syntheses_do_not_mix_their_audio(tts: EspeakTTS) -> None:
    short, long = "Yes.", LONG_LINE
    alone = [len(await tts.render(text)) for text in (short, long)]
    together = await asyncio.gather(tts.render(short), tts.render(long), tts.render(short))
    # eSpeak varies lengths by a few samples from run to run; mixed streams
    # would be off by seconds.
    assert len(together[0]) == pytest.approx(alone[0], rel=0.02)
    assert len(together[1]) == pytest.approx(alone[1], rel=0.02)
    assert len(together[2]) == pytest.approx(alone[0], rel=0.02)


def test_espeak_rejects_unknown_voices_and_bad_settings() -> None:
    with pytest.raises(ProviderError, match="no voice named 'klingon-xx'"):
        EspeakTTS(voice="klingon-xx")
    with pytest.raises(ProviderError, match="no voice named 'klingon-xx'"):
        EspeakTTS(voice="klingon-xx")  # cached answer, same message
    with pytest.raises(ProviderError, match="rate must be 80-450"):
        EspeakTTS(rate=20)
    with pytest.raises(ProviderError, match="pitch"):
        EspeakTTS(pitch=101)
    assert EspeakTTS(voice="en-us", rate=200).voice == "en-us"


# --- Silero VAD ----------------------------------------------------------------


def test_vad_hears_synthesized_speech(vad: SileroVAD, booking_16k: bytes) -> None:
    probs = vad.clone().process(booking_16k)
    assert len(probs) == len(booking_16k) // (FRAME_SAMPLES * 2)
    assert max(probs) > 0.9
    assert sum(p > 0.5 for p in probs) / len(probs) > 0.4


@pytest.mark.parametrize("level_dbfs", [None, -60.0, -45.0])
def test_vad_ignores_silence_and_low_noise(vad: SileroVAD, level_dbfs: float | None) -> None:
    if level_dbfs is None:
        pcm = audio.silence(2000, 16000)
    else:
        noise = np.random.default_rng(7).normal(0.0, 10 ** (level_dbfs / 20), 32000)
        pcm = audio.float_to_pcm(noise)
    assert max(vad.clone().process(pcm)) < 0.3


def test_vad_matches_faster_whisper_batch_inference(vad: SileroVAD, booking_16k: bytes) -> None:
    from faster_whisper.vad import get_vad_model

    samples = audio.pcm_to_float(booking_16k)
    whole = samples[: samples.size - samples.size % FRAME_SAMPLES]
    reference = np.asarray(get_vad_model()(whole)).reshape(-1)
    ours = np.array(vad.clone().process(booking_16k))
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-3


def test_vad_state_is_per_clone_and_chunking_does_not_matter(
    vad: SileroVAD, booking_16k: bytes
) -> None:
    fresh = vad.clone().process(booking_16k)
    busy = vad.clone()
    busy.process(booking_16k[::-1])  # some unrelated history
    assert vad.clone().process(booking_16k) == fresh
    busy.reset()
    odd = [
        p for i in range(0, len(booking_16k), 999) for p in busy.process(booking_16k[i : i + 999])
    ]
    assert odd == pytest.approx(fresh, abs=1e-6)
    with pytest.raises(ValueError, match="512 samples"):
        vad.clone().speech_probability(b"\x00" * 100)


# --- faster-whisper ------------------------------------------------------------


async def test_whisper_transcribes_synthesized_speech(
    whisper: WhisperSTT, booking_16k: bytes
) -> None:
    stream = await whisper.open()
    for i in range(0, len(booking_16k), 3200):
        await stream.send(booking_16k[i : i + 3200])
    result = await stream.finalize()
    assert result.final
    assert "cleaning" in result.text.lower() and "tuesday" in result.text.lower()
    assert result.end_s == pytest.approx(audio.duration_s(booking_16k, 16000))
    assert result.confidence is not None and 0 < result.confidence <= 1
    # The stream is ready for the next turn and starts it empty.
    assert (await stream.finalize()).text == ""
    await stream.close()


async def test_whisper_gives_growing_interim_results(long_line_16k: bytes) -> None:
    # Each decode costs about the same (Whisper pads to 30 s): a 1 s cadence
    # keeps the test short.
    stream = await WhisperSTT(interim_every_ms=1000).open()
    seen: list[Transcript] = []

    async def collect() -> None:
        async for result in stream.interim():
            seen.append(result)

    collector = asyncio.create_task(collect())
    chunk = audio.bytes_for_ms(100, 16000)
    for i in range(0, len(long_line_16k), chunk):
        await stream.send(long_line_16k[i : i + chunk])
        # Real time on a fast machine: the previous interim is done by the next chunk.
        await stream.wait_interim()
    final = await stream.finalize()
    await stream.close()
    await asyncio.wait_for(collector, timeout=10)
    seconds = audio.duration_s(long_line_16k, 16000)
    assert len(seen) >= 2
    assert len(seen) <= seconds / 1.0  # at most one per second of audio
    assert all(not r.final for r in seen)
    ends = [r.end_s for r in seen]
    assert ends == sorted(ends) and ends[-1] <= final.end_s
    assert len(seen[-1].text) > len(seen[0].text)
    assert "cleaning" in final.text.lower()


async def test_whisper_interims_can_be_turned_off(long_line_16k: bytes) -> None:
    stream = await WhisperSTT(interim_every_ms=0).open()
    for i in range(0, len(long_line_16k), 3200):
        await stream.send(long_line_16k[i : i + 3200])
        await stream.wait_interim()
    await stream.close()
    assert [r async for r in stream.interim()] == []
    with pytest.raises(ProviderError, match="closed"):
        await stream.send(b"\x00\x00")


async def test_whisper_decodes_off_the_event_loop(
    whisper: WhisperSTT, booking_16k: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = whisper_stt.decode

    def recording(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(whisper_stt, "decode", recording)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    result = await whisper.transcribe(booking_16k)
    done.set()
    await task
    assert "tuesday" in result.text.lower()
    assert threads and all(name.startswith("whisper") for name in threads)
    # A decode takes hundreds of ms; on the loop it would allow no tick at all.
    assert ticks >= 3


async def test_whisper_model_problems_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ProviderError, match=r"missing model\.bin"):
        whisper_stt.load_model(tmp_path)
    monkeypatch.setenv(whisper_stt.ENV_MODEL, str(tmp_path / "nowhere"))
    with pytest.raises(ProviderError, match="does not exist"):
        await WhisperSTT().open()
    monkeypatch.delenv(whisper_stt.ENV_MODEL)
    with pytest.raises(ProviderError, match="English-only"):
        await WhisperSTT(language="fr").open()
    monkeypatch.setenv(whisper_stt.ENV_THREADS, "many")
    with pytest.raises(ProviderError, match="whole number"):
        whisper_stt.default_threads()


# --- registry -------------------------------------------------------------------


def test_registry_defaults_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(registry.ENV_STT, raising=False)
    monkeypatch.delenv(registry.ENV_TTS, raising=False)
    stt = registry.make_stt()
    tts = registry.make_tts(VoiceSettings(voice="en-us"))
    assert (stt.name, stt.sample_rate) == ("whisper", 16000)
    assert isinstance(tts, EspeakTTS) and tts.voice == "en-us"
    vad = registry.make_vad()
    assert (vad.sample_rate, vad.frame_samples) == (16000, 512)
    assert {"whisper"} <= set(registry.stt_names())
    assert {"espeak"} <= set(registry.tts_names())


def test_environment_overrides_the_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[VoiceSettings] = []

    class Fake:
        name = "fake"
        sample_rate = 8000

    def factory(settings: VoiceSettings) -> Any:
        made.append(settings)
        return Fake()

    monkeypatch.setattr(registry, "_TTS", dict(registry._TTS))
    registry.register_tts("Fake-Voice", factory)
    monkeypatch.setenv(registry.ENV_TTS, "fake-voice")
    settings = VoiceSettings(tts="espeak", voice="x")
    assert registry.make_tts(settings).name == "fake"
    assert made == [settings]
    # Offline override of a cloud voice: eSpeak ignores the other vendor's voice id.
    monkeypatch.setenv(registry.ENV_TTS, "espeak")
    cloud = VoiceSettings(tts="elevenlabs", voice="JBFqnCBsd6RMkjVDRZzb")
    offline = registry.make_tts(cloud)
    assert isinstance(offline, EspeakTTS) and offline.voice == espeak_tts.DEFAULT_VOICE
    monkeypatch.setenv(registry.ENV_TTS, "nobody")
    with pytest.raises(
        ProviderConfigError, match=r"unknown TTS provider 'nobody'.*known: .*espeak"
    ):
        registry.make_tts(settings)


def test_unknown_names_are_imported_lazily_by_convention(monkeypatch: pytest.MonkeyPatch) -> None:
    imported: list[str] = []

    class Fake:
        name = "acme"
        sample_rate = 16000

    def fake_import(module: str) -> ModuleType:
        imported.append(module)
        if module.endswith(".acme_stt"):
            registry.register_stt("acme", lambda settings: Fake())
            return ModuleType(module)
        if module.endswith(".broken_stt"):
            raise ModuleNotFoundError("No module named 'acme_sdk'", name="acme_sdk")
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    monkeypatch.setattr(registry, "_STT", dict(registry._STT))
    monkeypatch.setattr(registry.importlib, "import_module", fake_import)
    monkeypatch.delenv(registry.ENV_STT, raising=False)
    assert registry.make_stt(VoiceSettings(stt="acme")).name == "acme"
    assert imported == ["runtime.voice.providers.acme_stt"]
    with pytest.raises(
        ProviderConfigError, match="'broken' is unavailable: No module named 'acme_sdk'"
    ):
        registry.make_stt(VoiceSettings(stt="broken"))
    with pytest.raises(ProviderConfigError, match="unknown STT provider 'ghost'"):
        registry.make_stt(VoiceSettings(stt="ghost"))
    with pytest.raises(ProviderConfigError, match="not a provider name"):
        registry.make_stt(VoiceSettings(stt="../etc"))
