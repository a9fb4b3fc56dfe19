"""The voice pipeline end to end on deterministic fake providers, in virtual
time: turn-taking, streaming replies, metrics, and the call's end."""

from __future__ import annotations

import pytest

from runtime.voice.local import CallerLine
from tests.runtime.voice.fakes import FakeTTS
from tests.runtime.voice.voicecalls import voice_call

pytestmark = pytest.mark.looptime

FLOW = """
schema: switchboard/v1
id: voice-test
name: Voice test
start: hello
voice: {end_of_turn_ms: 500, barge_in: {min_speech_ms: 200}}
nodes:
  hello: {type: say, text: "Welcome to the clinic. We are open every weekday.", next: ask}
  ask: {type: collect, slot: name, kind: text, prompt: "What is your name?", next: bye}
  bye: {type: end, text: "Goodbye {name}."}
"""


async def test_a_call_runs_from_greeting_to_goodbye() -> None:
    call = await voice_call(FLOW, [CallerLine("Ana")])
    report = call.report
    assert report.outcome == "completed"
    assert call.said() == [
        "Welcome to the clinic. We are open every weekday.",
        "What is your name?",
        "Goodbye Ana.",
    ]
    assert [e["text"] for e in report.of_type("caller")] == ["Ana"]
    # Every word of every line was spoken (fake TTS: 300 ms per word).
    assert call.played_ms() == pytest.approx(300 * (9 + 4 + 2), abs=1)
    assert not report.of_type("barge_in")
    assert report.of_type("hangup")[-1]["reason"] == "completed"
    assert call.transport.closed == "completed"
    state = await call.session.state()
    assert state["vars"]["name"] == "Ana"


async def test_sentences_are_synthesized_one_by_one() -> None:
    call = await voice_call(FLOW, [CallerLine("Ana")])
    assert call.tts.texts == [
        "Welcome to the clinic.",
        "We are open every weekday.",
        "What is your name?",
        "Goodbye Ana.",
    ]


async def test_turn_ends_after_the_configured_silence() -> None:
    call = await voice_call(FLOW, [CallerLine("Ana")], end_of_turn_ms=1500)
    turn = call.report.metrics[1]
    assert turn["caller_text"] == "Ana"
    # End of speech -> first agent audio: the end-of-turn silence plus nothing
    # else measurable (fake providers take no virtual time beyond the STT's 50 ms).
    assert 1500 <= turn["end_to_end_ms"] < 1500 + 100
    short = await voice_call(FLOW, [CallerLine("Ana")], end_of_turn_ms=300)
    assert 300 <= short.report.metrics[1]["end_to_end_ms"] < 300 + 100


async def test_the_agent_is_paced_at_real_time_with_a_small_lead() -> None:
    call = await voice_call(FLOW, [CallerLine("Ana")], lead_ms=80)
    played = call.transport.played
    first_t = played[0][0]
    sent_ms = 0.0
    for t, _, n in played:
        # Never more than the lead ahead of real time (one 20 ms piece of slack).
        assert sent_ms - (t - first_t) <= 80 + 20 + 1e-6 or t - first_t > 2900
        sent_ms += 1000.0 * n / 2 / 16000
        if t - first_t > 2900:  # the greeting (2.7 s) is over
            break


async def test_metrics_are_reported_per_turn() -> None:
    call = await voice_call(FLOW, [CallerLine("Ana")])
    opening, answer = call.report.metrics
    assert opening["turn"] == 0 and opening["graph_step_ms"] is not None
    assert answer["turn"] == 1
    assert answer["stt_final_ms"] == pytest.approx(240 + 50, abs=40)  # VAD hangover + decode
    assert answer["graph_step_ms"] is not None
    assert answer["tts_first_audio_ms"] is not None
    assert answer["end_to_end_ms"] >= 500
    assert answer["llm_first_token_ms"] is None
    sent = [e for e in call.report.of_type("metrics")]
    assert [m["turn"] for m in sent] == [0, 1]


async def test_noise_without_words_is_not_a_turn() -> None:
    # A WAV-less, text-less line is rejected before the call; unknown audio
    # (a code the fake STT does not know) gives an empty transcript instead.
    from tests.runtime.voice.fakes import Codebook, FakeSTT

    caller_book, stt_book = Codebook(), Codebook()
    call = await voice_call(
        FLOW,
        [CallerLine("noise noise")],
        codebook=caller_book,
        stt=FakeSTT(stt_book),
    )
    assert not call.report.of_type("caller")
    assert call.report.outcome == "abandoned"  # the caller hung up after the script


async def test_tts_audio_at_another_rate_is_resampled_for_the_transport() -> None:
    call = await voice_call(FLOW, [CallerLine("Ana")], tts=FakeTTS(sample_rate=22050))
    assert call.report.outcome == "completed"
    # 15 words of 300 ms each, now at 16 kHz (within resampler rounding).
    assert call.played_ms() == pytest.approx(300 * 15, abs=5)


async def test_hanging_up_mid_sentence_records_what_was_heard() -> None:
    long_flow = FLOW.replace(
        "Welcome to the clinic. We are open every weekday.",
        "Welcome to the clinic. We are open every weekday from nine in the morning "
        "until five in the afternoon.",
    )
    transport_wait_s = 2.0
    call = await voice_call(long_flow, [CallerLine("Ana")], wait_timeout_s=transport_wait_s)
    assert call.transport.gave_up
    assert call.report.outcome == "abandoned"
    hello = next(m for m in await call.ai_messages() if m.additional_kwargs.get("node") == "hello")
    assert hello.additional_kwargs.get("interrupted") is True
    # About 2 s of 300 ms words were heard: the first sentence and two more words.
    assert hello.content == "Welcome to the clinic. We are"
