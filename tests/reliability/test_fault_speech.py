"""Faults of the speech providers in a voice call: STT timing out, erroring or
hearing garbage; TTS erroring, stalling or returning malformed audio.

The pipeline runs on the deterministic fakes of tests/runtime/voice (virtual
time: the timeouts cost no wall time). Guarantee: the agent says the graph's
fallback line (or re-asks per the graph) and the call reaches an outcome —
it never hangs and never crashes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from reliability.report import record_fault
from runtime.voice.local import CallerLine
from tests.runtime.voice.fakes import Codebook, FakeSTT, FakeTTS
from tests.runtime.voice.voicecalls import VoiceCall, voice_call

pytestmark = pytest.mark.looptime

FALLBACK = "Sorry, something went wrong on our side."
FLOW = f"""
schema: switchboard/v1
id: speech-faults
name: Speech faults
start: hello
fallback_line: "{FALLBACK}"
voice: {{end_of_turn_ms: 500}}
nodes:
  hello: {{type: say, text: "Welcome to the clinic.", next: ask}}
  ask: {{type: collect, slot: day, kind: date, prompt: "Which day suits you?", next: bye}}
  bye: {{type: end, text: "See you then."}}
"""
#: Virtual seconds: a hung call would run into the pipeline's own limits far past this.
BOUND_S = 300.0


class GarbageTTS(FakeTTS):
    """A TTS returning malformed audio: empty chunks and an odd byte count."""

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.texts.append(text)
        yield b""
        yield b"\x01\x02\x03"
        yield b"\xff"


async def _run(**kwargs: Any) -> tuple[VoiceCall, float]:
    loop = asyncio.get_running_loop()
    began = loop.time()
    lines = kwargs.pop("lines", [CallerLine("next Tuesday")])
    call = await voice_call(FLOW, lines, **kwargs)
    return call, loop.time() - began


def _observed(call: VoiceCall, took_s: float) -> dict[str, Any]:
    return {
        "errors": [
            f"{e['stage']}: {e.get('error', '')}"[:120] for e in call.report.of_type("error")
        ],
        "said": call.said(),
        "outcome": call.report.outcome,
        "virtual_s": round(took_s, 1),
    }


async def test_stt_timeout_error_and_garbage() -> None:
    codebook = Codebook()
    hung, hung_s = await _run(
        stt=FakeSTT(codebook, fail="hang"), codebook=codebook, stt_timeout_s=3
    )
    codebook = Codebook()
    broken, broken_s = await _run(stt=FakeSTT(codebook, fail="raise"), codebook=codebook)
    garbage, garbage_s = await _run(lines=[CallerLine("zzkx qq vbnm"), CallerLine("next Tuesday")])
    cases = {"timeout": (hung, hung_s), "error": (broken, broken_s)}
    for kind, (call, took) in cases.items():
        record_fault(
            f"stt-{kind}",
            injected=f"speech-to-text {kind} on the caller's answer",
            survived=FALLBACK in call.said() and took < BOUND_S and call.report.outcome is not None,
            observed=_observed(call, took),
        )
    reasked = sum("Which day suits you?" in line for line in garbage.said()) >= 2
    record_fault(
        "stt-garbage",
        injected="speech-to-text returns gibberish, then a real answer",
        survived=reasked and garbage.report.outcome == "completed",
        observed=_observed(garbage, garbage_s),
    )
    for kind, (call, took) in cases.items():
        assert [e["stage"] for e in call.report.of_type("error")][:1] == ["stt"], kind
        assert FALLBACK in call.said(), kind
        assert took < BOUND_S, kind
        # The call stays open (the caller may try again) until they hang up.
        assert call.report.outcome == "abandoned", kind
    assert reasked, garbage.said()
    assert garbage.report.outcome == "completed"


async def test_tts_error_stall_and_garbage() -> None:
    cases = {
        "error": await _run(tts=FakeTTS(fail_on={"Which day suits you?"})),
        "stall": await _run(tts=FakeTTS(hang=True), tts_timeout_s=2),
        "garbage": await _run(tts=GarbageTTS()),
    }
    for kind, (call, took) in cases.items():
        record_fault(
            f"tts-{kind}",
            injected=f"text-to-speech {kind}",
            survived=call.report.outcome == "completed" and took < BOUND_S,
            observed=_observed(call, took),
        )
    error_call, _ = cases["error"]
    assert FALLBACK in error_call.tts.texts, "the fallback line replaces what TTS could not say"
    stalled, _ = cases["stall"]
    assert all("timed out after 2 s" in e["error"] for e in stalled.report.of_type("error"))
    for kind, (call, took) in cases.items():
        assert call.report.outcome == "completed", kind
        assert took < BOUND_S, kind
