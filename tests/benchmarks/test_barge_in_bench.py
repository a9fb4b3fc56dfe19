"""The barge_in benchmark: how clears are matched to caller lines (on made-up
timelines), and a tiny real run's JSON shape. Timings are never asserted."""

from __future__ import annotations

import pytest

from benchmarks import barge_in
from benchmarks.barge_in import BenchTransport, Line, Utterance, score, summarise


def _line(kind: str, onset_at: float | None) -> Line:
    """A line spoken at clock `onset_at` ms, which is also its stream position
    (the stream started at clock 0 and the pipeline kept up)."""
    voice = Utterance("x", b"\x00\x00", 0, 300.0, kind)
    pos = None if onset_at is None else int(onset_at * 16)
    return Line(voice, after_ms=500.0, onset_at=onset_at, end_at=None, onset_pos=pos)


def test_clears_are_matched_to_the_line_they_happened_in() -> None:
    lines = [
        _line("short", 1000.0),  # a backchannel: no clear, the agent goes on
        _line("interrupt", 3000.0),  # cleared 300 ms in
        _line("natural", 8000.0),  # a long backchannel that cut the agent
        _line("interrupt", 12000.0),  # never cleared: a miss
        _line("interrupt", None),  # never spoken (the caller gave up)
    ]
    transport = BenchTransport(lines)
    transport.cleared = [3300.0, 8400.0]
    transport.cleared_at_pos = [3300 * 16, 8400 * 16]
    events = [
        {"detect_to_stop_ms": 1.5, "onset_to_stop_ms": 280.0},
        {"detect_to_stop_ms": 2.5, "onset_to_stop_ms": 390.0},
    ]
    result = score(lines, transport, events)
    assert result.onset_to_stop == [300.0]
    assert result.missed == 1
    assert result.backchannels_by_kind == {"short": 1, "natural": 1}
    assert result.false_by_kind == {"natural": 1}
    assert result.detect_to_stop == [1.5, 2.5]
    assert result.pipeline_onset_to_stop == [280.0, 390.0]
    assert not result.errors


def test_a_late_clear_is_charged_to_the_line_the_vad_was_in() -> None:
    # The pipeline ran 2.5 s behind: the clock says the backchannel had begun
    # when the agent was cut, the stream position says the interruption.
    lines = [_line("interrupt", 3000.0), _line("short", 5000.0)]
    transport = BenchTransport(lines)
    transport.cleared = [5800.0]
    transport.cleared_at_pos = [3300 * 16]
    transport.backlog_ms = [2500.0]
    result = score(lines, transport, [])
    assert result.onset_to_stop == [2800.0]  # what the caller lived through
    assert result.missed == 0 and result.false_by_kind == {}
    assert result.backlog_ms == [2500.0]


def test_a_clear_before_any_caller_speech_is_an_error() -> None:
    lines = [_line("interrupt", 5000.0)]
    transport = BenchTransport(lines)
    transport.cleared = [100.0, 5200.0]
    transport.cleared_at_pos = [100 * 16, 5200 * 16]
    result = score(lines, transport, [])
    assert result.onset_to_stop == [200.0]
    assert result.errors == ["the agent was cut before the caller spoke"]


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
    assert figures["vad_backlog_at_stop_ms"]["n"] == figures["detect_to_stop_ms"]["n"]
    assert sum(figures["backchannels"].values()) == 1
    assert set(figures["false_interruptions"]) == set(figures["backchannels"])
    for key in ("onset_to_stop_ms", "detect_to_stop_ms", "pipeline_onset_to_stop_ms"):
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
