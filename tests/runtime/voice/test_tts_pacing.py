"""TTS runs a bounded distance ahead of playback: a provider far faster than
real time is not drained at once, so a barge-in has little queued audio to
drop (virtual time: every figure is exact)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from runtime.voice.local import CallerLine
from runtime.voice.stages.tts import MAX_AHEAD_MS
from tests.runtime.voice.fakes import RATE
from tests.runtime.voice.voicecalls import voice_call

pytestmark = pytest.mark.looptime

WORDS = 40
LINE = " ".join(["word"] * WORDS) + "."
FLOW = f"""
schema: switchboard/v1
id: pacing
name: Pacing
start: talk
nodes:
  talk: {{type: say, text: "{LINE}", next: ask}}
  ask: {{type: collect, slot: name, kind: text, prompt: "Name?", next: bye}}
  bye: {{type: end, text: "Bye."}}
"""
CHUNK_MS = 200.0


class InstantTTS:
    """Synthesis takes no time: one 200 ms chunk per word, each handed over
    the moment it is asked for; records when each chunk was asked for."""

    name = "instant"
    sample_rate = RATE

    def __init__(self) -> None:
        self.asked: dict[str, list[float]] = {}

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        times = self.asked.setdefault(text, [])
        chunk = np.zeros(int(RATE * CHUNK_MS / 1000), dtype="<i2").tobytes()
        for _ in text.split():
            times.append(asyncio.get_running_loop().time() * 1000.0)
            yield chunk


async def test_synthesis_stays_within_its_lead_of_playback() -> None:
    tts = InstantTTS()
    call = await voice_call(FLOW, [CallerLine("Ana")], tts=tts)
    asked = tts.asked[LINE]
    assert len(asked) == WORDS  # the whole line was synthesized and played
    assert call.played_ms(call.report.of_type("agent")[0]["message_id"]) == pytest.approx(
        WORDS * CHUNK_MS, abs=1
    )
    start = asked[0]
    for k, at in enumerate(asked):
        ahead = k * CHUNK_MS - (at - start)  # audio handed on, minus what has played
        assert ahead <= MAX_AHEAD_MS + CHUNK_MS + 1
    # ...and it does keep ahead: the last chunk was asked for long before the line ended.
    assert asked[-1] - start <= WORDS * CHUNK_MS - MAX_AHEAD_MS + 1


async def test_a_barge_in_finds_little_audio_queued() -> None:
    tts = InstantTTS()
    call = await voice_call(FLOW, [CallerLine("my name is Ana", barge_in_after_ms=2000)], tts=tts)
    assert len(call.report.of_type("barge_in")) == 1
    # Synthesis stopped at the barge-in: about 2 s played (+ detection), at
    # most MAX_AHEAD_MS more was made.
    made = len(tts.asked[LINE]) * CHUNK_MS
    assert made <= 2000 + 500 + MAX_AHEAD_MS + CHUNK_MS
    assert made < WORDS * CHUNK_MS
