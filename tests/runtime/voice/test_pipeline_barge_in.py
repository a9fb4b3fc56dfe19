"""Barge-in on fake providers, in virtual time (so the 300 ms bound of the
issue is checked exactly, with no CPU-contention margin): caller speech over a
long agent reply pauses the outbound audio at its onset; confirmed, it flushes
what was queued and the stored agent line keeps only what was played; a
backchannel resumes the reply where it stopped."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage

from runtime.voice.local import CallerLine
from tests.runtime.voice.voicecalls import voice_call

pytestmark = pytest.mark.looptime

GREETING = (
    "Welcome to the Bright Smiles clinic. We are open every weekday from nine to five, "
    "and on Saturday mornings. Our address is one main street, next to the park."
)
FLOW = f"""
schema: switchboard/v1
id: barge
name: Barge-in
start: hello
voice: {{end_of_turn_ms: 500, barge_in: {{min_speech_ms: 200}}}}
nodes:
  hello: {{type: say, text: "{GREETING}", next: ask}}
  ask: {{type: collect, slot: name, kind: text, prompt: "What is your name?", next: bye}}
  bye: {{type: end, text: "Goodbye {{name}}."}}
"""


def _greeting(messages: list[AIMessage]) -> AIMessage:
    return next(m for m in messages if m.additional_kwargs.get("node") == "hello")


async def test_caller_speech_stops_the_agent_within_300_ms() -> None:
    call = await voice_call(FLOW, [CallerLine("my name is Ana", barge_in_after_ms=2500)])
    transport = call.transport
    onset = transport.onsets[0]
    greeting_id = call.report.of_type("agent")[0]["message_id"]
    last_play = max(t for t, m, _ in transport.played if m == greeting_id)
    assert onset < last_play <= onset + 300
    assert transport.cleared and onset <= transport.cleared[0] <= onset + 300
    # Nothing of the greeting (nor the queued prompt) went out after the clear.
    assert all(t <= transport.cleared[0] for t, m, _ in transport.played if m == greeting_id)
    # Paused at the onset (two 32 ms detector frames), not when confirmed.
    assert transport.cleared[0] <= onset + 100
    barge = call.report.of_type("barge_in")
    assert len(barge) == 1
    assert barge[0]["onset_to_stop_ms"] <= 100
    (paused,) = call.report.of_type("barge_in_paused")
    assert paused["onset_to_stop_ms"] == barge[0]["onset_to_stop_ms"]
    assert not call.report.of_type("barge_in_resumed")
    assert 0 <= barge[0]["detect_to_stop_ms"] <= barge[0]["onset_to_stop_ms"]
    metrics = call.report.metrics[0]
    assert metrics["barge_in_onset_stop_ms"] == barge[0]["onset_to_stop_ms"]


async def test_stored_agent_line_is_truncated_to_what_was_played() -> None:
    call = await voice_call(FLOW, [CallerLine("my name is Ana", barge_in_after_ms=2500)])
    assert call.report.outcome == "completed"
    messages = await call.ai_messages()
    greeting = _greeting(messages)
    heard = str(greeting.content)
    assert greeting.additional_kwargs["interrupted"] is True
    assert greeting.additional_kwargs["planned"] == GREETING
    assert GREETING.startswith(heard) and heard != GREETING
    # 300 ms per word: ~2.5 s + detection (~0.2 s) of audio is about 9 words;
    # the first sentence (6 words) was heard whole.
    assert heard.startswith("Welcome to the Bright Smiles clinic.")
    assert 7 <= len(heard.split()) <= 10
    # The collect prompt was queued but never played: heard "".
    prompt = next(m for m in messages if m.additional_kwargs.get("node") == "ask")
    assert prompt.content == "" and prompt.additional_kwargs["interrupted"] is True
    heard_events = call.report.of_type("heard")
    assert {e["message_id"] for e in heard_events} == {greeting.id, prompt.id}
    # The barge-in speech became the caller's turn.
    assert [e["text"] for e in call.report.of_type("caller")] == ["my name is Ana"]


async def test_played_audio_matches_the_heard_words() -> None:
    call = await voice_call(FLOW, [CallerLine("my name is Ana", barge_in_after_ms=2500)])
    greeting = _greeting(await call.ai_messages())
    words_played = call.played_ms(greeting.id) / 300.0
    # Rounded down by words; at most the 80 ms lead (< 1 word) was discarded.
    assert (
        len(str(greeting.content).split()) == int(words_played)
        or len(str(greeting.content).split()) == int(words_played) - 1
    )


async def test_a_backchannel_does_not_interrupt() -> None:
    call = await voice_call(
        FLOW,
        [CallerLine("mm", barge_in_after_ms=1500), CallerLine("Ana")],
        caller_word_ms=120,
    )
    report = call.report
    assert not report.of_type("barge_in")
    # Paused at its onset, resumed when it ended.
    (paused,) = report.of_type("barge_in_paused")
    (resumed,) = report.of_type("barge_in_resumed")
    assert resumed["reason"] == "backchannel"
    (cleared,) = call.transport.cleared
    assert 0 < cleared - call.transport.onsets[0] <= 100
    assert [e["text"] for e in report.of_type("backchannel")] == ["mm"]
    # Never sent as a turn: the only caller turn is the answer.
    assert [e["text"] for e in report.of_type("caller")] == ["Ana"]
    greeting = _greeting(await call.ai_messages())
    assert greeting.content == GREETING and not greeting.additional_kwargs.get("interrupted")
    # All of it played: the audio the clear dropped (held) was sent again.
    assert call.played_ms(greeting.id) == pytest.approx(
        300 * len(GREETING.split()) + paused["held_ms"], abs=1
    )
    # The caller heard a gap from the clear to the resume, no audio in it.
    gap = (call.transport.cleared[0], call.transport.cleared[0] + resumed["paused_ms"])
    assert not [t for t, m, _ in call.transport.played if gap[0] < t < gap[1]]
    assert any(t == pytest.approx(gap[1]) for t, m, _ in call.transport.played)
    state = await call.session.state()
    assert state["vars"]["name"] == "Ana"


async def test_barge_in_by_interim_words() -> None:
    # Speech length alone would never interrupt; two interim words do.
    call = await voice_call(
        FLOW,
        [CallerLine("my name is Ana", barge_in_after_ms=2500)],
        barge_in_min_speech_ms=60_000,
        barge_in_min_words=2,
    )
    assert len(call.report.of_type("barge_in")) == 1
    # Paused at the onset; two fake-STT words (500 ms of speech) confirm it.
    paused, confirmed = (t - call.transport.onsets[0] for t in call.transport.cleared)
    assert paused <= 100
    assert 500 <= confirmed <= 500 + 100


async def test_barge_in_can_be_disabled() -> None:
    call = await voice_call(
        FLOW,
        [CallerLine("my name is Ana", barge_in_after_ms=2500), CallerLine("Ana")],
        barge_in_enabled=False,
    )
    assert not call.report.of_type("barge_in")
    greeting = _greeting(await call.ai_messages())
    assert greeting.content == GREETING
    assert [e["text"] for e in call.report.of_type("caller")] == ["Ana"]


async def test_barge_in_while_the_step_runs_drops_its_audio() -> None:
    # A tool that takes 3 s: the caller talks over the silence while it runs.
    from tools.registry import Tool, ToolRegistry

    async def slow_lookup() -> dict[str, str]:
        import asyncio

        await asyncio.sleep(3)
        return {"when": "Tuesday"}

    registry = ToolRegistry()
    registry.register(Tool(name="slow.lookup", description="slow", func=slow_lookup))
    flow = """
