"""The concurrency benchmark: its provider stand-ins behave as stated (in
virtual time), its figures are summarised correctly, and a tiny real run (a
`switchboard serve` process, N = 1 and 2) has the documented shape and no
errors. Timings are never asserted against goals."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from benchmarks import concurrency
from benchmarks.concurrency_load import SPEECH_FRAMES, Call
from benchmarks.harness import Settings
from runtime.voice.providers import standin
from runtime.voice.providers.registry import ProviderConfigError, make_stt, make_tts, make_vad

SILENCE_20MS = b"\x00" * 640


def test_energy_vad_tells_tone_from_silence() -> None:
    vad = standin.EnergyVAD().clone()
    assert vad.speech_probability(standin.tone(0.02)) == 1.0
    assert vad.speech_probability(SILENCE_20MS) == 0.0
    assert vad.speech_probability(standin.tone(0.02, level_dbfs=-50.0)) == 0.0
    assert vad.speech_probability(b"") == 0.0


def test_the_registry_selects_the_stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_STT", "standin")
    monkeypatch.setenv("SWITCHBOARD_TTS", "standin")
    monkeypatch.setenv("SWITCHBOARD_VAD", "standin")
    assert isinstance(make_stt(), standin.StandinSTT)
    assert isinstance(make_tts(), standin.StandinTTS)
    assert isinstance(make_vad(), standin.EnergyVAD)
    monkeypatch.setenv("SWITCHBOARD_VAD", "nonsense")
    with pytest.raises(ProviderConfigError, match="unknown VAD 'nonsense'"):
        make_vad()


@pytest.mark.looptime
async def test_stt_final_comes_250ms_after_the_end_of_speech() -> None:
    stream = await standin.StandinSTT().open()
    await stream.send(standin.tone(0.5) + SILENCE_20MS * 5)  # 100 ms of trailing silence
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await stream.finalize()
    assert result.text == standin.STANDIN_TEXT and result.final
    assert loop.time() - began == pytest.approx(0.15, abs=0.001)
    # Silence only: an empty transcript at once.
    await stream.send(SILENCE_20MS * 10)
    began = loop.time()
    assert (await stream.finalize()).text == ""
    assert loop.time() - began == pytest.approx(0.0, abs=0.001)
    await stream.close()


@pytest.mark.looptime
async def test_tts_first_chunk_after_200ms_and_length_by_text() -> None:
    tts = standin.StandinTTS()
    loop = asyncio.get_running_loop()
    began = loop.time()
    chunks = []
    async for chunk in tts.synthesize("x" * 40):
        if not chunks:
            assert loop.time() - began == pytest.approx(0.2, abs=0.001)
        chunks.append(chunk)
    seconds = sum(len(c) for c in chunks) / 2 / standin.SAMPLE_RATE
    assert seconds == pytest.approx(40 * standin.TTS_S_PER_CHAR, abs=standin.TTS_CHUNK_S / 2)


def test_a_call_measures_from_its_last_speech_frame_to_the_next_agent_audio() -> None:
    call = Call(0, fallback_line="Sorry.")
    call.speech_left = len(SPEECH_FRAMES)
    sent = [call.next_frame(float(i)) for i in range(len(SPEECH_FRAMES) + 1)]
    assert sent[0] == SPEECH_FRAMES[0] and sent[-1] == b"\x00" * 640
    assert call.speech_end_at == float(len(SPEECH_FRAMES) - 1)
    call.on_message(b"\x01\x00", call.speech_end_at + 1.5)
    call.on_message(b"\x01\x00", call.speech_end_at + 2.0)  # not the first byte
    assert call.latencies_ms == [pytest.approx(1500.0)]
    call.on_message('{"type": "agent", "text": "Sorry."}', 0.0)
    call.on_message('{"type": "waiting"}', 0.0)
    assert call.waiting == 1 and call.problems == ["the agent said its fallback line"]


def test_sizes_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert concurrency._sizes(Settings(quick=True)) == concurrency.QUICK_N
    assert concurrency._sizes(Settings()) == concurrency.FULL_N
    monkeypatch.setenv(concurrency.SIZES_ENV, "30, 5")
    assert concurrency._sizes(Settings()) == (1, 5, 30)
    monkeypatch.setenv(concurrency.SIZES_ENV, "0")
    with pytest.raises(ValueError, match="must be >= 1"):
        concurrency._sizes(Settings())
    assert concurrency._workers() == 1
    monkeypatch.setenv(concurrency.WORKERS_ENV, "2")
    assert concurrency._workers() == 2
    monkeypatch.setenv(concurrency.WORKERS_ENV, "two")
    with pytest.raises(ValueError, match="number of workers"):
        concurrency._workers()


def test_degradation_is_against_n1() -> None:
    rows: list[dict[str, Any]] = [
        {"calls": 1, "turn_latency_ms": {"n": 4, "p50": 1000.0, "p95": 1200.0}, "errors": 0},
        {"calls": 200, "turn_latency_ms": {"n": 800, "p50": 1100.0, "p95": 1320.0}, "errors": 0},
    ]
    concurrency._degradation(rows)
    assert rows[1]["degradation_vs_n1_pct"] == {"p50": 10.0, "p95": 10.0}
    assert concurrency._goal_met(rows) is True
    rows[1]["errors"] = 1
    assert concurrency._goal_met(rows) is False
    assert concurrency._goal_met(rows[:1]) is None


@pytest.mark.redis
async def test_tiny_real_run_has_the_documented_shape(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(concurrency.SIZES_ENV, "2")
    monkeypatch.delenv(concurrency.PROFILE_ENV, raising=False)
    figures = await asyncio.wait_for(
        concurrency.run(Settings(quick=True, redis_url=redis_url)), timeout=600
    )
    assert figures["providers"]["llm_first_token_ms"] == 600.0
    assert figures["providers"]["stt_final_after_end_of_speech_ms"] == 250.0
    assert figures["providers"]["tts_first_chunk_ms"] == 200.0
    rows = figures["results"]
    assert [r["calls"] for r in rows] == [1, 2]
    for row in rows:
        assert row["errors"] == 0, row.get("first_errors")
        assert (
            row["turns_measured"] == row["turns_expected"] == row["calls"] * concurrency.QUICK_TURNS
        )
        assert {"p50", "p95", "p99"} <= set(row["turn_latency_ms"])
        assert {"p50", "p95"} == set(row["degradation_vs_n1_pct"])
        assert row["server_cpu_pct"]["peak"] >= 0 and row["server_rss_mb"]["peak"] > 0
        assert row["server_stage_ms"]["llm_first_token_ms"]["n"] == row["turns_measured"]
        # The stand-ins' waits are a floor under the stage timings.
        assert row["server_stage_ms"]["llm_first_token_ms"]["min"] >= 600.0
        assert row["server_stage_ms"]["tts_first_audio_ms"]["min"] >= 199.0
    assert figures["goal_met"] is None  # N = 200 not run


def test_errors_are_counted_by_kind_and_server_log_problems_by_line(tmp_path: Path) -> None:
    errors = [
        "call 3: TimeoutError: waited too long",
        "call 17: TimeoutError: waited too long",
        "call 17: the agent said its fallback line",
    ]
    assert concurrency.error_kinds(errors) == {
        "TimeoutError: waited too long": 2,
        "the agent said its fallback line": 1,
    }
    log = tmp_path / "serve.log"
    log.write_text("WARNING old problem\n")
    start = log.stat().st_size
    with log.open("a") as f:
        f.write("INFO fine\nWARNING slow\nERROR broke\nWARNING slow\n")
    assert concurrency._log_problems(log, start) == {"WARNING slow": 2, "ERROR broke": 1}
