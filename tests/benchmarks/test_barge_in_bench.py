"""The barge_in benchmark: how the agent's stops (pauses, resumes, confirmed
barge-ins) are matched to caller lines (on made-up timelines), and a tiny real
run's JSON shape. Timings are never asserted."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import barge_in
from benchmarks.barge_in import BenchTransport, Episode, Line, Utterance, score, summarise
from runtime.voice.frames import AgentAudioFrame


def _line(kind: str, onset_at: float | None) -> Line:
    """A line spoken at clock `onset_at` ms, which is also its stream position
    (the stream started at clock 0 and the pipeline kept up)."""
    voice = Utterance("x", b"\x00\x00", 0, 300.0, kind)
    pos = None if onset_at is None else int(onset_at * 16)
    return Line(voice, after_ms=500.0, onset_at=onset_at, end_at=None, onset_pos=pos)


def _episode(stop_at: float, **kw: Any) -> Episode:
    """The audio stopped at clock `stop_at`, the VAD at the same stream position."""
    return Episode(stop_at=stop_at, stop_pos=int(stop_at * 16), **kw)


def test_episodes_are_matched_to_the_line_they_happened_in() -> None:
    lines = [
        _line("short", 1000.0),  # paused and resumed: a gap, no interruption
        _line("interrupt", 3000.0),  # paused 80 ms in, confirmed 300 ms in
        _line("natural", 8000.0),  # a long backchannel confirmed: reply cancelled
        _line("interrupt", 12000.0),  # paused, never confirmed: a miss
        _line("interrupt", 15000.0),  # confirmed without a pause
        _line("interrupt", None),  # never spoken (the caller gave up)
    ]
    transport = BenchTransport(lines)
    transport.episodes = [
        _episode(1070.0, paused=True, resumed_at=1500.0, gap_ms=431.0, detect_to_stop_ms=0.1),
        _episode(3080.0, paused=True, confirmed_at=3300.0, onset_to_stop_ms=76.0),
        _episode(8075.0, paused=True, confirmed_at=8400.0),
        _episode(12090.0, paused=True, resumed_at=12500.0, gap_ms=420.0),
        _episode(12900.0, paused=True, resumed_at=14000.0),  # re-paused 390 ms later
        _episode(15290.0, confirmed_at=15290.0, detect_to_stop_ms=2.5),
    ]
    result = score(lines, transport)
    assert result.onset_to_stop == [80.0, 90.0, 290.0]
    assert result.onset_to_confirm == [300.0, 290.0]
    assert result.missed == 1
    assert result.interruptions_resumed == 1
    assert result.resumed_talk == [390.0]
    assert result.backchannels_by_kind == {"short": 1, "natural": 1}
    assert result.paused_by_kind == {"short": 1, "natural": 1}
    assert result.resumed_by_kind == {"short": 1}
    assert result.resume_gaps == [431.0]
    assert result.false_by_kind == {"natural": 1}
    assert result.detect_to_stop == [0.1, 2.5]
    assert result.pipeline_onset_to_stop == [76.0]
    assert not result.errors


def test_a_late_stop_is_charged_to_the_line_the_vad_was_in() -> None:
    # The pipeline ran 2.5 s behind: the clock says the backchannel had begun
    # when the agent was stopped, the stream position says the interruption.
    lines = [_line("interrupt", 3000.0), _line("short", 5000.0)]
    transport = BenchTransport(lines)
    transport.episodes = [
        Episode(stop_at=5800.0, stop_pos=3300 * 16, paused=True, confirmed_at=5900.0)
    ]
    transport.backlog_ms = [2500.0]
    result = score(lines, transport)
    assert result.onset_to_stop == [2800.0]  # what the caller lived through
    assert result.missed == 0 and result.false_by_kind == {}
    assert result.paused_by_kind == {}
    assert result.backlog_ms == [2500.0]


def test_a_stop_before_any_caller_speech_is_an_error() -> None:
    lines = [_line("interrupt", 5000.0)]
    transport = BenchTransport(lines)
    transport.episodes = [_episode(100.0, paused=True), _episode(5200.0, confirmed_at=5200.0)]
    result = score(lines, transport)
    assert result.onset_to_stop == [200.0]
    assert result.errors == ["the agent was stopped before the caller spoke"]


async def test_the_transport_turns_events_into_episodes() -> None:
    # The order the pipeline produces: clear, then the event that explains it.
    transport = BenchTransport([])
    await transport.clear()
    await transport.event("barge_in_paused", {"detect_to_stop_ms": 0.05, "onset_to_stop_ms": 70})
    await transport.event("barge_in_resumed", {"reason": "backchannel"})
    await transport.play(AgentAudioFrame(pcm=b"\x00\x00", message_id="m1"))
    await transport.clear()
    await transport.event("barge_in_paused", {})
    await transport.clear()
    await transport.event("barge_in", {"cut": [{"message_id": "m1", "heard": "Hi"}]})
    await transport.play(AgentAudioFrame(pcm=b"\x00\x00", message_id="m1"))
    first, second = transport.episodes
    assert first.paused and first.resumed_at is not None and first.confirmed_at is None
    assert first.gap_ms is not None and first.gap_ms >= 0
    assert first.detect_to_stop_ms == 0.05 and first.onset_to_stop_ms == 70.0
    assert second.paused and second.confirmed_at is not None and second.resumed_at is None
    assert second.stop_at == transport.cleared[1]  # the pause's clear, not the confirm's
    assert transport.late_plays == 1  # m1 was cut by the confirmed barge-in


def test_silent_caller_audio_is_refused() -> None:
    with pytest.raises(ValueError, match="silent"):
        barge_in.utterance("nothing", b"\x00\x00" * 1600)


async def test_a_tiny_real_run_has_the_documented_shape() -> None:
    figures = await barge_in.measure(interruptions=2, backchannels=1, concurrency=2, seed=3)
    settings = figures["settings"]
    assert settings["calls_concurrent"] == 2
    assert settings["interruptions_scripted"] == 2 and settings["backchannels_scripted"] == 1
    assert "stand-in" in settings["stt"]
    assert figures["interruptions"] + figures["missed_interruptions"] == 2
    assert figures["calls_gave_up"] == 0 and figures["errors"] == []
    assert figures["late_audio_pieces_after_clear"] == 0
    # Every caught interruption stopped the agent first; each stop was a clear.
    assert figures["onset_to_stop_ms"]["n"] >= figures["interruptions"]
    assert figures["vad_backlog_at_stop_ms"]["n"] >= figures["detect_to_stop_ms"]["n"]
    assert sum(figures["backchannels"].values()) == 1
    for key in ("false_interruptions", "backchannels_paused", "backchannels_resumed"):
        assert set(figures[key]) == set(figures["backchannels"])
    for key in (
        "onset_to_stop_ms",
        "onset_to_confirm_ms",
        "detect_to_stop_ms",
        "pipeline_onset_to_stop_ms",
        "resume_gap_ms",
        "interruptions_resumed_talk_ms",
    ):
        dist = figures[key]
        if dist["n"]:
            assert {"p50", "p90", "p99", "mean", "max"} <= set(dist)
            assert dist["min"] >= 0
    assert set(figures["met"]) == {
        "detect_to_stop_p99",
        "onset_to_stop_p50",
        "short_backchannels_never_interrupt",
    }
    assert figures["goals"] and figures["baseline"]["reference_design"]


def test_summary_of_no_calls_is_well_formed() -> None:
    figures = summarise([], [], calls=0, wall_s=0.0)
    assert figures["interruptions"] == 0
    assert figures["onset_to_stop_ms"] == {"n": 0}
    assert figures["met"]["onset_to_stop_p50"] is False