schema: switchboard/v1
id: slow
name: Slow
start: ask
voice: {end_of_turn_ms: 500, barge_in: {min_speech_ms: 200}}
nodes:
  ask: {type: collect, slot: name, kind: text, prompt: "Name?", next: look}
  look: {type: tool, tool: slow.lookup, result: found, say: "Let me look that up for you.",
         next: tell, on_error: bye}
  tell: {type: collect, slot: ok, kind: text, prompt: "Found it, on {found.when}. Is that fine?",
         next: bye}
  bye: {type: end, text: "Goodbye."}
"""
    call = await voice_call(
        flow,
        [CallerLine("Ana"), CallerLine("hello are you there", barge_in_after_ms=1000)],
        tools=registry,
    )
    report = call.report
    assert report.of_type("barge_in")
    # The step finished (tool called once, result kept) and the call went on.
    assert [t["name"] for t in report.of_type("tool")] == ["slow.lookup"]
    state = await call.session.state()
    assert state["vars"]["found"] == {"when": "Tuesday"}
    assert state["vars"]["ok"] == "hello are you there"
    # The line produced after the barge-in was never played and is stored as heard "".
    tell = next(m for m in await call.ai_messages() if m.additional_kwargs.get("node") == "tell")
    assert tell.content == "" and tell.additional_kwargs["planned"].startswith("Found it")
    assert all(m != tell.id for _, m, _ in call.transport.played)
    assert report.outcome == "completed"
