"""Provider failures never hang a call: a TTS that raises or stalls, an STT
that times out or fails, a graph step that overruns. Virtual time, so the
timeouts cost nothing."""

from __future__ import annotations

import asyncio

import pytest

from runtime.voice.local import CallerLine
from tests.runtime.voice.fakes import Codebook, FakeSTT, FakeTTS
from tests.runtime.voice.voicecalls import voice_call
from tools.registry import Tool, ToolRegistry

pytestmark = pytest.mark.looptime

FALLBACK = "Sorry, something went wrong on our side."
FLOW = f"""
schema: switchboard/v1
id: fail
name: Failures
start: hello
fallback_line: "{FALLBACK}"
voice: {{end_of_turn_ms: 500}}
nodes:
  hello: {{type: say, text: "Welcome to the clinic.", next: ask}}
  ask: {{type: collect, slot: name, kind: text, prompt: "What is your name?", next: bye}}
  bye: {{type: end, text: "Goodbye {{name}}."}}
"""


async def test_a_sentence_tts_cannot_say_is_replaced_by_the_fallback_line() -> None:
    tts = FakeTTS(fail_on={"What is your name?"})
    call = await voice_call(FLOW, [CallerLine("Ana")], tts=tts)
    errors = call.report.of_type("error")
    assert errors and errors[0]["stage"] == "tts" and "What is your name?" in errors[0]["text"]
    assert FALLBACK in tts.texts
    fallback_ids = {m for _, m, _ in call.transport.played if m.startswith("fallback:")}
    assert fallback_ids, "the fallback line was played"
    assert call.report.outcome == "completed"


async def test_a_tts_that_always_fails_still_lets_the_call_finish() -> None:
    call = await voice_call(FLOW, [CallerLine("Ana")], tts=FakeTTS(fail_all=True))
    assert not call.transport.played
    fallbacks = call.report.of_type("fallback")
    assert fallbacks and fallbacks[0]["text"] == FALLBACK
    assert call.report.outcome == "completed"
    state = await call.session.state()
    assert state["vars"]["name"] == "Ana"


async def test_a_stalled_tts_times_out() -> None:
    start = asyncio.get_running_loop().time()
    call = await voice_call(FLOW, [CallerLine("Ana")], tts=FakeTTS(hang=True), tts_timeout_s=2)
    errors = call.report.of_type("error")
    assert errors and all("timed out after 2 s" in e["error"] for e in errors)
    assert call.report.outcome == "completed"
    # Bounded: a handful of timed-out sentences, not a hang.
    assert asyncio.get_running_loop().time() - start < 60


async def test_an_stt_timeout_makes_the_agent_say_the_fallback_line() -> None:
    codebook = Codebook()
    stt = FakeSTT(codebook, fail="hang")
    call = await voice_call(FLOW, [CallerLine("Ana")], stt=stt, codebook=codebook, stt_timeout_s=3)
    errors = call.report.of_type("error")
    assert [e["stage"] for e in errors] == ["stt"]
    assert "timed out after 3 s" in errors[0]["error"]
    assert FALLBACK in [e["text"] for e in call.report.of_type("agent")]
    assert FALLBACK in call.tts.texts
    # The call went on (still waiting for the name) until the caller hung up.
    assert call.report.outcome == "abandoned"
    assert stt.opened == 1


async def test_a_failing_stt_is_reopened_for_the_next_turn() -> None:
    codebook = Codebook()
    stt = FakeSTT(codebook, fail="raise")
    call = await voice_call(
        FLOW, [CallerLine("Ana"), CallerLine("Ana again")], stt=stt, codebook=codebook
    )
    assert [e["stage"] for e in call.report.of_type("error")] == ["stt", "stt"]
    assert stt.opened == 2
    assert call.report.outcome == "abandoned"


async def test_a_graph_step_that_overruns_ends_the_call_with_the_fallback_line() -> None:
    async def stuck() -> dict[str, str]:
        await asyncio.sleep(3600)
        return {}

    registry = ToolRegistry()
    registry.register(Tool(name="stuck.tool", description="never returns", func=stuck))
    flow = f"""
schema: switchboard/v1
id: stuck
name: Stuck
start: ask
fallback_line: "{FALLBACK}"
nodes:
  ask: {{type: collect, slot: name, kind: text, prompt: "Name?", next: look}}
  look: {{type: tool, tool: stuck.tool, result: found, next: bye, on_error: bye, timeout_s: 30}}
  bye: {{type: end, text: "Goodbye."}}
"""
    call = await voice_call(flow, [CallerLine("Ana")], tools=registry, step_timeout_s=5)
    errors = call.report.of_type("error")
    assert errors and errors[0]["stage"] == "graph" and "longer than 5 s" in errors[0]["error"]
    assert call.report.end_reason == "failed"
    assert FALLBACK in call.tts.texts
