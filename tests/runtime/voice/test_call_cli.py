"""`switchboard call`: a local voice call with the embedded providers, as a new
user runs it (no key, no network)."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from runtime.cli import app
from runtime.voice.audio import resample, write_wav
from runtime.voice.providers.espeak_tts import EspeakTTS

GRAPH = str(Path(__file__).resolve().parents[3] / "graphs" / "dental-booking.yaml")
runner = CliRunner()


def test_a_spoken_call_prints_its_transcript_and_records_both_sides(tmp_path: Path) -> None:
    wav_out = tmp_path / "call.wav"
    result = runner.invoke(
        app,
        [
            "call",
            GRAPH,
            "--say",
            "what are your opening hours",
            "--say",
            "no thanks that's all",
            "--fast",
            "--wav-out",
            str(wav_out),
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "agent: Thanks for calling Bright Smiles" in out
    assert "caller:" in out and "hours" in out.lower()
    assert "We're open Monday to Friday" in out
    assert "end to end" in out  # per-turn latencies
    assert "outcome: completed" in out and str(wav_out) in out
    with wave.open(str(wav_out)) as recording:
        assert recording.getframerate() == 16000 and recording.getnchannels() == 1
        seconds = recording.getnframes() / 16000
        samples = np.frombuffer(recording.readframes(recording.getnframes()), dtype="<i2")
    # Greeting, hours, "anything else", goodbye and two caller lines: well
    # over 10 s of speech (eSpeak leaves short gaps between words).
    loud_s = float((np.abs(samples.astype(np.int32)) > 500).sum()) / 16000
    assert seconds > loud_s > 6


def test_json_events_and_a_wav_caller_turn(tmp_path: Path) -> None:
    voice = EspeakTTS()

    async def render() -> bytes:
        return b"".join([c async for c in voice.synthesize("no thanks that's all")])

    wav_in = tmp_path / "no.wav"
    write_wav(wav_in, resample(asyncio.run(render()), voice.sample_rate, 16000), 16000)
    result = runner.invoke(
        app,
        [
            *("call", GRAPH, "--say", "what are your opening hours"),
            *("--wav-in", str(wav_in), "--fast", "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    kinds = {e["type"] for e in events}
    assert {"agent", "caller", "node", "metrics", "outcome", "hangup"} <= kinds
    callers = [e["text"].lower() for e in events if e["type"] == "caller"]
    assert len(callers) == 2 and "no" in callers[1]
    assert [e["outcome"] for e in events if e["type"] == "outcome"] == ["completed"]


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    nothing = runner.invoke(app, ["call", GRAPH])
    assert nothing.exit_code == 2 and "--say" in nothing.output
    missing = runner.invoke(app, ["call", GRAPH, "--wav-in", str(tmp_path / "nope.wav")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema: switchboard/v1\nid: broken\nname: B\nstart: x\nnodes: {}\n")
    invalid = runner.invoke(app, ["call", str(broken), "--say", "hello"])
    assert invalid.exit_code == 1 and "broken.yaml" in invalid.output
    unknown = runner.invoke(app, ["call", "no-such-graph", "--say", "hello"])
    assert unknown.exit_code == 2
