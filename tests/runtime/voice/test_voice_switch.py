"""The voice changes with the agent: after a handoff the specialist's lines are
spoken with the specialist's `voice:` settings, and the handing agent's voice
comes back when the call returns (issue 4, voice pipeline side)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from runtime.voice.local import CallerLine, LocalTransport
from runtime.voice.pipeline import VoicePipeline
from runtime.voice.providers.base import ProviderError, TTSProvider
from runtime.voice.providers.elevenlabs_tts import (
    DEFAULT_VOICE,
    ENV_VOICE,
    ElevenLabsConfig,
    ElevenLabsTTS,
)
from runtime.voice.providers.espeak_tts import EspeakTTS
from runtime.voice.providers.registry import ENV_TTS
from runtime.voice.stages.base import PipelineConfig
from runtime.voice.voices import Voices
from schemas.spec import VoiceSettings
from tests.fakes.elevenlabs_server import (
    FakeElevenLabsServer,
    elevenlabs_server_fixture,  # noqa: F401  (provides the `elevenlabs_server` fixture)
)
from tests.runtime.fixtures.calls import compile_graphs, graph, session
from tests.runtime.voice.fakes import RATE, Codebook, FakeCallerTTS, FakeSTT, FakeVAD

DESK = """
schema: switchboard/v1
id: desk
name: Desk
start: hello
voice: {voice: en, end_of_turn_ms: 400}
nodes:
  hello: {type: say, text: "Hello from the desk.", next: ask}
  ask: {type: collect, slot: topic, kind: text, prompt: "What is it about?", next: go}
  go: {type: handoff, graph: helper, say: "Let me transfer you.", return_to: back}
  back: {type: collect, slot: more, kind: text, prompt: "Back at the desk. Anything else?",
         next: bye}
  bye: {type: end, text: "Goodbye."}
"""
HELPER = """
schema: switchboard/v1
id: helper
name: Helper
start: speak
voice: {voice: en-us}
nodes:
  speak: {type: collect, slot: detail, kind: text, prompt: "Helper here. Tell me more.",
          next: back}
  back: {type: return, otherwise: done}
  done: {type: end}
