"""The e2e_offline benchmark: per-turn figures from made-up timelines, and one
real one-turn call's JSON shape. Timings are never asserted."""

from __future__ import annotations

from typing import Any

from benchmarks import e2e_offline
from benchmarks.e2e_offline import Script, summarise, turn_figures


def test_turn_figures_measure_from_the_decision_and_the_end_of_speech() -> None:
    metrics: list[dict[str, Any]] = [
        {"turn": 0, "caller_text": None, "graph_step_ms": 40.0},
        {
            "turn": 1,
            "caller_text": "hi",
            "stt_final_ms": 500.0,
            "graph_step_ms": 30.0,
            "tts_first_audio_ms": 5.0,
            "end_to_end_ms": 760.0,
        },
        {
            "turn": 2,
            "caller_text": "bye",
            "stt_final_ms": 450.0,
            "graph_step_ms": 20.0,
            "tts_first_audio_ms": 4.0,
            "end_to_end_ms": None,
        },
    ]
    played = [(100.0, "m0", 640), (5000.0, "m1", 0), (5040.0, "m1", 640), (9000.0, "m2", 640)]
    rows = turn_figures([5000.0, 9500.0], [4250.0, 8700.0], played, metrics)
    first, second = rows
    assert first["caller_text"] == "hi"
    assert first["decision_to_first_audio_ms"] == 40.0  # the empty piece does not count
    assert first["end_of_speech_to_first_audio_ms"] == 790.0
    assert first["end_of_turn_wait_ms"] == 750.0
    assert first["stt_final_ms"] == 500.0 and first["end_to_end_ms"] == 760.0
    # No agent audio after the second decision.
    assert second["decision_to_first_audio_ms"] is None
    assert second["end_of_speech_to_first_audio_ms"] is None
    assert second["end_of_turn_wait_ms"] == 800.0


def test_summary_shares_and_goals() -> None:
    rows = [
        {
            "end_of_speech_to_first_audio_ms": 800.0,
            "decision_to_first_audio_ms": 100.0,
            "end_of_turn_wait_ms": 700.0,
            "stt_final_ms": 350.0,
            "graph_step_ms": 50.0,
            "tts_first_audio_ms": 10.0,
            "end_to_end_ms": 780.0,
        },
    ]
    out = summarise(rows, end_of_turn_ms=700.0)
    assert out["decision_to_first_audio_ms"]["p50"] == 100.0
    assert out["shares_of_end_of_speech_to_first_audio"] == {
        "end_of_turn_wait": 0.875,
        "decision_to_first_audio": 0.125,
    }
    assert out["shares_of_decision_to_first_audio"]["graph_step"] == 0.5
    assert out["stt_final_over_end_of_turn_silence"] == 0.5
    assert out["met"] == {
        "decision_to_first_audio_p50": True,
        "end_of_speech_to_first_audio_p50": False,
    }


async def test_one_real_turn_has_the_documented_shape() -> None:
    from runtime.voice.providers.espeak_tts import EspeakTTS

    script = Script("dental-booking.yaml", "+15551230001", ("I need a cleaning",))
    rows = await e2e_offline.run_script(script, EspeakTTS())
    assert len(rows) == 1
    row = rows[0]
    assert row["graph"] == "dental-booking.yaml"
    assert row["caller_text"]
    for key in (
        "decision_to_first_audio_ms",
        "end_of_speech_to_first_audio_ms",
        "end_of_turn_wait_ms",
        "stt_final_ms",
        "graph_step_ms",
        "tts_first_audio_ms",
        "end_to_end_ms",
    ):
        assert isinstance(row[key], float) and row[key] >= 0, key
    out = summarise(rows, end_of_turn_ms=700.0)
    assert out["end_of_speech_to_first_audio_ms"]["n"] == 1
