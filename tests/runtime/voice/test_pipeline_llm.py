"""LLM replies through the voice pipeline, in virtual time: sentences are
synthesized while the model is still generating, and a barge-in stops the
generation, keeping (and recording) only what the caller heard."""

from __future__ import annotations

import pytest

from runtime.voice.local import CallerLine
from tests.runtime.voice.fakes import SlowChatModel
from tests.runtime.voice.voicecalls import voice_call

pytestmark = pytest.mark.looptime

FLOW = """
schema: switchboard/v1
id: chat
name: Chat
start: talk
llm: {model: fake}
voice: {end_of_turn_ms: 500, barge_in: {min_speech_ms: 200}}
nodes:
  talk:
    type: llm
    prompt: Answer questions about the clinic.
    greeting: Hi, how can I help?
    exits: {done: {description: the caller is done, next: bye}}
  bye: {type: end, text: Goodbye.}
"""
HOURS = "We are open from nine to five on weekdays. On Saturdays we open at ten. Anything else?"
SUNDAYS = "Sure, we are open on Sundays too."
LONG = (
    "Let me tell you about our services in some detail. We offer cleanings and checkups. "
    "We also do fillings, crowns and root canals, and our hygienists are very gentle. "
    "Most insurance plans are accepted at the front desk."
)


async def test_speech_starts_before_the_model_has_finished() -> None:
    model = SlowChatModel(replies=[HOURS], token_delay_s=0.1)
    call = await voice_call(FLOW, [CallerLine("what are your hours")], llm=model)
    tts = call.tts
    assert tts.texts[1:4] == [
        "We are open from nine to five on weekdays.",
        "On Saturdays we open at ten.",
        "Anything else?",
    ]
    first_sentence_at = tts.started[1]
    assert first_sentence_at < model.token_times[-1]
    # The first sentence went to TTS as soon as the next one began.
    assert first_sentence_at == pytest.approx(model.token_times[9], abs=0.001)
    turn = call.report.metrics[1]
    assert turn["llm_first_token_ms"] == pytest.approx(100, abs=1)
    assert turn["graph_step_ms"] == pytest.approx(100 * len(HOURS.split()), abs=5)
    # End of speech -> first audio: the silence, then the first sentence (9
    # tokens), released when the 10th token begins the next one.
    assert turn["end_to_end_ms"] == pytest.approx(500 + 1000, abs=20)
    messages = await call.ai_messages()
    assert messages[-1].content == HOURS


async def test_barge_in_stops_the_generation_and_records_what_was_heard() -> None:
    model = SlowChatModel(replies=[LONG, SUNDAYS], token_delay_s=0.1)
    call = await voice_call(
        FLOW,
        [
            CallerLine("tell me about your services"),
            CallerLine("what about sundays", barge_in_after_ms=1200),
        ],
        llm=model,
    )
    total_tokens = len(LONG.split()) + len(SUNDAYS.split())
    # The first generation was stopped well before its end.
    assert model.tokens_sent < total_tokens - 5
    assert model.calls == 2
    barge = call.report.of_type("barge_in")
    assert len(barge) == 1 and barge[0]["onset_to_stop_ms"] <= 300
    messages = await call.ai_messages()
    cut = next(m for m in messages if m.additional_kwargs.get("interrupted"))
    planned = str(cut.additional_kwargs["planned"])
    heard = str(cut.content)
    # What was generated (and kept for the record) is a prefix of the reply;
    # what was heard is a prefix of that.
    assert LONG.startswith(planned) and planned != LONG
    assert planned.startswith(heard) and heard
    # About 1.2 s + detection of 300 ms words were played.
    assert heard == "Let me tell you"
    assert len(heard.split()) < len(planned.split())
    # The barge-in turn was answered.
    assert messages[-1].content == SUNDAYS