"""


class VoiceLog(list[tuple[str, str]]):
    """(voice, text) of every sentence synthesized, in order."""


class RecordingTTS:
    """A fake TTS with voices: 100 ms of tone per word, recording which voice
    said what; `with_voice` gives a sibling writing to the same log."""

    name = "espeak"  # stands for the vendor the graphs choose
    sample_rate = RATE

    def __init__(self, voice: str, log: VoiceLog) -> None:
        self.voice = voice
        self.log = log

    def with_voice(self, settings: VoiceSettings) -> RecordingTTS:
        return RecordingTTS(settings.voice or "default", self.log)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.log.append((self.voice, text))
        n = RATE // 10
        tone = (2000 * np.sin(2 * np.pi * 330 * np.arange(n) / RATE)).astype("<i2")
        for _ in text.split():
            yield tone.tobytes()


@pytest.mark.looptime
async def test_the_specialist_speaks_with_its_voice_and_the_desk_gets_its_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_TTS, raising=False)
    desk, helper = graph(DESK), graph(HELPER)
    call = session(compile_graphs(desk, helper))
    codebook = Codebook()
    log = VoiceLog()
    transport = LocalTransport(
        [CallerLine("billing"), CallerLine("a double charge"), CallerLine("no")],
        caller_tts=FakeCallerTTS(codebook),
        wait_timeout_s=60,
    )
    pipeline = VoicePipeline(
        call,
        transport,
        vad=FakeVAD(),
        stt=FakeSTT(codebook),
        tts=RecordingTTS("en", log),
        config=PipelineConfig.for_graph(desk),
    )
    report = await pipeline.run()
    assert report.outcome == "completed"
    handoffs = report.of_type("handoff")
    assert [(h["to"], h["voice"]["voice"]) for h in handoffs] == [
        ("helper", "en-us"),
        ("desk", "en"),
    ]
    assert list(log) == [
        ("en", "Hello from the desk."),
        ("en", "What is it about?"),
        # The handoff line is the desk's own: said before the specialist takes over.
        ("en", "Let me transfer you."),
        ("en-us", "Helper here."),
        ("en-us", "Tell me more."),
        ("en", "Back at the desk."),
        ("en", "Anything else?"),
        ("en", "Goodbye."),
    ]


class FixedTTS:
    """A one-voice TTS of another vendor (no `with_voice`)."""

    sample_rate = RATE

    def __init__(self, name: str) -> None:
        self.name = name

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        yield b"\x00\x00"


def test_voices_by_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_TTS, raising=False)
    desk = graph(DESK)
    helper = graph(HELPER)
    cloud = graph(
        HELPER.replace("id: helper", "id: cloud").replace(
            "voice: {voice: en-us}", "voice: {tts: elevenlabs, voice: v-9}"
        )
    )
    same = graph(
        HELPER.replace("id: helper", "id: same").replace(
            "voice: {voice: en-us}", "voice: {voice: en}"
        )
    )
    built: list[VoiceSettings] = []

    def factory(settings: VoiceSettings) -> TTSProvider:
        built.append(settings)
        return FixedTTS(settings.tts)

    base = RecordingTTS("en", VoiceLog())
    agents = {g.id: g for g in (desk, helper, cloud, same)}
    voices = Voices(base, agents, root="desk", factory=factory)
    assert voices.for_agent("desk") is base
    assert voices.for_agent("") is base and voices.for_agent("nobody") is base
    assert voices.for_agent("same") is base  # the same voice: the call's own provider
    switched = voices.for_agent("helper")
    assert isinstance(switched, RecordingTTS) and switched.voice == "en-us"
    assert voices.for_agent("helper") is switched  # resolved once
    other = voices.for_agent("cloud")  # another vendor: built from its settings
    assert other.name == "elevenlabs" and [s.voice for s in built] == ["v-9"]
    # A provider with one voice keeps speaking with it.
    assert Voices(FixedTTS("espeak"), agents, root="desk").for_agent("helper").name == "espeak"


def test_an_unusable_voice_falls_back_to_the_calls_voice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_TTS, raising=False)
    desk = graph(DESK)
    odd = graph(HELPER.replace("voice: {voice: en-us}", "voice: {voice: no-such-voice-xx}"))
    base = EspeakTTS(voice="en")
    assert Voices(base, {"desk": desk, "helper": odd}, root="desk").for_agent("helper") is base


async def test_espeak_with_voice_speaks_differently() -> None:
    base = EspeakTTS(voice="en")
    us = base.with_voice(VoiceSettings(voice="en-us"))
    assert us.voice == "en-us" and (us.rate, us.pitch) == (base.rate, base.pitch)
    assert base.with_voice(VoiceSettings(voice="en")) is base
    # A voice chosen for another vendor means nothing to eSpeak: its default.
    assert base.with_voice(VoiceSettings(tts="elevenlabs", voice="JBFq")) is base
    text = "Your appointment is on Tuesday."
    assert await base.render(text) != await us.render(text)
    with pytest.raises(ProviderError, match="no voice named"):
        base.with_voice(VoiceSettings(voice="no-such-voice-xx"))


async def test_elevenlabs_with_voice_requests_the_new_voice(
    elevenlabs_server: FakeElevenLabsServer,
) -> None:
    tts = ElevenLabsTTS(
        ElevenLabsConfig(
            api_key=elevenlabs_server.api_key, url=elevenlabs_server.url, voice_id="v-1"
        )
    )
    other = tts.with_voice(VoiceSettings(tts="elevenlabs", voice="v-2"), env={})
    try:
        assert tts.with_voice(VoiceSettings(tts="elevenlabs", voice="v-1"), env={}) is tts
        assert other.config.voice_id == "v-2" and tts.config.voice_id == "v-1"
        _ = [c async for c in tts.synthesize("Hi.")]
        _ = [c async for c in other.synthesize("Hi.")]
    finally:
        await tts.aclose()
    assert [r.voice_id for r in elevenlabs_server.requests] == ["v-1", "v-2"]
    # An eSpeak voice name is not an ElevenLabs voice id; the environment pins one.
    assert tts.with_voice(VoiceSettings(voice="en-us"), env={}).config.voice_id == DEFAULT_VOICE
    pinned = tts.with_voice(VoiceSettings(tts="elevenlabs", voice="v-2"), env={ENV_VOICE: "v-env"})
    assert pinned.config.voice_id == "v-env"
